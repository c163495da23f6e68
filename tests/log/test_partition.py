"""PartitionLog: appends, reads, rolls, indexes, timestamps, truncation, DeleteRecords, retention."""
import struct

import crc32c
import pytest

from sandbox.log import (
    CorruptRecordError, LogConfig, OffsetOutOfRangeError, PartitionLog, RecordTooLargeError, iter_records,
    parse_header, validate_batches,
)
from sandbox.log.batch import iter_batches
from sandbox.log import MAX_TIMESTAMP

from .logkit import Clock, batch, offsets, values


def small(**kw):
    kw.setdefault("segment_bytes", 1024)
    kw.setdefault("index_interval_bytes", 128)
    return LogConfig(**kw)


@pytest.fixture
def log(tmp_path):
    lg = PartitionLog(tmp_path / "orders-0", small())
    yield lg
    lg.close()


def test_offsets_assigned_across_appends(log):
    infos = [log.append(batch(3, tag=f"a{i}")) for i in range(10)]
    assert [(i.first_offset, i.last_offset) for i in infos] == [(3 * k, 3 * k + 2) for k in range(10)]
    assert log.log_end_offset == 30 == log.high_watermark
    data = log.read(0, 1 << 20).tobytes()
    assert offsets(data) == list(range(30))
    assert values(data)[4] == b"value-a1-1"
    # the broker wrote base offsets in place; the CRC still matches (base offset is not covered)
    validate_batches(data, 1 << 20)


def test_multi_batch_append_is_one_append(log):
    info = log.append(batch(2) + batch(5))
    assert (info.first_offset, info.last_offset, info.duplicate) == (0, 6, False)
    assert [h.base_offset for _, h in iter_batches(log.read(0, 1 << 20).tobytes())] == [0, 2]


def test_leader_epoch_written(log):
    log.append(batch(1), leader_epoch=7)
    assert parse_header(log.read(0, 1000).tobytes()).leader_epoch == 7


def test_read_from_middle_of_batch_returns_containing_batch(log):
    log.append(batch(5))
    log.append(batch(5))
    data = log.read(7, 1 << 20).tobytes()
    assert offsets(data) == list(range(5, 10))


def test_read_respects_max_bytes_but_returns_one_batch(log):
    for _ in range(5):
        log.append(batch(4))
    one = len(batch(4))
    assert offsets(log.read(0, 1).tobytes()) == [0, 1, 2, 3]          # KIP-74: at least one whole batch
    assert offsets(log.read(0, 2 * one + 5).tobytes()) == list(range(8))
    assert len(log.read(0, 2 * one + 5).tobytes()) == 2 * one
    # past the first partition of a fetch: only whole batches that fit, maybe none
    assert log.read(0, one - 1, min_one=False).tobytes() == b""
    assert offsets(log.read(0, 2 * one + 5, min_one=False).tobytes()) == list(range(8))


def test_read_max_offset_and_bounds(log):
    for _ in range(4):
        log.append(batch(2))
    assert offsets(log.read(0, 1 << 20, max_offset=4).tobytes()) == [0, 1, 2, 3]
    assert log.read(4, 1 << 20, max_offset=4).tobytes() == b""
    assert log.read(8, 1 << 20).tobytes() == b""
    with pytest.raises(OffsetOutOfRangeError):
        log.read(9, 100).tobytes()
    with pytest.raises(OffsetOutOfRangeError):
        log.read(-1, 100).tobytes()


def test_roll_by_size_and_reads_across_segments(log):
    for i in range(40):
        log.append(batch(2, tag=f"s{i}"))
    assert log.housekeeping.segment_count > 3
    for seg in log.housekeeping.segment_paths()[:-1]:
        assert seg.stat().st_size <= 1024
    assert offsets(log.read(0, 1 << 20).tobytes()) == list(range(80))
    for off in (0, 13, 41, 79):
        assert offsets(log.read(off, 1).tobytes())[0] <= off <= offsets(log.read(off, 1).tobytes())[-1]
    names = sorted(p.name for p in log.directory.iterdir() if p.suffix == ".log")
    assert names[0] == "00000000000000000000.log" and all(len(n) == 24 for n in names)


