"""The broker's fsyncs must not hold the event loop while the disk writes: the periodic checkpoint
(everything appended since, then the recovery-point file) held it 115 ms every minute with 64
partitions, and a 1 GiB segment's roll held every client 420 ms.

The disk is modelled, not timed: an fsync of a segment file with more than 4 KiB no fsync has
covered yet blocks until a task on the event loop lets it go (or 2 s pass), as a slow disk holds
a big write; an fsync with little or nothing new (indexes, snapshots, checkpoint files, the
records appended during the checkpoint) is instant. On the old code the blocking fsync ran on the loop itself, so no task
could let it go and every one timed out."""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path

import pytest

from inprocess import InProcess
from sandbox.broker import state as state_module
from sandbox.broker.config import DEFAULT_LISTENER, BrokerConfig
from sandbox.broker.handlers import REGISTRY
from sandbox.broker.state import BrokerState
from sandbox.log.manager import RECOVERY_CHECKPOINT
from sandbox.protocol.records import encode_batch

pytestmark = pytest.mark.skipif(not state_module.SYNC_IN_THREAD,
                                reason="Windows flushes on the loop, one partition at a time")


class SlowDisk:
    """os.fsync stand-in: blocks while a segment file holds > 4 KiB no fsync has covered yet."""

    SLOW_BYTES = 4096

    def __init__(self, real, segments: set[tuple[int, int]]) -> None:
        self.real = real
        self.segments = segments
        self.synced: dict[tuple[int, int], int] = {}
        self.lock = threading.Lock()
        self.waiting = threading.Event()   # an fsync with work is blocked now
        self.release = threading.Event()
        self.released = 0                  # blocking fsyncs let go by the loop
        self.timed_out = 0                 # blocking fsyncs nobody let go

    def slow(self, fd: int, st: os.stat_result) -> bool:
        key = (st.st_dev, st.st_ino)
        with self.lock:
            return key in self.segments and st.st_size - self.synced.get(key, 0) > self.SLOW_BYTES

    def fsync(self, fd: int) -> None:
        st = os.fstat(fd)
        key = (st.st_dev, st.st_ino)
        slow = self.slow(fd, st)
        if slow:
            self.waiting.set()
            ok = self.release.wait(2.0)
            with self.lock:
                self.release.clear()
                self.waiting.clear()
                if ok:
                    self.released += 1
                else:
                    self.timed_out += 1
        self.real(fd)
        with self.lock:
            self.synced[key] = max(self.synced.get(key, 0), st.st_size)


class SlowCheckpointFiles(SlowDisk):
    """os.fsync stand-in: every checkpoint file (written as `<name>.tmp`, then renamed; the
    three names end in `-checkpoint`) blocks
    until the loop lets it go, as a busy disk holds a small fsync behind its queue (measured
    here: up to 8 ms under a bulk write; a broker's loop stalled up to 15 ms)."""

    def __init__(self, real) -> None:
        super().__init__(real, set())

    def slow(self, fd: int, st: os.stat_result) -> bool:
        return os.readlink(f"/proc/self/fd/{fd}").endswith("-checkpoint.tmp")


def produce(b: InProcess, partition: int, n: int) -> None:
    resp = b.call(0, 9, {"transactional_id": None, "acks": -1, "timeout": 5000, "topic_data": [
        {"name": "t", "partition_data": [{"index": partition, "records": encode_batch(0, [b"v" * 200] * n)}]}]})
    assert resp.responses[0].partition_responses[0].error_code == 0


@pytest.fixture
def broker(tmp_path):
    """(event loop, broker state, in-process client) of a broker opened as the server opens it."""
    loop = asyncio.new_event_loop()
    state = BrokerState(BrokerConfig(data_dir=tmp_path / "broker", port=19092))
    try:
        loop.run_until_complete(state.open())
        yield loop, state, InProcess(REGISTRY, loop, state, DEFAULT_LISTENER)
    finally:
        loop.run_until_complete(state.close())
        loop.close()


def slow_disk(monkeypatch, folder: Path, pattern: str) -> SlowDisk:
    """A SlowDisk for the segment files under folder matching pattern, put in os.fsync's place."""
    segments = {(st.st_dev, st.st_ino) for st in (f.stat() for f in folder.glob(pattern))}
    assert segments
    disk = SlowDisk(os.fsync, segments)
    monkeypatch.setattr(os, "fsync", disk.fsync)
    return disk


