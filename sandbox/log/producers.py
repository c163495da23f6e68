"""Idempotent-producer state of one partition: per producer id the epoch and the last 5 batches'
sequence/offset ranges, duplicate detection, sequence checks, and a JSON snapshot on disk.
"""
from __future__ import annotations

import json
from collections import deque
from pathlib import Path

from .batch import BatchHeader
from .errors import InvalidProducerEpochError, OutOfOrderSequenceError
from .files import atomic_write

MAX_CACHED_BATCHES = 5
INT32_MAX = 2**31 - 1


def last_sequence(base_sequence: int, delta: int) -> int:
    """Kafka's incrementSequence: sequences wrap from 2^31-1 to 0."""
    if base_sequence > INT32_MAX - delta:
        return delta - (INT32_MAX - base_sequence) - 1
    return base_sequence + delta


class ProducerEntry:
    __slots__ = ("epoch", "batches", "last_timestamp")

    def __init__(self, epoch: int, batches=(), last_timestamp: int = -1) -> None:
        self.epoch = epoch
        # (first_seq, last_seq, first_offset, last_offset), newest last
        self.batches: deque[tuple[int, int, int, int]] = deque(batches, maxlen=MAX_CACHED_BATCHES)
        self.last_timestamp = last_timestamp   # max timestamp of its last batch (DescribeProducers)

    def copy(self) -> "ProducerEntry":
        return ProducerEntry(self.epoch, self.batches, self.last_timestamp)

    @property
    def last_sequence(self) -> int:
        return self.batches[-1][1] if self.batches else -1


class ProducerState:
    """Sequence bookkeeping; `check` is pure, `update` commits after a successful write."""

    def __init__(self) -> None:
        self.producers: dict[int, ProducerEntry] = {}

    def check(self, headers: list[BatchHeader]) -> tuple[int, int] | None:
        """Validate the idempotent batches of one append (headers with offsets not yet assigned).
        Returns (first_offset, last_offset) of the original append if the first idempotent batch is
        a retry of a cached one; raises on epoch/sequence errors; None if all is new and in order."""
        pending: dict[int, ProducerEntry] = {}
        for h in headers:
            pid = h.producer_id
            if pid < 0 or h.is_control or h.base_sequence < 0:
                continue
            entry = pending.get(pid) or self.producers.get(pid)
            first, last = h.base_sequence, last_sequence(h.base_sequence, h.last_offset_delta)
            if entry is not None:
                if h.producer_epoch < entry.epoch:
                    raise InvalidProducerEpochError(
                        f"producer {pid} epoch {h.producer_epoch} is older than the current epoch {entry.epoch}")
                if h.producer_epoch == entry.epoch:
                    for fs, ls, fo, lo in entry.batches:
                        if fs == first and ls == last:
                            return fo, lo
                    if entry.batches:
                        expected = 0 if entry.batches[-1][1] == INT32_MAX else entry.batches[-1][1] + 1
                        if first != expected:
                            raise OutOfOrderSequenceError(
                                f"producer {pid} epoch {h.producer_epoch}: expected sequence {expected}, got {first}")
                elif first != 0:
                    raise OutOfOrderSequenceError(
                        f"producer {pid} bumped epoch to {h.producer_epoch} but started at sequence {first}, not 0")
            # unknown producer: any sequence is accepted (its state may have been removed by retention)
            new = entry.copy() if entry is not None and entry.epoch == h.producer_epoch else ProducerEntry(h.producer_epoch)
            new.batches.append((first, last, -1, -1))
            pending[pid] = new
        return None

    def update(self, h: BatchHeader) -> None:
        """Record a batch that is now in the log (offsets assigned)."""
        pid = h.producer_id
        if pid < 0:
            return
        entry = self.producers.get(pid)
        if entry is None or h.producer_epoch > entry.epoch:
            entry = self.producers[pid] = ProducerEntry(h.producer_epoch)
        elif h.producer_epoch < entry.epoch:
            return
        entry.last_timestamp = h.max_timestamp
        if h.is_control or h.base_sequence < 0:
            return
        entry.batches.append((h.base_sequence, last_sequence(h.base_sequence, h.last_offset_delta),
                              h.base_offset, h.last_offset))

    def clear(self) -> None:
        self.producers.clear()

    # ---------------------------------------------------------------- snapshot

    def to_bytes(self, offset: int) -> bytes:
        return json.dumps({
            "version": 1,
            "offset": offset,
            "producers": {str(pid): {"epoch": e.epoch, "batches": [list(b) for b in e.batches],
                                     "ts": e.last_timestamp}
                          for pid, e in self.producers.items()},
        }, separators=(",", ":")).encode()

    def write_snapshot(self, path: Path, offset: int) -> None:
        atomic_write(path, self.to_bytes(offset))

    @classmethod
    def load_snapshot(cls, path: Path) -> tuple["ProducerState", int] | None:
        """(state, offset it covers up to) or None if unreadable."""
        try:
            with open(path, "rb") as f:
                doc = json.loads(f.read())
            state = cls()
            for pid, e in doc["producers"].items():
                state.producers[int(pid)] = ProducerEntry(int(e["epoch"]), [tuple(int(x) for x in b) for b in e["batches"]],
                                                          int(e.get("ts", -1)))
            return state, int(doc["offset"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
