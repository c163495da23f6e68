"""A roll whose fsync is handed to PartitionLog.roll_sync (the broker runs it in a worker thread):
the recovery point moves past the rolled segment only once segment_synced says its fsync is
done, in roll order, and never when the log changed under it meanwhile."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from sandbox.log import LogConfig, PartitionLog, build_batch
from sandbox.log.recovery import open_segments
from sandbox.log.segment import Segment


class Deferred:
    """roll_sync stand-in: takes every rolled segment, fsyncs nothing until told."""

    def __init__(self) -> None:
        self.pending: list[tuple] = []

    def __call__(self, log, seg) -> bool:
        self.pending.append((log, seg, seg.mark()))
        return True

    def finish(self, i: int = 0) -> None:
        log, seg, mark = self.pending.pop(i)
        seg.fsync()
        log.housekeeping.segment_synced(seg, mark)


def fill(log: PartitionLog, n: int) -> None:
    for i in range(n):
        log.append(build_batch([(None, b"v%03d" % i + b"x" * 60)]))


@pytest.fixture
def log(tmp_path):
    log = PartitionLog(tmp_path / "t-0", LogConfig(segment_bytes=400))
    yield log
    log.close()


def test_the_recovery_point_waits_for_the_deferred_fsync_then_moves_in_roll_order(log):
    log.roll_sync = deferred = Deferred()
    fill(log, 12)
    segments = log.housekeeping.segment_paths()
    assert len(segments) >= 3 and len(deferred.pending) == len(segments) - 1
    assert log.recovery_point == 0   # nothing rolled is known durable yet
    first_end = deferred.pending[0][2][0]
    second_end = deferred.pending[1][2][0]
    deferred.finish(1)               # the second roll's fsync ends first: nothing moves yet
    assert log.recovery_point == 0
    deferred.finish(0)
    assert log.recovery_point == first_end
    # the second is known durable now only by a flush: its own completion came too early
    log.housekeeping.flush()
    assert log.recovery_point == log.log_end_offset >= second_end


def test_in_order_completions_move_the_point_past_each_segment_and_write_its_indexes(log):
    log.roll_sync = deferred = Deferred()
    fill(log, 12)
    ends = [mark[0] for _l, _s, mark in deferred.pending]
    segs = [seg for _l, seg, _e in deferred.pending]
    for end, seg in zip(ends, segs):
        deferred.finish(0)
        assert log.recovery_point == end
        assert seg.index_path.exists() and not seg.index_dirty


def test_a_log_cut_into_the_rolled_segment_meanwhile_keeps_its_recovery_point(log):
    log.roll_sync = deferred = Deferred()
    fill(log, 6)
    assert deferred.pending
    _l, seg, _mark = deferred.pending[0]
    log.truncate_to(seg.base_offset + 1)   # a follower cut back into the rolled segment
    deferred.finish(0)
    assert log.recovery_point <= log.log_end_offset
    assert log.recovery_point <= seg.base_offset + 1


def test_without_roll_sync_a_roll_is_durable_at_once(log):
    fill(log, 6)
    assert len(log.housekeeping.segment_paths()) >= 2
    assert log.recovery_point > 0


def test_a_crash_before_the_deferred_fsync_rescans_the_rolled_segments(tmp_path):
    log = PartitionLog(tmp_path / "t-0", LogConfig(segment_bytes=400))
    log.roll_sync = Deferred()
    fill(log, 12)
    leo = log.log_end_offset
    assert log.recovery_point == 0
    # reopened as after a crash, with the recovery point the log would have checkpointed: every
    # segment is scanned again and the log ends where it did
    segs = open_segments(tmp_path / "t-0", 4096, log.recovery_point, lambda *_: None)
    try:
        assert segs[-1].next_offset == leo
    finally:
        for s in segs:
            s.close()
        log.close()


# ---- the fsync and its report are two events: the model the broker's worker thread gives

class Disk:
    """What is durable: per segment object, the offset up to which its current bytes were
    fsynced (a cut lowers it: the cut-off bytes are gone, the rest stays durable)."""

    def __init__(self, monkeypatch) -> None:
        self.durable: dict[int, int] = {}
        disk = self
        real_truncate = Segment.truncate

        def fsync(seg) -> None:
            disk.durable[id(seg)] = seg.next_offset

        def truncate(seg, pos: int) -> None:
            real_truncate(seg, pos)
            disk.durable[id(seg)] = min(disk.durable.get(id(seg), seg.base_offset), seg.next_offset)

        monkeypatch.setattr(Segment, "fsync", fsync)
        monkeypatch.setattr(Segment, "truncate", truncate)

    def check(self, log: PartitionLog) -> None:
        """Everything below the recovery point is durable."""
        rp = log.recovery_point
        assert rp <= log.log_end_offset
        for seg in log._segments:
            if seg.base_offset < rp:
                need = min(rp, seg.next_offset)
                assert self.durable.get(id(seg), seg.base_offset) >= need, (
                    f"recovery point {rp} claims offsets up to {need} of segment {seg.base_offset} "
                    f"durable; only {self.durable.get(id(seg))} were fsynced")


class TwoPhase:
    """roll_sync stand-in: a taken segment is fsynced at one moment (sync) and reported at a
    later one (report), or its fsync fails (drop)."""

    def __init__(self) -> None:
        self.pending: list[list] = []   # [log, seg, mark, synced]

    def __call__(self, log, seg) -> bool:
        self.pending.append([log, seg, seg.mark(), False])
        return True

    def sync(self, i: int) -> None:
        p = self.pending[i]
        if not p[1].closed:
            p[1].fsync()   # as the worker's fsync of its duplicate handle: the bytes there now
        p[3] = True

    def report(self, i: int) -> None:
        """Report the i-th (modulo) of the fsyncs that ran, in any order."""
        ran = [k for k, p in enumerate(self.pending) if p[3]]
        if ran:
            log, seg, mark, _synced = self.pending.pop(ran[i % len(ran)])
            log.housekeeping.segment_synced(seg, mark)

    def drop(self, i: int) -> None:
        self.pending.pop(i)


def test_a_segment_cut_after_its_fsync_ran_is_not_taken_as_synced_by_that_fsyncs_report(tmp_path, monkeypatch):
    disk = Disk(monkeypatch)
    log = PartitionLog(tmp_path / "t-0", LogConfig(segment_bytes=400))
    try:
        log.roll_sync = two = TwoPhase()
        fill(log, 6)                    # one roll: segment 0 handed over
        _l, seg, (end, _cuts), _s = two.pending[0]
        two.sync(0)                     # its fsync runs now...
        log.truncate_to(end - 1)        # ...then a follower cuts the last record and
        log.append(build_batch([(None, b"other")]))   # appends a different one back to `end`
        log.housekeeping.roll()         # and it rolls again
        # the cut segment was closed again at the cut (handed over anew); the record went to a new one
        assert seg.next_offset == end - 1 and log._bases[-2:] == [end - 1, end]
        two.report(0)                   # the first fsync's report arrives: it saw a longer segment
        disk.check(log)
        assert log.recovery_point < end
    finally:
        log.close()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=st.lists(st.tuples(st.sampled_from(["append", "roll", "sync", "report", "drop", "truncate", "flush"]),
                              st.integers(0, 7)), max_size=60))
def test_the_recovery_point_never_claims_bytes_no_fsync_covered(tmp_path_factory, monkeypatch, ops):
    """Random appends, rolls, deferred fsyncs that run, report and fail in any order, follower
    cuts and flushes: after every step, everything below the recovery point was fsynced as it
    is now."""
    disk = Disk(monkeypatch)
    log = PartitionLog(tmp_path_factory.mktemp("rs") / "t-0", LogConfig(segment_bytes=300))
    try:
        log.roll_sync = two = TwoPhase()
        for op, n in ops:
            if op == "append":
                for _ in range(n + 1):
                    log.append(build_batch([(None, b"r" * 40)]))
            elif op == "roll":
                log.housekeeping.roll()
            elif op == "report":
                two.report(n)
            elif op in ("sync", "drop") and two.pending:
                getattr(two, op)(n % len(two.pending))
            elif op == "truncate" and log.log_end_offset:
                log.truncate_to(max(0, log.log_end_offset - 1 - n))
            elif op == "flush":
                log.housekeeping.flush()
            disk.check(log)
    finally:
        log.close()
