"""Damage to a stopped broker's journal that cannot be repaired is said with its offsets, never
passed off as a torn tail or left silent (found by a review against Kafka's LogLoader, which
clamps and cuts here without a word):

- a cut that begins below the recovery point (flushed, so acknowledged records, damaged at rest);
- a high-watermark checkpoint beyond the log end (records every replica had are gone here).

A segment that ends below the next one's base is not reported: logs open before their topic's
configs are known, and compaction leaves exactly such gaps (a first version said "missing" for
every compacted segment of `__consumer_offsets` at each start; found by review)."""

from __future__ import annotations

from pathlib import Path

from log.logkit import batch

from sandbox.log import LogConfig, PartitionLog
from sandbox.log.batch import parse_header
from sandbox.runner.logscan import describe_event


def _cfg(**kw) -> LogConfig:
    kw.setdefault("segment_bytes", 1024)
    kw.setdefault("index_interval_bytes", 128)
    return LogConfig(**kw)


class Events(list):
    def __call__(self, kind: str, info: dict) -> None:
        self.append((kind, dict(info)))


def _fill(d: Path, cfg: LogConfig, n: int = 30) -> int:
    log = PartitionLog(d, cfg)
    for i in range(n):
        log.append(batch(2, tag=f"b{i}", ts=1000 + i))
    leo = log.log_end_offset
    log.close()
    return leo


def _batches(path: Path) -> list:
    data, out, p = path.read_bytes(), [], 0
    while p + 61 <= len(data):
        h = parse_header(data, p)
        out.append((p, h))
        p += h.size
    return out


def test_a_cut_below_the_recovery_point_is_said_as_damage_at_rest_not_a_torn_tail(tmp_path):
    cfg = _cfg(segment_bytes=1 << 20)
    d = tmp_path / "t-0"
    leo = _fill(d, cfg, 20)
    seg = sorted(d.glob("*.log"))[0]
    b = _batches(seg)
    with open(seg, "r+b") as f:   # one byte of batch 3's records flipped on disk
        f.seek(b[3][0] + 70)
        f.write(b"\xff")
    ev = Events()
    log = PartitionLog(d, cfg, recovery_point=leo, on_event=ev)
    try:
        assert log.log_end_offset == b[3][1].base_offset
    finally:
        log.close()
    repairs = [i for k, i in ev if k == "repair"]
    assert len(repairs) == 1 and repairs[0]["flushed_to"] == leo and repairs[0]["offset"] == b[3][1].base_offset
    said = describe_event("repair", {"topic": "t", "partition": 0, **repairs[0]})
    assert said.startswith("t-0: journal damaged below its flushed point") and "acknowledged records are lost" in said


def test_a_torn_tail_above_the_recovery_point_is_still_a_plain_truncation(tmp_path):
    cfg = _cfg(segment_bytes=1 << 20)
    d = tmp_path / "t-0"
    _fill(d, cfg, 20)
    seg = sorted(d.glob("*.log"))[0]
    with open(seg, "ab") as f:
        f.write(b"\x00" * 100)
    ev = Events()
    PartitionLog(d, cfg, recovery_point=0, on_event=ev).close()
    repairs = [i for k, i in ev if k == "repair"]
    assert len(repairs) == 1 and "flushed_to" not in repairs[0]
    assert describe_event("repair", repairs[0]).startswith("journal tail truncated: 100 bytes")


def test_a_high_watermark_checkpoint_past_the_log_end_is_said(tmp_path):
    d = tmp_path / "t-0"
    cfg = _cfg()
    leo = _fill(d, cfg)
    seg = sorted(d.glob("*.log"))[-1]
    b = _batches(seg)
    with open(seg, "r+b") as f:   # the last segment lost its later batches while the broker was stopped
        f.truncate(b[1][0])
    ev = Events()
    log = PartitionLog(d, cfg, recovery_point=0, high_watermark=leo, on_event=ev)
    try:
        now = log.log_end_offset
        assert log.high_watermark == now < leo
    finally:
        log.close()
    said = [i for k, i in ev if k == "repair" and i.get("checkpoint") == "high watermark"]
    assert [(i["missing_from"], i["missing_to"]) for i in said] == [(now, leo - 1)], ev
    text = describe_event("repair", {"topic": "t", "partition": 0, **said[0]})
    assert text.startswith(f"t-0: records {now}-{leo - 1} are not in the journal, though its high watermark")
    ev2 = Events()   # a checkpoint within the log: nothing said
    PartitionLog(d, cfg, recovery_point=0, high_watermark=now, on_event=ev2).close()
    assert not [i for k, i in ev2 if k == "repair"], ev2
