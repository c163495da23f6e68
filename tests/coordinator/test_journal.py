"""MetadataJournal and Coordinator durability: restart, snapshots, torn tails, corruption, lock."""
from __future__ import annotations

import errno
import json
import subprocess
import sys

import pytest

from sandbox.coordinator import (
    Coordinator, CoordinatorError, JournalCorruptError, JournalLockedError, MetadataJournal,
)
from sandbox.protocol import errors as E

from coordinator.coordinator_helpers import FakeClock


def populate(c: Coordinator) -> None:
    c.register_broker(1, "127.0.0.1", 9092)
    c.register_broker(2, "127.0.0.1", 9093)
    c.create_topic("orders", 3, 2, {"retention.ms": "1000", "cleanup.policy": "compact"})
    c.create_topic("gone", 1, 1)
    c.delete_topic("gone")
    c.create_topic("__consumer_offsets", 2, 1)
    c.create_partitions("orders", 4)
    c.alter_configs("orders", {"segment.bytes": "1048576"}, ["cleanup.policy"])
    c.allocate_producer_ids(1000)


def test_restart_restores_identical_state(make_coordinator):
    c = make_coordinator()
    populate(c)
    c.alter_group_configs("billing", {"consumer.session.timeout.ms": "50000"})
    c.alter_group_configs("gone-group", {"consumer.heartbeat.interval.ms": "2000"})
    c.alter_group_configs("gone-group", None, ["consumer.heartbeat.interval.ms"])
    state = c.state()
    c.close()
    c2 = make_coordinator()
    assert c2.state() == state
    assert c2.cluster_id == state.cluster_id and len(c2.cluster_id) == 22
    assert c2.topic("orders").topic_id == state.topics["orders"].topic_id
    assert c2.topic_by_id(state.topics["orders"].topic_id).name == "orders"
    assert c2.describe_configs("orders")["segment.bytes"] == ("1048576", False)
    assert c2.group_configs("billing") == {"consumer.session.timeout.ms": "50000"}
    assert c2.group_configs("gone-group") == {} and "gone-group" not in state.group_configs
    assert c2.allocate_producer_ids(10) >= state.next_producer_id  # ids are never handed out twice


def test_restart_without_clean_close_replays_the_log(make_coordinator, tmp_path):
    c = make_coordinator()
    populate(c)
    c.alter_group_configs("billing", {"consumer.session.timeout.ms": "50000"})
    state = c.state()
    assert state.group_configs == {"billing": {"consumer.session.timeout.ms": "50000"}}
    c._journal._log.close()  # simulate a crash: no snapshot on close, lock left behind
    c._journal._log = None
    (tmp_path / "coordinator" / "coordinator.lock").write_text("999999999")
    assert not (tmp_path / "coordinator" / "snapshot.json").exists()
    assert make_coordinator().state() == state


def test_producer_ids_durable_across_crash(make_coordinator):
    c = make_coordinator()
    first = c.allocate_producer_ids(50)
    c._journal._log.close()
    c._journal._log = None
    c._journal._unlock()
    assert make_coordinator().allocate_producer_ids(50) >= first + 50


def test_cluster_id_given_once_then_checked(make_coordinator):
    c = make_coordinator(cluster_id="MkU3OEVBNTcwNTJENDM2Qk")
    assert c.cluster_id == "MkU3OEVBNTcwNTJENDM2Qk"
    c.close()
    with pytest.raises(CoordinatorError) as info:
        make_coordinator(cluster_id="somethingElseEntirely1")
    assert info.value.error_code == E.INCONSISTENT_CLUSTER_ID
    assert make_coordinator().cluster_id == "MkU3OEVBNTcwNTJENDM2Qk"


def test_snapshot_every_n_records_plus_tail_replay(make_coordinator, tmp_path):
    c = make_coordinator(snapshot_every=10)
    populate(c)
    directory = tmp_path / "coordinator"
    snap = json.loads((directory / "snapshot.json").read_text())
    assert 0 < snap["offset"] <= c.metadata_offset
    tail_lines = (directory / "metadata.log").read_bytes().count(b"\n")
    c.create_topic("after-snapshot", 2, 1)
    assert (directory / "metadata.log").read_bytes().count(b"\n") == tail_lines + 1
    state = c.state()
    assert 0 < c._journal.records_since_snapshot < 10
    c._journal._log.close()
    c._journal._log = None
    c._journal._unlock()
    c2 = make_coordinator()
    assert c2.state() == state and c2.topic("after-snapshot") is not None


