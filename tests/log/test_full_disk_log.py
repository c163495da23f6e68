"""A partition log on a full disk: what a failed write leaves, and an append whose data is
written but whose flush (flush.messages / flush.ms) fails."""

from __future__ import annotations

import errno
import os

import pytest

from sandbox.log import LogConfig, PartitionLog
from sandbox.log import segment as segment_module
from sandbox.log.batch import build_batch


def _records(i: int) -> bytes:
    return build_batch([(None, f"value-{i}".encode() * 20)], timestamp_ms=1)


def test_a_write_cut_short_by_a_full_disk_leaves_nothing_past_the_end(tmp_path, monkeypatch):
    """A full disk takes what fits of a write and refuses the rest. Those bytes stayed past the
    segment's end; after a roll the next start refused the partition (its batches end short of
    its file, below the recovery point)."""
    log = PartitionLog(tmp_path / "t-0", LogConfig(segment_bytes=2000))
    for i in range(3):
        log.append(_records(i))
    real = os.pwrite

    def half_then_full(fd, data, pos):
        if len(data) > 8:
            return real(fd, bytes(data[:len(data) // 2]), pos)
        raise OSError(errno.ENOSPC, "No space left on device")
    calls = []

    def full_disk(fd, data, pos):
        calls.append(len(data))
        if len(calls) == 1:
            return half_then_full(fd, data, pos)
        raise OSError(errno.ENOSPC, "No space left on device")
    if segment_module._POSITIONED:
        monkeypatch.setattr(segment_module.os, "pwrite", full_disk)
    else:
        pytest.skip("the positioned write path (POSIX)")
    with pytest.raises(OSError):
        log.append(_records(3))
    monkeypatch.undo()
    active = log._active
    assert os.path.getsize(active.log_path) == active.size   # nothing left past the end
    for i in range(3, 40):                                    # rolls, then a clean reopen
        log.append(_records(i))
    log.close()
    again = PartitionLog(tmp_path / "t-0", LogConfig(segment_bytes=2000))
    assert again.log_end_offset == 40
    again.close()


def test_an_append_whose_flush_fails_is_written_and_says_so(tmp_path, monkeypatch):
    """flush.messages=1 on a full disk: the batch is written and in the producer state when the
    flush fails. Failing the append made clients send it again (a duplicate for a producer
    without idempotence); it is answered as written, and the failed flush is told."""
    log = PartitionLog(tmp_path / "t-0", LogConfig(flush_messages=1))
    log.append(_records(0))

    def full(*_a, **_k):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(segment_module.Segment, "fsync", full)
    info = log.append(_records(1))
    assert info.first_offset == 1 and log.log_end_offset == 2
    assert log.flush_failed is not None and log.flush_failed.errno == errno.ENOSPC
    log.config = LogConfig()                      # the flush policy taken off: no append flushes now
    log.append(_records(2))
    assert log.flush_failed is None               # it told of that append only, not for ever
    monkeypatch.undo()
    log.close()
