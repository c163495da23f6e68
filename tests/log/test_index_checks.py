"""Index entries checked against the batches they name: an offset-index entry off a batch boundary
found at a read (rebuilt then, said once), a damaged last time-index entry found at open."""
import struct

import pytest

from sandbox.log import LogConfig, PartitionLog
from sandbox.log.batch import parse_header
from sandbox.log.segment import Segment

from .logkit import batch, offsets


def cfg():
    return LogConfig(segment_bytes=1024, index_interval_bytes=128)


class Events(list):
    def __call__(self, kind, info):
        self.append((kind, info))

    def of(self, kind):
        return [i for k, i in self if k == kind]


def fill(d, n=30):
    """n batches of 2 records (batch i: offsets 2i, 2i+1, timestamp 1000 + i) in segments of 9."""
    log = PartitionLog(d, cfg())
    for i in range(n):
        log.append(batch(2, tag=f"b{i}", ts=1000 + i))
    segs = log.housekeeping.segment_paths()
    leo = log.log_end_offset
    log.close()
    return segs, leo


def entries(path, fmt):
    raw = path.read_bytes()
    size = struct.calcsize(fmt)
    return [struct.unpack_from(fmt, raw, i) for i in range(0, len(raw), size)]


def put(path, fmt, i, entry):
    raw = bytearray(path.read_bytes())
    struct.pack_into(fmt, raw, i * struct.calcsize(fmt), *entry)
    path.write_bytes(bytes(raw))


def batch_starts(path):
    data = path.read_bytes()
    out, p = [], 0
    while p < len(data):
        out.append(p)
        p += parse_header(data, p).size
    return out


def assert_reads_whole(log, leo):
    for o in range(leo):
        got = offsets(log.read(o, 200).tobytes())
        assert got and got[0] == o - o % 2 and o in got, (o, got)


@pytest.mark.parametrize("entry", [0, 1, 2])   # inner: open checks the last one (test_recovery)
@pytest.mark.parametrize("damage", ["mid-batch", "other-batch"])
def test_index_entry_off_its_batch_rebuilt_at_read(tmp_path, entry, damage):
    d = tmp_path / "t-0"
    segs, leo = fill(d)
    idx = segs[1].with_suffix(".index")
    sound = idx.read_bytes()
    rel, pos = entries(idx, ">II")[entry]
    # 13 bytes into the batch (as a position shifted by bit rot), or the start of the batch
    # before it: a batch boundary, but not the batch holding the entry's offset
    wrong = pos + 13 if damage == "mid-batch" else max(p for p in batch_starts(segs[1]) if p < pos)
    put(idx, ">II", entry, (rel, wrong))
    ev = Events()
    log = PartitionLog(d, cfg(), recovery_point=leo, on_event=ev)
    assert ev == []   # open checks only the last entry: this one is found at a read
    # no offset skipped, none answered empty below the log end (a consumer stuck there)
    assert_reads_whole(log, leo)
    rebuilt = ev.of("index-rebuilt")
    assert [i["segment"] for i in rebuilt] == [str(segs[1])] and "batch" in rebuilt[0]["reason"]
    assert log.offset_for_timestamp(1013) == (26, 1013)
    log.close()
    assert idx.read_bytes() == sound   # written at close
    ev = Events()
    log = PartitionLog(d, cfg(), recovery_point=leo, on_event=ev)
    assert_reads_whole(log, leo)
    assert ev == []
    log.close()


def test_index_rebuilt_at_read_written_by_the_next_flush(tmp_path):
    d = tmp_path / "t-0"
    segs, leo = fill(d)
    idx = segs[1].with_suffix(".index")
    sound = idx.read_bytes()
    rel, pos = entries(idx, ">II")[1]
    put(idx, ">II", 1, (rel, pos + 13))
    log = PartitionLog(d, cfg(), recovery_point=leo)
    assert offsets(log.read(rel + 20, 1).tobytes()) == [rel + 19, rel + 20]
    log.append(batch(1))
    log.housekeeping.flush()
    assert idx.read_bytes() == sound
    log.close()


