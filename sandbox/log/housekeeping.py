"""Housekeeping (`PartitionLog.housekeeping`): what the broker's timers and tools do to a partition
log besides appending and reading it: retention, flushes, rolls, checkpoints, deletion, listings."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .partition import PartitionLog


class Housekeeping:
    """The housekeeping verbs of one log. Holds nothing but the log: make one whenever needed.
    An unopened log answers retention, flush, dirty, checkpoint_offsets and delete without
    opening (lazy.py); the rest opens it first."""

    __slots__ = ("_log",)

    def __init__(self, log: PartitionLog) -> None:
        self._log = log

    def apply_retention(self, now_ms: int | None = None) -> int:
        """Delete the oldest non-active segments past retention.ms (by their max timestamp) or
        beyond retention.bytes. Returns bytes freed."""
        return self._log._apply_retention(now_ms)

    def expire_producers(self, now_ms: int, expiration_ms: int) -> int:
        """Forget the idempotent producers idle for expiration_ms (producer.id.expiration.ms) and
        without an open transaction; how many. An unopened log is left as it is (it holds none
        in memory)."""
        log = self._log
        if not log.opened:
            return 0
        gone = log._producers.state.expire(now_ms, expiration_ms)
        if gone:   # the next snapshot (a flush, the close) is written without them, even if idle
            log._producers.expired_unsaved = True
        return gone

    def flush(self, now_ms: int | None = None, *, if_due: bool = False) -> bool:
        """fsync every segment at or above the recovery point, persist indexes and the producer
        snapshot, then advance the recovery point to the log end offset. if_due: only when
        flush.ms has passed since the last flush and something is unflushed (from a timer:
        appends alone would never flush an idle partition). True if it flushed."""
        return self._log._flush(now_ms, if_due=if_due)

    def sync(self) -> None:
        """Make what was appended durable at the cost of one fsync: the active segment's data
        (older segments were fsynced when they rolled) and any new aborted-transaction entries.
        Indexes, the producer snapshot and the recovery point wait for the next flush; a crash
        before it rescans the data above the recovery point and rebuilds them. For writers that
        must be durable before answering (internal topics' records), where flush() per write
        would cost several fsynced files each time."""
        log = self._log
        log._active.fsync()
        log._producers.txns.sync()

    def sync_handles(self) -> list[int]:
        """Duplicates of the handles flush() would fsync now (the caller closes them; see
        files.fsync_and_close). fsynced in a worker thread just before flush(), they leave it
        little to write, so the event loop is not held while the disk takes up to a minute of
        appends. Empty for a log with nothing unflushed. A log's own durability steps still all
        happen in flush(), on the caller's thread: this only moves the slow part earlier."""
        if not self._log._dirty:
            return []
        fds: list[int] = []
        try:
            for seg in self._log._unflushed():
                fds.append(seg.dup_handle())
        except OSError:   # out of handles: flush() fsyncs on its own, as without this step
            for fd in fds:
                os.close(fd)
            return []
        return fds

    def segment_synced(self, segment, mark: tuple[int, int]) -> None:
        """The fsync a roll handed to roll_sync is done (mark: segment.mark() when it rolled):
        its indexes are written and the recovery point moves past it."""
        self._log._segment_synced(segment, mark)

    @property
    def dirty(self) -> bool:
        """True when appended data is not yet fsynced (the recovery point lags the log end)."""
        return self._log._dirty

    def roll(self) -> None:
        """Close the active segment for writing (indexes persisted) and start a new one at LEO."""
        self._log._roll()

    def checkpoint_offsets(self) -> tuple[int, int | None]:
        """(recovery point, log start offset) for the checkpoint files."""
        return self._log._checkpoint_offsets()

    def delete(self) -> None:
        """Close every handle, then remove the whole partition directory (retrying on Windows)."""
        self._log._delete()

    def active_producers(self) -> list[tuple[int, int, int, int, int]]:
        """(producer id, epoch, last sequence, last timestamp, coordinator epoch) of every producer
        whose batches the log holds, as DescribeProducers reports them."""
        return self._log._producers.active()

    def open_transactions(self) -> list[tuple[int, int, int]]:
        """(producer id, producer epoch, first offset) of every transaction not yet ended here
        (DescribeProducers, status)."""
        return self._log._producers.open_transactions()

    @property
    def segment_count(self) -> int:
        return len(self._log._segments)

    def segment_paths(self) -> list[Path]:
        return [s.log_path for s in self._log._segments]