def test_close_writes_snapshot_and_empties_log(make_coordinator, tmp_path):
    c = make_coordinator()
    populate(c)
    c.close()
    directory = tmp_path / "coordinator"
    assert (directory / "metadata.log").read_bytes() == b""
    assert json.loads((directory / "snapshot.json").read_text())["offset"] == c.metadata_offset
    assert not (directory / "coordinator.lock").exists()


def test_records_already_in_snapshot_are_skipped(tmp_path):
    j = MetadataJournal(tmp_path)
    j.load()
    j.append([{"type": "a"}, {"type": "b"}])
    log_bytes = (tmp_path / "metadata.log").read_bytes()
    j.write_snapshot({"fake": True}, 2)
    j.close()
    (tmp_path / "metadata.log").write_bytes(log_bytes)  # crash before the log was emptied
    j = MetadataJournal(tmp_path)
    assert j.load() == ({"fake": True}, [])
    assert j.append([{"type": "c"}]) == 2
    j.close()


def test_torn_tail_is_truncated_and_reported(make_coordinator, tmp_path, events):
    c = make_coordinator()
    populate(c)
    state = c.state()
    c._journal._log.close()
    c._journal._log = None
    c._journal._unlock()
    log = tmp_path / "coordinator" / "metadata.log"
    good = log.read_bytes()
    torn = b'1234abcd 400 {"offset":99,"records":[{"type":"top'
    log.write_bytes(good + torn)
    c2 = make_coordinator()
    assert c2.state() == state
    assert ("repair", {"service": "coordinator", "bytes": len(torn), "path": str(log)}) in events
    assert log.read_bytes() == good  # truncated back to the last whole batch
    c2.create_topic("next", 1, 1)  # and appending continues normally
    c2.close()
    assert make_coordinator().topic("next") is not None


def test_corrupt_last_line_with_valid_crc_frame_is_repaired(tmp_path):
    j = MetadataJournal(tmp_path)
    j.load()
    j.append([{"type": "a"}])
    j.append([{"type": "b"}])
    j.close()
    log = tmp_path / "metadata.log"
    data = bytearray(log.read_bytes())
    data[-5] ^= 0x01  # flip a bit inside the last line's payload
    log.write_bytes(bytes(data))
    repairs = []
    j = MetadataJournal(tmp_path, on_event=lambda k, d: repairs.append((k, d["bytes"])))
    assert j.load() == (None, [{"type": "a"}])
    assert repairs and repairs[0][0] == "repair"
    j.close()


def test_mid_file_corruption_raises(make_coordinator, tmp_path):
    c = make_coordinator()
    populate(c)
    c._journal._log.close()
    c._journal._log = None
    c._journal._unlock()
    log = tmp_path / "coordinator" / "metadata.log"
    lines = log.read_bytes().split(b"\n")
    hit = next(i for i, line in enumerate(lines) if b"orders" in line)
    assert hit < len(lines) - 2  # valid batches follow it
    lines[hit] = lines[hit].replace(b"orders", b"ordars")  # CRC no longer matches
    log.write_bytes(b"\n".join(lines))
    with pytest.raises(JournalCorruptError, match="byte"):
        make_coordinator()
    assert not (tmp_path / "coordinator" / "coordinator.lock").exists()  # lock released


def test_corrupt_snapshot_raises(make_coordinator, tmp_path):
    c = make_coordinator()
    populate(c)
    c.close()
    snap = tmp_path / "coordinator" / "snapshot.json"
    snap.write_text(snap.read_text().replace("orders", "ordars"))
    with pytest.raises(JournalCorruptError, match="checksum"):
        make_coordinator()
    snap.write_text("{not json")
    with pytest.raises(JournalCorruptError, match="corrupt"):
        make_coordinator()