def test_a_read_is_runs_of_segment_bytes_read_on_demand(log):
    for i in range(30):
        log.append(batch(3, tag=f"x{i}"))
    lazy = log.read(10, 2000)
    slices = lazy.slices
    data = b""
    for seg, pos, length in slices:
        with open(seg.log_path, "rb") as f:
            f.seek(pos)
            data += f.read(length)
    assert data == lazy.tobytes() and len(lazy) == len(data) > 0
    buf = bytearray(len(lazy))
    assert lazy.readinto(buf) == len(data) and bytes(buf) == data
    assert len(slices) >= 1


def test_roll_by_time(tmp_path):
    clock = Clock()
    log = PartitionLog(tmp_path / "t-0", LogConfig(segment_ms=1000), clock=clock)
    log.append(batch(1))
    clock.advance_ms(500)
    log.append(batch(1))
    assert log.housekeeping.segment_count == 1
    clock.advance_ms(600)
    log.append(batch(1))
    assert log.housekeeping.segment_count == 2
    assert [p.name for p in log.housekeeping.segment_paths()][-1] == "00000000000000000002.log"
    log.close()


def test_index_lookup_after_reopen(tmp_path):
    d = tmp_path / "t-0"
    log = PartitionLog(d, small(segment_bytes=1 << 20, index_interval_bytes=100))
    for i in range(200):
        log.append(batch(1, tag=f"i{i}", ts=10_000 + i))
    expected = {o: log.read(o, 1).tobytes() for o in (0, 57, 123, 199)}
    log.close()
    assert (d / "00000000000000000000.index").stat().st_size > 8 * 10
    log = PartitionLog(d, small(segment_bytes=1 << 20, index_interval_bytes=100), recovery_point=200)
    seg = log._segments[0]
    assert len(seg.idx_rel) > 10
    assert 0 < seg.lookup(123) <= [p for p, h in seg.walk_headers(0) if h.base_offset == 123][0]
    for o, data in expected.items():
        assert log.read(o, 1).tobytes() == data
    assert log.offset_for_timestamp(10_150) == (150, 10_150)
    log.close()


def test_offset_for_timestamp_and_max_timestamp(log):
    for i, ts in enumerate([100, 300, 200, 500, 400]):
        log.append(batch(2, ts=ts))
    assert log.offset_for_timestamp(0) == (0, 100)
    assert log.offset_for_timestamp(250) == (2, 300)
    assert log.offset_for_timestamp(301) == (6, 500)
    assert log.offset_for_timestamp(501) is None
    assert log.offset_for_timestamp(MAX_TIMESTAMP) == (6, 500)


def test_max_timestamp_empty(tmp_path):
    log = PartitionLog(tmp_path / "e-0", small())
    assert log.offset_for_timestamp(MAX_TIMESTAMP) is None
    assert log.offset_for_timestamp(0) is None
    log.close()


def test_log_append_time_sets_timestamp_and_valid_crc(tmp_path):
    log = PartitionLog(tmp_path / "lat-0", small(message_timestamp_type="LogAppendTime"))
    info = log.append(batch(3, ts=5), now_ms=777_000)
    assert info.log_append_time_ms == 777_000
    data = log.read(0, 1 << 20).tobytes()
    h = validate_batches(data, 1 << 20)[0]  # raises if the CRC was not recomputed
    assert h.max_timestamp == 777_000 and h.attributes & 0x08
    assert {r[1] for r in iter_records(data)} == {777_000}
    assert log.append(batch(1)).log_append_time_ms >= 0
    log.close()


def test_create_time_append_time_is_minus_one(log):
    assert log.append(batch(1)).log_append_time_ms == -1


def test_append_rejects_bad_input(log):
    bad = bytearray(batch(2))
    bad[-1] ^= 1
    with pytest.raises(CorruptRecordError):
        log.append(bytes(bad))
    log.config = small(max_message_bytes=500)
    with pytest.raises(RecordTooLargeError):
        log.append(batch(200))
    assert log.log_end_offset == 0 and log.size_bytes == 0