async def serving_while(disk: SlowDisk, b: InProcess, partitions: int, work) -> int:
    """Await work() while the loop's other work goes on: one append (a request answered) per
    blocked fsync, which then lets that fsync go. Returns how many were answered so."""
    served = 0

    async def loop_side():
        nonlocal served
        while True:
            if disk.waiting.is_set() and not disk.release.is_set():
                produce(b, served % partitions, 1)
                served += 1
                disk.release.set()
            await asyncio.sleep(0.001)

    task = asyncio.create_task(loop_side())
    try:
        await work()
    finally:
        task.cancel()
    return served


def test_checkpoint_fsyncs_while_the_loop_keeps_serving(broker, tmp_path, monkeypatch):
    loop, state, b = broker
    b.create_topic("t", 3)
    for p in range(3):
        produce(b, p, 50)
    disk = slow_disk(monkeypatch, tmp_path / "broker", "t-*/*.log")
    assert len(disk.segments) == 3

    served = loop.run_until_complete(serving_while(disk, b, 3, state.checkpoint))
    assert disk.timed_out == 0, "an fsync with data to write ran on the event loop"
    assert disk.released >= 3 and served >= 3   # each partition's data, synced off the loop
    # the flush still ran in full: every record appended before it is below the recovery
    # point, and the checkpoint file records each partition's recovery point
    logs = {tp[1]: plog for tp, plog in state.partitions.items() if tp[0] == "t"}
    assert sorted(logs) == [0, 1, 2]
    assert all(plog.recovery_point >= 50 for plog in logs.values())
    lines = (tmp_path / "broker" / RECOVERY_CHECKPOINT).read_text().splitlines()
    assert {f"t {p} {plog.recovery_point}" for p, plog in logs.items()} <= set(lines)


def test_a_roll_fsyncs_the_old_segment_while_the_loop_keeps_serving(broker, tmp_path, monkeypatch):
    loop, state, b = broker
    b.create_topic("t", 1)
    produce(b, 0, 50)
    plog = state.partitions[("t", 0)]
    end = plog.log_end_offset
    disk = slow_disk(monkeypatch, tmp_path / "broker", "t-0/*.log")

    async def roll_and_wait():
        plog.housekeeping.roll()   # as an append past segment.bytes does
        assert plog.recovery_point < end   # not durable yet: the fsync is still running
        for _ in range(500):
            if not state._roll_syncs:
                break
            await asyncio.sleep(0.01)

    # the append lands in the new segment while the old one syncs
    served = loop.run_until_complete(serving_while(disk, b, 1, roll_and_wait))
    assert disk.timed_out == 0, "the rolled segment was fsynced on the event loop"
    assert disk.released == 1 and served == 1
    assert plog.recovery_point == end            # past the rolled segment, once it was synced
    assert plog.log_end_offset == end + 1


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="names an fsynced file through /proc")
@pytest.mark.parametrize("when", ["a recovery point moved", "the periodic flush"])
def test_checkpoint_files_are_written_while_the_loop_keeps_serving(broker, tmp_path, monkeypatch, when):
    """The checkpoint files (recovery points, log starts, high watermarks: each written and
    fsynced, then renamed) were written on the event loop once a second while a replicated
    partition's high watermark or a recovery point moved, and after every periodic flush."""
    loop, state, b = broker
    b.create_topic("t", 1)
    produce(b, 0, 50)
    plog = state.partitions[("t", 0)]
    state.checkpoint_if_moved()   # the files as they are: written once, at once
    loop.run_until_complete(state._checkpoints.wait())
    assert plog.recovery_point == 0
    disk = SlowCheckpointFiles(os.fsync)
    monkeypatch.setattr(os, "fsync", disk.fsync)

    async def work():
        if when == "a recovery point moved":
            plog.housekeeping.flush()          # as a roll's fsync moves it
            state.checkpoint_if_moved()        # the once-a-second call
            state.checkpoint_if_moved()        # a write in flight: not asked twice
            await state._checkpoints.wait()
        else:
            await state.checkpoint()

    served = loop.run_until_complete(serving_while(disk, b, 1, work))
    assert disk.timed_out == 0, "a checkpoint file was fsynced on the event loop"
    assert disk.released == 3 and served == 3   # the three files, each once
    assert plog.recovery_point == 50
    lines = (tmp_path / "broker" / RECOVERY_CHECKPOINT).read_text().splitlines()
    assert "t 0 50" in lines
    disk.release.set()   # nothing moved since: nothing written again
    state.checkpoint_if_moved()
    loop.run_until_complete(state._checkpoints.wait())
    assert disk.released + disk.timed_out == 3
