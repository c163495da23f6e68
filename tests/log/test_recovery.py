"""Recovery at open: torn/corrupt tails repaired, indexes rebuilt, acknowledged damage refused."""
import os

import pytest

from sandbox.log import LogConfig, PartitionLog, UnrecoverableJournalError, validate_batches

from .logkit import batch, offsets


def cfg(**kw):
    kw.setdefault("segment_bytes", 1024)
    kw.setdefault("index_interval_bytes", 128)
    return LogConfig(**kw)


def fill(d, n=30, **kw):
    log = PartitionLog(d, cfg(**kw))
    for i in range(n):
        log.append(batch(2, tag=f"b{i}", ts=1000 + i))
    data = log.read(0, 1 << 30).tobytes()
    segs = log.housekeeping.segment_paths()
    leo = log.log_end_offset
    log.close()
    return data, segs, leo


class Events(list):
    def __call__(self, kind, info):
        self.append((kind, info))

    def of(self, kind):
        return [i for k, i in self if k == kind]


def test_clean_reopen_no_events(tmp_path):
    d = tmp_path / "t-0"
    data, _, leo = fill(d)
    ev = Events()
    log = PartitionLog(d, cfg(), on_event=ev)
    assert ev == []
    assert log.log_end_offset == leo and log.read(0, 1 << 30).tobytes() == data
    log.close()


@pytest.mark.parametrize("rp", [0, 10**9])
def test_garbage_tail_repaired(tmp_path, rp):
    d = tmp_path / "t-0"
    data, segs, leo = fill(d)
    with open(segs[-1], "ab") as f:
        f.write(b"\x00garbage-garbage-garbage-garbage-garbage-garbage-garbage-garbage!!")
    ev = Events()
    log = PartitionLog(d, cfg(), recovery_point=rp, on_event=ev)
    rep = ev.of("repair")
    assert len(rep) == 1 and rep[0]["bytes"] == 66 and rep[0]["offset"] == leo
    assert rep[0]["segment"] == str(segs[-1])
    assert log.log_end_offset == leo and log.read(0, 1 << 30).tobytes() == data
    assert log.append(batch(1)).first_offset == leo
    log.close()