def test_truncate_to(log):
    for i in range(20):
        log.append(batch(3, tag=f"t{i}"))
    nseg = log.housekeeping.segment_count
    log.truncate_to(31)  # mid-batch: the batch 30..32 goes too
    assert log.log_end_offset == 30 and log.high_watermark == 30
    assert offsets(log.read(0, 1 << 20).tobytes()) == list(range(30))
    assert log.housekeeping.segment_count <= nseg
    assert log.append(batch(1)).first_offset == 30
    log.truncate_to(0)
    assert log.log_end_offset == 0 and log.read(0, 100).tobytes() == b""
    assert log.append(batch(1)).first_offset == 0


def test_truncate_survives_reopen(tmp_path):
    d = tmp_path / "t-0"
    log = PartitionLog(d, small())
    for i in range(20):
        log.append(batch(3, tag=f"t{i}"))
    log.truncate_to(15)
    log.close()
    log = PartitionLog(d, small())
    assert log.log_end_offset == 15
    assert offsets(log.read(0, 1 << 20).tobytes()) == list(range(15))
    log.close()


def test_delete_records_before(log):
    for i in range(30):
        log.append(batch(2, tag=f"d{i}"))
    nseg = log.housekeeping.segment_count
    assert log.delete_records_before(25) == 25
    assert log.log_start_offset == 25
    assert log.housekeeping.segment_count < nseg
    assert offsets(log.read(25, 1 << 20).tobytes())[0] <= 25
    with pytest.raises(OffsetOutOfRangeError):
        log.read(10, 100).tobytes()
    with pytest.raises(OffsetOutOfRangeError):
        log.delete_records_before(61)
    assert log.delete_records_before(3) == 25  # never goes backwards
    assert log.delete_records_before(60) == 60
    assert log.read(60, 100).tobytes() == b"" and log.append(batch(1)).first_offset == 60


def test_retention_by_time(tmp_path):
    clock = Clock()
    log = PartitionLog(tmp_path / "r-0", small(retention_ms=10_000), clock=clock)
    now = clock.ms()
    for i in range(30):
        log.append(batch(2, ts=now - 20_000 if i < 15 else now))
    assert log.housekeeping.segment_count > 2
    size = log.size_bytes
    freed = log.housekeeping.apply_retention(now_ms=now)
    assert freed > 0 and log.size_bytes == size - freed
    assert log.log_start_offset > 0
    assert log.read(log.log_start_offset, 1 << 20).tobytes()
    # every remaining segment except possibly the first holds fresh data
    assert log.offset_for_timestamp(now) is not None
    assert log.housekeeping.apply_retention(now_ms=now) == 0
    log.close()


def test_retention_by_bytes_never_active(tmp_path):
    log = PartitionLog(tmp_path / "r-0", small(retention_bytes=2000, retention_ms=-1))
    for i in range(60):
        log.append(batch(2, tag=f"b{i}"))
    log.housekeeping.apply_retention()
    assert log.size_bytes <= 2000 + 1024
    assert log.housekeeping.segment_count >= 1
    cfg = small(retention_bytes=0, retention_ms=-1)
    log.config = cfg
    log.housekeeping.apply_retention()
    # as Kafka's: the active segment goes too (rolled first), leaving one empty at the log end
    assert log.housekeeping.segment_count == 1 and log.size_bytes == 0
    assert log.log_end_offset == 120 and log.log_start_offset == 120
    log.close()


def test_retention_by_time_takes_an_idle_partitions_active_segment(tmp_path):
    """Found by review: retention never took the active segment, so a topic written once and then
    left idle kept its records past retention.ms for good (nothing rolls a segment but a write).
    Kafka's deletableSegments takes it once wholly below the high watermark, rolling first."""
    now = [1_000_000.0]
    log = PartitionLog(tmp_path / "idle-0", small(retention_ms=60_000), clock=lambda: now[0])
    for i in range(3):
        log.append(batch(2, tag=f"b{i}", ts=int(now[0] * 1000)))
    assert log.housekeeping.segment_count == 1
    assert log.housekeeping.apply_retention(int(now[0] * 1000) + 30_000) == 0   # not old yet
    freed = log.housekeeping.apply_retention(int(now[0] * 1000) + 61_000)
    assert freed > 0 and log.log_start_offset == log.log_end_offset == 6
    assert log.read(6, 1000).tobytes() == b""
    log.append(batch(2, tag="after"))
    assert log.log_end_offset == 8
    log.close()
    again = PartitionLog(tmp_path / "idle-0", small(retention_ms=60_000))
    assert (again.log_start_offset, again.log_end_offset) == (6, 8)
    again.close()


