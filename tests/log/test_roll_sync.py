"""A roll whose fsync is handed to PartitionLog.roll_sync (the broker runs it in a worker thread):
the recovery point moves past the rolled segment only once segment_synced says its fsync is
done, in roll order, and never when the log changed under it meanwhile."""

from __future__ import annotations

import pytest

from sandbox.log import LogConfig, PartitionLog, build_batch
from sandbox.log.recovery import open_segments


class Deferred:
    """roll_sync stand-in: takes every rolled segment, fsyncs nothing until told."""

    def __init__(self) -> None:
        self.pending: list[tuple] = []

    def __call__(self, log, seg) -> bool:
        self.pending.append((log, seg, seg.next_offset))
        return True

    def finish(self, i: int = 0) -> None:
        log, seg, next_offset = self.pending.pop(i)
        seg.fsync()
        log.housekeeping.segment_synced(seg, next_offset)


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
    first_end = deferred.pending[0][2]
    second_end = deferred.pending[1][2]
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
    ends = [end for _l, _s, end in deferred.pending]
    segs = [seg for _l, seg, _e in deferred.pending]
    for end, seg in zip(ends, segs):
        deferred.finish(0)
        assert log.recovery_point == end
        assert seg.index_path.exists() and not seg.index_dirty


def test_a_log_cut_into_the_rolled_segment_meanwhile_keeps_its_recovery_point(log):
    log.roll_sync = deferred = Deferred()
    fill(log, 6)
    assert deferred.pending
    _l, seg, end = deferred.pending[0]
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