def test_half_batch_cut_repaired(tmp_path):
    d = tmp_path / "t-0"
    data, segs, leo = fill(d)
    last = segs[-1]
    size = last.stat().st_size
    one = len(batch(2, tag="b29"))
    os.truncate(last, size - one // 2)
    ev = Events()
    log = PartitionLog(d, cfg(), on_event=ev)
    rep = ev.of("repair")
    assert rep and rep[0]["bytes"] == one - one // 2 and rep[0]["offset"] == leo - 2
    assert log.log_end_offset == leo - 2
    assert offsets(log.read(0, 1 << 30).tobytes()) == list(range(leo - 2))
    assert log.read(0, 1 << 30).tobytes() == data[:len(data) - one]
    log.close()


def test_crc_corrupt_tail_batch_truncated(tmp_path):
    d = tmp_path / "t-0"
    data, segs, leo = fill(d)
    last = segs[-1]
    size = last.stat().st_size
    with open(last, "r+b") as f:
        f.seek(size - 3)
        f.write(b"XYZ")  # inside the last batch's payload: framing fine, CRC wrong
    ev = Events()
    log = PartitionLog(d, cfg(), on_event=ev)
    one = len(batch(2, tag="b29"))
    assert ev.of("repair")[0]["bytes"] == one
    assert log.log_end_offset == leo - 2
    validate_batches(log.read(0, 1 << 30).tobytes(), 1 << 20)
    log.close()


def test_corruption_in_middle_removes_later_segments_when_unflushed(tmp_path):
    d = tmp_path / "t-0"
    data, segs, leo = fill(d)
    mid = segs[1]
    with open(mid, "r+b") as f:
        f.seek(100)
        f.write(b"\xff" * 8)
    ev = Events()
    log = PartitionLog(d, cfg(), recovery_point=0, on_event=ev)
    rep = ev.of("repair")[0]
    assert rep["segment"] == str(mid) and rep["removed_segments"]
    assert log.housekeeping.segment_count == 2
    assert len(log.read(0, 1 << 30).tobytes()) < len(data)
    assert data.startswith(log.read(0, 1 << 30).tobytes())
    log.close()


def test_garbage_below_recovery_point_is_unrecoverable(tmp_path):
    d = tmp_path / "t-0"
    data, segs, leo = fill(d)
    with open(segs[1], "ab") as f:
        f.write(b"\x01" * 30)
    with pytest.raises(UnrecoverableJournalError, match=segs[1].name):
        PartitionLog(d, cfg(), recovery_point=leo)
    # nothing was cut: the acknowledged bytes are still there
    assert segs[1].stat().st_size > 0 and all(p.exists() for p in segs)


def test_bad_first_header_below_recovery_point_is_unrecoverable(tmp_path):
    d = tmp_path / "t-0"
    data, segs, leo = fill(d)
    with open(segs[0], "r+b") as f:
        f.seek(16)
        f.write(b"\x07")
    with pytest.raises(UnrecoverableJournalError):
        PartitionLog(d, cfg(), recovery_point=leo)


def test_deleted_index_files_rebuilt(tmp_path):
    d = tmp_path / "t-0"
    data, segs, leo = fill(d, n=60, segment_bytes=4096)
    for p in d.glob("*.index"):
        p.unlink()
    for p in d.glob("*.timeindex"):
        p.unlink()
    ev = Events()
    log = PartitionLog(d, cfg(segment_bytes=4096), recovery_point=leo, on_event=ev)
    assert len(ev.of("index-rebuilt")) == len(segs)
    assert all(p.with_suffix(".index").exists() for p in segs)
    assert len(log._segments[0].idx_rel) > 3
    assert log.read(0, 1 << 30).tobytes() == data
    assert log.offset_for_timestamp(1030) == (60, 1030)
    assert offsets(log.read(33, 1).tobytes())[0] == 32
    log.close()


def test_inconsistent_index_rebuilt(tmp_path):
    d = tmp_path / "t-0"
    data, segs, leo = fill(d, n=60, segment_bytes=4096)
    idx = segs[0].with_suffix(".index")
    idx.write_bytes(b"\x00\x00\x00\x05\xff\xff\xff\xff")  # position past the end of the log
    ev = Events()
    log = PartitionLog(d, cfg(segment_bytes=4096), recovery_point=leo, on_event=ev)
    assert [i["segment"] for i in ev.of("index-rebuilt")] == [str(segs[0])]
    assert log.read(0, 1 << 30).tobytes() == data
    log.close()


def test_leftovers_cleaned(tmp_path):
    d = tmp_path / "t-0"
    fill(d)
    (d / "00000000000000000000.log.deleted").write_bytes(b"x")
    (d / "00000000000000000000.index.tmp").write_bytes(b"x")
    (d / "00000000000000099999.index").write_bytes(b"")  # orphan index
    log = PartitionLog(d, cfg())
    names = {p.name for p in d.iterdir()}
    assert not any(n.endswith((".deleted", ".tmp")) for n in names)
    assert "00000000000000099999.index" not in names
    log.close()


def test_a_log_start_past_the_recovered_log_end_empties_the_log_there(tmp_path):
    """DeleteRecords moved the log start to 15, its checkpoint written; an OS crash then lost the
    unsynced records from 10. Kafka's deleteSegmentsIfLogStartGreaterThanLogEnd: the log goes
    on empty at 15; offsets 10-14, reported deleted, are never given to new records."""
    from sandbox.log import LogConfig, PartitionLog
    d = tmp_path / "t-0"
    log = PartitionLog(d, LogConfig(segment_bytes=1 << 20))
    for i in range(10):
        log.append(batch(1, tag=f"a{i}-"))
    log.housekeeping.flush()
    synced = log._active.size
    for i in range(10):
        log.append(batch(1, tag=f"b{i}-"))
    log.delete_records_before(15)
    assert log.log_start_offset == 15
    for seg in log._segments:
        seg.close()
    with open(log._active.log_path, "r+b") as f:
        f.truncate(synced)
    again = PartitionLog(d, LogConfig(segment_bytes=1 << 20), recovery_point=10, log_start_offset=15)
    assert (again.log_start_offset, again.log_end_offset) == (15, 15)
    assert again.append(batch(1, tag="c")).first_offset == 15
    again.close()
    reopened = PartitionLog(d, LogConfig(segment_bytes=1 << 20), recovery_point=16, log_start_offset=15)
    assert (reopened.log_start_offset, reopened.log_end_offset) == (15, 16)
    reopened.close()