def test_gap_in_log_raises(tmp_path):
    j = MetadataJournal(tmp_path)
    j.load()
    j.append([{"type": "a"}])
    j.append([{"type": "b"}])
    j.append([{"type": "c"}])
    j.close()
    log = tmp_path / "metadata.log"
    lines = log.read_bytes().splitlines(keepends=True)
    log.write_bytes(lines[0] + lines[2])
    with pytest.raises(JournalCorruptError, match="missing"):
        MetadataJournal(tmp_path).load()


def test_live_lock_refuses_and_stale_lock_is_removed(tmp_path, events):
    c = Coordinator(tmp_path)
    with pytest.raises(JournalLockedError):
        Coordinator(tmp_path)  # this very process holds it
    c.close()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / "coordinator.lock").write_text(str(dead.pid))
    c = Coordinator(tmp_path, on_event=lambda k, d: events.append((k, d)))
    assert [k for k, _ in events] == ["stale-lock"] and events[0][1]["pid"] == dead.pid
    assert (tmp_path / "coordinator.lock").read_text().split()[0] == str(__import__("os").getpid())
    c.close()


def test_lock_naming_our_pid_from_an_earlier_process_is_stale(tmp_path, events):
    """A restarted container runs the coordinator as pid 1 again: its predecessor's lock names our
    pid, but this process never wrote it."""
    (tmp_path / "coordinator.lock").write_text(f"{__import__('os').getpid()} earlier-process")
    c = Coordinator(tmp_path, on_event=lambda k, d: events.append((k, d)))
    assert [k for k, _ in events] == ["stale-lock"]
    c.close()


def test_leftover_snapshot_tmp_is_ignored(make_coordinator, tmp_path):
    c = make_coordinator()
    populate(c)
    state = c.state()
    c.close()
    (tmp_path / "coordinator" / "snapshot.json.tmp").write_text("half a snapsh")
    assert make_coordinator().state() == state
    assert not (tmp_path / "coordinator" / "snapshot.json.tmp").exists()


def test_subscribers_see_applied_records(make_coordinator):
    c = make_coordinator()
    seen = []
    unsubscribe = c.subscribe(seen.append)
    c.register_broker(1, "h", 9092)
    offset = c.metadata_offset
    c.create_topic("t", 2, 1)
    assert [r["type"] for r in seen[-1]] == ["topic", "partition", "partition"]
    assert c.metadata_offset == offset + 3
    seen[-1][0]["name"] = "mutated"  # listeners get copies
    assert c.topic("t") is not None
    unsubscribe()
    c.delete_topic("t")
    assert [r["type"] for r in seen[-1]] == ["topic", "partition", "partition"]


def test_create_topics_per_topic_results_and_validate_only(make_coordinator):
    c = make_coordinator()
    c.register_broker(1, "h", 9092)
    results = c.create_topics([
        {"name": "ok", "num_partitions": 2},
        {"name": "bad name"},
        {"name": "dup"}, {"name": "dup"},
        {"name": "cfg", "configs": {"retention.ms": "x"}},
    ])
    codes = {r.name: r.error_code for r in results}
    assert codes == {"ok": 0, "bad name": E.INVALID_TOPIC_EXCEPTION, "dup": E.INVALID_REQUEST,
                     "cfg": E.INVALID_CONFIG}
    assert results[0].topic.name == "ok" and len(results[0].topic.partitions) == 2
    assert "retention.ms" in results[-1].error_message
    offset = c.metadata_offset
    [res] = c.create_topics([{"name": "dry", "num_partitions": 3}], validate_only=True)
    assert res.error_code == 0 and len(res.topic.partitions) == 3
    assert c.topic("dry") is None and c.metadata_offset == offset
    assert len(c.create_partitions("ok", 5, validate_only=True).partitions) == 5
    assert len(c.topic("ok").partitions) == 2
    c.alter_configs("ok", {"retention.ms": "1"}, validate_only=True)
    assert c.topic("ok").configs == {} and c.metadata_offset == offset