def test_retention_off_for_compact(tmp_path):
    log = PartitionLog(tmp_path / "c-0", small(retention_bytes=0, cleanup_policy="compact"))
    for i in range(30):
        log.append(batch(2))
    assert log.housekeeping.apply_retention() == 0
    log.close()


def test_flush_policy_by_messages(tmp_path):
    log = PartitionLog(tmp_path / "f-0", small(flush_messages=5))
    log.append(batch(3))
    assert log.recovery_point == 0
    log.append(batch(3))
    assert log.recovery_point == 6
    log.close()


def test_flush_policy_by_time(tmp_path):
    clock = Clock()
    log = PartitionLog(tmp_path / "f-0", small(flush_ms=1000), clock=clock)
    log.append(batch(1))
    assert log.recovery_point == 0
    clock.advance_ms(1500)
    log.append(batch(1))
    assert log.recovery_point == 2
    log.close()


def test_a_timer_flushes_an_idle_partition_once_flush_ms_passed(tmp_path):
    clock = Clock()
    log = PartitionLog(tmp_path / "fi-0", small(flush_ms=1000), clock=clock)
    log.append(batch(1))
    hk = log.housekeeping
    assert not hk.flush(clock.ms() + 500, if_due=True) and hk.dirty
    assert hk.flush(clock.ms() + 1000, if_due=True) and not hk.dirty and log.recovery_point == 1
    assert not hk.flush(clock.ms() + 5000, if_due=True)          # nothing unflushed
    log.close()


def test_high_watermark_settable(log):
    log.append(batch(5))
    log.replica.high_watermark = 2
    assert log.high_watermark == 2 and log.log_end_offset == 5
    assert offsets(log.read(0, 1 << 20, max_offset=log.high_watermark).tobytes()) == [0, 1, 2, 3, 4]  # starts below 2
    assert log.read(5, 1 << 20, max_offset=log.high_watermark).tobytes() == b""
    log.append(batch(1))
    assert log.high_watermark == 6


def test_delete_removes_directory_with_windows_semantics(tmp_path, windows_files):
    d = tmp_path / "gone-0"
    log = PartitionLog(d, small())
    for i in range(20):
        log.append(batch(2))
    log.housekeeping.delete()
    assert not d.exists()


def test_in_place_append_stamps_the_callers_buffer_and_stores_the_same_bytes(tmp_path):
    from sandbox.log import LogConfig, PartitionLog

    data = batch(2, tag="a") + batch(1, tag="c")
    copied = PartitionLog(tmp_path / "copy-0", LogConfig())
    copied.append(batch(1, tag="x"))
    copied.append(data)
    owned = PartitionLog(tmp_path / "owned-0", LogConfig())
    owned.append(batch(1, tag="x"))
    buf = bytearray(data)
    info = owned.append(memoryview(buf), in_place=True)
    assert info.first_offset == 1 and info.last_offset == 3
    assert struct.unpack_from(">q", buf, 0)[0] == 1          # stamped where it lay: no copy made
    assert owned.read(0, 1 << 20).tobytes() == copied.read(0, 1 << 20).tobytes()
    assert offsets(owned.read(0, 1 << 20).tobytes()) == [0, 1, 2, 3]
    copied.close()
    owned.close()


def test_retention_frees_a_full_disk_whose_producer_snapshot_cannot_be_written_first(tmp_path, monkeypatch):
    """Found by review: the producer snapshot written before the deletion failed with ENOSPC on a
    full disk, so retention, the one thing that frees it, deleted nothing."""
    import errno

    from sandbox.log.producers import ProducerStore

    log = PartitionLog(tmp_path / "full-0", small(retention_bytes=2000, retention_ms=-1))
    for i in range(60):
        log.append(batch(2, tag=f"b{i}"))
    before, real, calls = log.size_bytes, ProducerStore.snapshot, []

    def full_once(self, log_end, keep=()):
        calls.append(log_end)
        if len(calls) == 1:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, log_end, keep)

    monkeypatch.setattr(ProducerStore, "snapshot", full_once)
    assert log.housekeeping.apply_retention() > 0 and log.size_bytes < before
    assert len(calls) == 2   # written after the deletion, in the room it made
    log.close()