def test_sound_index_no_event_no_rescan(tmp_path, monkeypatch):
    d = tmp_path / "t-0"
    segs, leo = fill(d)
    files = {p: p.read_bytes() for s in segs for p in (s.with_suffix(".index"), s.with_suffix(".timeindex"))}
    ev = Events()
    log = PartitionLog(d, cfg(), recovery_point=leo, on_event=ev)

    def rescan(self):
        raise AssertionError("indexes rebuilt")
    monkeypatch.setattr(Segment, "rebuild_indexes", rescan, raising=False)
    assert_reads_whole(log, leo)
    for i in range(30):
        assert log.offset_for_timestamp(1000 + i) == (2 * i, 1000 + i)
    assert log.offset_for_timestamp(-3) == (58, 1029)
    log.close()
    assert ev == []
    assert {p: p.read_bytes() for p in files} == files


@pytest.mark.parametrize("damage", ["timestamp", "offset", "tail-batch"])
def test_last_time_index_entry_checked_at_open(tmp_path, damage):
    d = tmp_path / "t-0"
    segs, leo = fill(d)
    tidx = segs[1].with_suffix(".timeindex")
    sound = tidx.read_bytes()
    ents = entries(tidx, ">qI")
    ts, rel = ents[-1]
    assert (ts, rel) == (1018, 17)   # segment 1: offsets 20-37, timestamps 1010-1018
    # a far-future timestamp (a bit flipped); or an offset whose batch has another max timestamp,
    # before the last offset-index entry's batch (found with a lookup), or after it and before the
    # segment's last batch (found by the tail walk, which went on to the next batch: a TypeError
    # stopped the open, so the broker crash-looped until its journal was quarantined)
    if damage == "tail-batch":   # a sparser offset index (a larger index interval when written)
        idx = segs[1].with_suffix(".index")
        idx.write_bytes(idx.read_bytes()[:8 * sum(1 for r, _ in entries(idx, ">II") if r <= 13)])
    put(tidx, ">qI", len(ents) - 1, {"timestamp": (ts | 1 << 50, rel), "offset": (ts, ents[-2][1]),
                                     "tail-batch": (ts, 14)}[damage])
    ev = Events()
    log = PartitionLog(d, cfg(), recovery_point=leo, on_event=ev)
    assert [i["segment"] for i in ev.of("index-rebuilt")] == [str(segs[1])]
    assert tidx.read_bytes() == sound
    assert log.offset_for_timestamp(-3) == (58, 1029)
    assert log.offset_for_timestamp(1011) == (22, 1011)
    assert log.offset_for_timestamp(1018) == (36, 1018)
    assert log.offset_for_timestamp(1019) == (38, 1019)
    log.close()
    ev = Events()
    PartitionLog(d, cfg(), recovery_point=leo, on_event=ev).close()
    assert ev == []


def test_max_timestamp_of_a_damaged_segment_not_answered(tmp_path):
    """The damaged segment held the largest timestamp: ListOffsets -3 answered 2^50-ish."""
    d = tmp_path / "t-0"
    segs, leo = fill(d)
    tidx = segs[0].with_suffix(".timeindex")
    ents = entries(tidx, ">qI")
    put(tidx, ">qI", len(ents) - 1, (ents[-1][0] | 1 << 50, ents[-1][1]))
    log = PartitionLog(d, cfg(), recovery_point=leo)
    assert log.offset_for_timestamp(-3) == (58, 1029)
    assert log._segments[0].max_timestamp == 1009
    log.close()


def test_inner_time_index_entry_checked_at_lookup(tmp_path):
    d = tmp_path / "t-0"
    segs, leo = fill(d)
    tidx = segs[1].with_suffix(".timeindex")
    ents = entries(tidx, ">qI")
    assert ents[1:3] == [(1014, 9), (1016, 13)]
    put(tidx, ">qI", 1, (1014, 13))   # still ordered; offset 33's batch has timestamp 1016
    ev = Events()
    log = PartitionLog(d, cfg(), recovery_point=leo, on_event=ev)
    assert ev == []
    assert log.offset_for_timestamp(1015) == (30, 1015)   # not (32, 1016): a batch skipped
    assert [i["segment"] for i in ev.of("index-rebuilt")] == [str(segs[1])]
    for i in range(30):
        assert log.offset_for_timestamp(1000 + i) == (2 * i, 1000 + i)
    assert len(ev) == 1
    log.close()