def test_snapshot_replace_retries_while_windows_reports_busy(tmp_path, monkeypatch):
    import os

    from sandbox.coordinator import journal as journal_mod
    real_replace, calls = os.replace, []

    def busy_twice(src, dst):
        calls.append(dst)
        if len(calls) <= 2:
            raise PermissionError(13, "The process cannot access the file")
        real_replace(src, dst)

    monkeypatch.setattr(journal_mod.os, "replace", busy_twice)
    j = MetadataJournal(tmp_path)
    j.load()
    j.append([{"type": "a"}])
    j.write_snapshot({"s": 1}, 1)
    j.close()
    assert len(calls) == 3
    monkeypatch.setattr(journal_mod.os, "replace", real_replace)
    j = MetadataJournal(tmp_path)
    assert j.load() == ({"s": 1}, [])
    j.close()


def test_cluster_id_looks_like_kafkas():
    import base64

    from sandbox.coordinator import new_cluster_id
    ids = {new_cluster_id() for _ in range(50)}
    assert len(ids) == 50
    for cid in ids:
        assert len(cid) == 22 and not cid.startswith("-")
        assert len(base64.urlsafe_b64decode(cid + "==")) == 16


def test_a_journal_started_afresh_never_hands_out_ids_the_lost_one_did(tmp_path):
    """The supervisor replaces a destroyed coordinator journal with a new one while the brokers
    keep their logs, which name the producer ids of the old one: a new journal starts its ids
    at the clock (milliseconds x 1000), above every id an earlier journal handed out."""
    from sandbox.coordinator.controller import Coordinator
    now = [1_700_000_000.0]
    old = Coordinator(tmp_path / "old", clock=lambda: now[0])
    blocks = [old.allocate_producer_ids(1000) for _ in range(3)]   # three brokers, the same millisecond
    assert blocks == [blocks[0], blocks[0] + 1000, blocks[0] + 2000]
    assert blocks[0] == 1_700_000_000_000 * 1000
    old.close()
    now[0] += 0.5   # the journal is destroyed and the coordinator restarted half a second later
    new = Coordinator(tmp_path / "new", clock=lambda: now[0])
    assert new.allocate_producer_ids(1000) >= blocks[-1] + 1000
    new.close()


def test_a_failed_snapshot_neither_fails_the_change_nor_leaves_a_hole_in_the_brokers_feed(tmp_path, monkeypatch):
    """A change journaled and applied is committed: a snapshot that cannot be written then (a full
    disk: the snapshot is the largest write) is a warning and is tried again, and the brokers'
    feed has every record in order (the failure used to skip the feed, whose ring then served the
    next change's records under the missing offsets, and then could not be read past the hole)."""
    import errno

    from sandbox.coordinator import Coordinator
    from sandbox.coordinator.feed import MetadataFeed, decode_record
    from sandbox.coordinator.journal import MetadataJournal
    from sandbox.protocol.records import decode_batches

    clock = FakeClock()
    c = Coordinator(tmp_path / "c", session_timeout_ms=10_000, snapshot_every=1_000_000, clock=clock)
    feed = MetadataFeed(c)
    c.register_broker(1, "h", 9091)
    mirror_at = c.metadata_offset
    c._journal.snapshot_every = 1
    real, calls = MetadataJournal.write_snapshot, []

    def full_once(self, state, offset, **kw):
        calls.append(offset)
        if len(calls) == 1:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, state, offset, **kw)

    monkeypatch.setattr(MetadataJournal, "write_snapshot", full_once)
    c.create_topic("lost", 1, 1)          # committed although its snapshot failed
    clock.advance(1.1)                    # tried again a second later
    c.create_topic("next", 1, 1)          # the snapshot is written this time
    assert len(calls) == 2 and c._journal.records_since_snapshot == 0
    got = [(r.offset, decode_record(r.value)) for r in decode_batches(feed.read(mirror_at, 1 << 20))]
    assert [o for o, _ in got] == list(range(mirror_at, c.metadata_offset))
    assert [d.get("name") for _o, d in got if d["type"] == "topic"] == ["lost", "next"]
    c.close()
    again = Coordinator(tmp_path / "c", session_timeout_ms=10_000, clock=clock)
    assert again.topic("lost") is not None and again.topic("next") is not None
    again.close()


class _FailingDisk:
    """The journal's file on a disk that fails: the next write stores half its bytes then ENOSPC;
    every truncate fails with EIO while `truncate_fails`."""

    def __init__(self, f) -> None:
        self.f, self.write_fails, self.truncate_fails = f, True, True

    def __getattr__(self, name):
        return getattr(self.f, name)

    def write(self, b):
        if self.write_fails:
            self.write_fails = False
            self.f.write(b[: len(b) // 2])
            raise OSError(errno.ENOSPC, "No space left on device")
        return self.f.write(b)

    def truncate(self, *a):
        if self.truncate_fails:
            raise OSError(errno.EIO, "Input/output error")
        return self.f.truncate(*a)


def _reopen(c: Coordinator, d, clock) -> Coordinator:
    c._journal._log.close()   # a crash: no snapshot, no clean close
    c._journal._unlock()
    return Coordinator(d, clock=clock)


def test_a_failed_append_whose_bytes_could_not_be_cut_never_glues_the_next_acknowledged_change(tmp_path):
    """Found by review: a full disk took half of an append and the truncate that should remove it
    failed too; the next change was written after those bytes and answered NONE, then read back
    at the next start as one torn line with them (cut: the acknowledged topic gone) or, with more
    after it, as damage in the middle (the journal quarantined)."""
    clock = FakeClock()
    c = Coordinator(tmp_path, clock=clock)
    c.register_broker(1, "127.0.0.1", 9091)
    c.create_topic("a")
    real = c._journal._log
    disk = c._journal._log = _FailingDisk(real)
    with pytest.raises(CoordinatorError):
        c.create_topic("b")
    with pytest.raises((CoordinatorError, OSError)):   # the leftover still cannot be cut: refused too
        c.create_topic("c")
    assert c.topic("c") is None
    disk.truncate_fails = False
    c.create_topic("d")   # the leftover is cut first, then this is appended and answered
    c.create_topic("e")
    c._journal._log = real
    c2 = _reopen(c, tmp_path, clock)
    assert sorted(t.name for t in c2.topics()) == ["a", "d", "e"]
    c2.close()


def test_a_snapshot_another_program_holds_is_tried_once_a_second_without_stalling_changes(tmp_path, monkeypatch):
    """Found by review (Windows): while a scanner held snapshot.json, every change once a snapshot
    was due retried the replace for about 3 s on the event loop (heartbeats and fetches waited)."""
    from sandbox.coordinator import journal as journal_mod
    clock = FakeClock()
    c = Coordinator(tmp_path, clock=clock, snapshot_every=3)
    c.register_broker(1, "127.0.0.1", 9091)
    tries, slept = [], []
    real_replace = journal_mod.os.replace

    def held(src, dst):
        tries.append(dst)
        raise PermissionError(13, "The process cannot access the file because it is being used by another process")

    monkeypatch.setattr(journal_mod.os, "replace", held)
    monkeypatch.setattr(journal_mod.time, "sleep", slept.append)
    for i in range(6):
        c.create_topic(f"t{i}")
    assert len(tries) == 1 and slept == []       # once, no waiting; the changes all answered
    clock.advance(1.1)
    c.create_topic("t6")
    assert len(tries) == 2
    monkeypatch.setattr(journal_mod.os, "replace", real_replace)   # let go
    clock.advance(1.1)
    c.create_topic("t7")
    assert c._journal.records_since_snapshot == 0
    c.close()
    c2 = Coordinator(tmp_path, clock=clock)
    assert len([t for t in c2.topics() if t.name.startswith("t")]) == 8
    c2.close()


def test_a_stop_on_a_full_disk_still_closes_the_journal(tmp_path, monkeypatch):
    """Found by review: the snapshot at close raised ENOSPC before the journal was closed, so the
    stop ended in a traceback with the log open and the lock file left."""
    clock = FakeClock()
    c = Coordinator(tmp_path, clock=clock)
    c.register_broker(1, "127.0.0.1", 9091)
    c.create_topic("kept")

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(c._journal, "write_snapshot", full)
    c.close()
    assert c._journal._log is None or c._journal._log.closed
    c2 = Coordinator(tmp_path, clock=clock)   # no "locked by a live process", nothing lost
    assert c2.topic("kept") is not None
    c2.close()
