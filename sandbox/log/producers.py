"""Idempotent and transactional producer state of one partition: per producer id the epoch and
the last 5 batches' sequence/offset ranges, duplicate detection, sequence checks, each producer's
open transaction and the first unstable offset (ProducerState), and its store next to the segments
(ProducerStore: JSON snapshot files, the aborted-transaction index, load and rebuild)."""
from __future__ import annotations

import json
from collections import deque
from pathlib import Path

from .batch import CONTROL_ABORT, HEADER_SIZE, BatchHeader, control_record
from .errors import (
    InvalidProducerEpochError, InvalidTxnStateError, OutOfOrderSequenceError, TransactionCoordinatorFencedError,
)
from .files import atomic_write, fsync_file, is_stale, offset_files, remove_or_empty, safe_delete_later
from .segment import segment_name
from .transactions import AbortedTxn, TxnIndex

MAX_CACHED_BATCHES = 5
INT32_MAX = 2**31 - 1


def last_sequence(base_sequence: int, delta: int) -> int:
    """Kafka's incrementSequence: sequences wrap from 2^31-1 to 0."""
    if base_sequence > INT32_MAX - delta:
        return delta - (INT32_MAX - base_sequence) - 1
    return base_sequence + delta


class ProducerEntry:
    __slots__ = ("epoch", "batches", "last_timestamp", "coordinator_epoch")

    def __init__(self, epoch: int, batches=(), last_timestamp: int = -1, coordinator_epoch: int = -1) -> None:
        self.epoch = epoch
        self.coordinator_epoch = coordinator_epoch   # of its last transaction marker
        # (first_seq, last_seq, first_offset, last_offset), newest last
        self.batches: deque[tuple[int, int, int, int]] = deque(batches, maxlen=MAX_CACHED_BATCHES)
        self.last_timestamp = last_timestamp   # max timestamp of its last batch (DescribeProducers)

    def copy(self) -> "ProducerEntry":
        return ProducerEntry(self.epoch, self.batches, self.last_timestamp, self.coordinator_epoch)

    @property
    def last_sequence(self) -> int:
        return self.batches[-1][1] if self.batches else -1


class ProducerState:
    """Sequence bookkeeping; `check` is pure, `update` commits after a successful write."""

    def __init__(self) -> None:
        self.producers: dict[int, ProducerEntry] = {}
        self.open_txns: dict[int, int] = {}     # producer id -> first offset of its open transaction
        # (marker offset, first offset) of completed transactions whose marker may still be above
        # the high watermark: they hold the last stable offset back until it passes (as Kafka's
        # unreplicated transactions do), oldest first
        self.completed: deque[tuple[int, int]] = deque()

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
                    # no batch of this epoch here yet (its entry came with a transaction marker):
                    # sequence 0 first, as Kafka's checkSequence asks of a known producer
                    expected = (0 if not entry.batches or entry.batches[-1][1] == INT32_MAX
                                else entry.batches[-1][1] + 1)
                    if first != expected:
                        raise OutOfOrderSequenceError(
                            f"producer {pid} epoch {h.producer_epoch}: expected sequence {expected}, got {first}",
                            expected)
                elif first != 0:
                    raise OutOfOrderSequenceError(
                        f"producer {pid} bumped epoch to {h.producer_epoch} but started at sequence {first}, not 0", 0)
                if not h.is_transactional and pid in self.open_txns:   # as Kafka's appendDataBatch
                    raise InvalidTxnStateError(f"producer {pid} has a transaction open here (from offset "
                                               f"{self.open_txns[pid]}) and wrote a batch outside it")
            # unknown producer: any sequence is accepted (its state may have been removed by retention)
            new = entry.copy() if entry is not None and entry.epoch == h.producer_epoch else ProducerEntry(h.producer_epoch)
            new.batches.append((first, last, -1, -1))
            pending[pid] = new
        return None

    def check_marker(self, pid: int, producer_epoch: int, coordinator_epoch: int) -> None:
        """A transaction marker the coordinator asks for, checked as Kafka's appendEndTxnMarker
        checks one: the producer epoch first (checkProducerEpoch), then the coordinator epoch
        (checkCoordinatorEpoch: older than the last marker's is fenced). An unknown producer
        (coordinator epoch -1) takes any marker."""
        entry = self.producers.get(pid)
        if entry is None:
            return
        if producer_epoch < entry.epoch:
            raise InvalidProducerEpochError(
                f"marker for producer {pid} has epoch {producer_epoch}, older than {entry.epoch}")
        if coordinator_epoch < entry.coordinator_epoch:
            raise TransactionCoordinatorFencedError(
                f"marker for producer {pid} has coordinator epoch {coordinator_epoch} (zombie), "
                f"older than {entry.coordinator_epoch} (current)")

    def update(self, h: BatchHeader, control: int = -1, coordinator_epoch: int = -1) -> AbortedTxn | None:
        """Record a batch that is now in the log (offsets assigned); control, coordinator_epoch:
        a control batch's marker (batch.control_record). Returns the aborted transaction an
        abort marker ended."""
        pid = h.producer_id
        if pid < 0:
            return None
        entry = self.producers.get(pid)
        if entry is None or h.producer_epoch > entry.epoch:   # its open transaction and coordinator epoch stay
            entry = self.producers[pid] = ProducerEntry(h.producer_epoch, coordinator_epoch=(
                entry.coordinator_epoch if entry is not None else -1))
        elif h.producer_epoch < entry.epoch:
            return None
        entry.last_timestamp = h.max_timestamp
        if h.is_transactional:
            if h.is_control:
                if control >= 0:
                    entry.coordinator_epoch = coordinator_epoch
                return self._end_txn(pid, h.base_offset, control)
            if pid not in self.open_txns:
                self.open_txns[pid] = h.base_offset
        if h.is_control or h.base_sequence < 0:
            return None
        entry.batches.append((h.base_sequence, last_sequence(h.base_sequence, h.last_offset_delta),
                              h.base_offset, h.last_offset))
        return None

    def _end_txn(self, pid: int, marker: int, control: int) -> AbortedTxn | None:
        if control < 0 or pid not in self.open_txns:
            return None   # a marker for a partition the transaction never wrote to
        first = self.open_txns.pop(pid)
        self.completed.append((marker, first))
        if control != CONTROL_ABORT:
            return None
        return AbortedTxn(pid, first, marker, min(self.open_txns.values(), default=marker + 1))

    def expire(self, now_ms: int, expiration_ms: int) -> int:
        """Forget producers idle for expiration_ms (Kafka's producer.id.expiration.ms: by the
        timestamp of their last batch), except one with a transaction open here; how many.
        One writing again later is an unknown producer then, whose batches are taken at any
        sequence, as Kafka takes them."""
        gone = [pid for pid, e in self.producers.items()
                if pid not in self.open_txns and now_ms - e.last_timestamp >= expiration_ms]
        for pid in gone:
            del self.producers[pid]
        return len(gone)

    def first_unstable(self, high_watermark: int) -> int | None:
        """The first offset of a transaction still open, or completed by a marker the high
        watermark has not passed; None when there is none."""
        done = self.completed
        while done and done[0][0] < high_watermark:
            done.popleft()
        best = min(self.open_txns.values(), default=None)
        for _marker, first in done:
            if best is None or first < best:
                best = first
        return best

    def clear(self) -> None:
        self.producers.clear()
        self.open_txns.clear()
        self.completed.clear()

    # ---------------------------------------------------------------- snapshot

    def to_bytes(self, offset: int) -> bytes:
        return json.dumps({
            "version": 1,
            "offset": offset,
            "producers": {str(pid): {"epoch": e.epoch, "batches": [list(b) for b in e.batches],
                                     "ts": e.last_timestamp, "ce": e.coordinator_epoch}
                          for pid, e in self.producers.items()},
            "open_txns": {str(pid): first for pid, first in self.open_txns.items()},
            "completed_txns": [list(c) for c in self.completed],
        }, separators=(",", ":")).encode()

    def write_snapshot(self, path: Path, offset: int, *, sync: bool = True) -> None:
        atomic_write(path, self.to_bytes(offset), sync=sync)

    @classmethod
    def load_snapshot(cls, path: Path) -> tuple["ProducerState", int] | None:
        """(state, offset it covers up to) or None if unreadable."""
        try:
            with open(path, "rb") as f:
                doc = json.loads(f.read())
            state = cls()
            for pid, e in doc["producers"].items():
                batches = [tuple(int(x) for x in b) for b in e["batches"]]
                if any(len(b) != 4 for b in batches):
                    raise ValueError("a cached batch is not (first seq, last seq, first offset, last offset)")
                state.producers[int(pid)] = ProducerEntry(int(e["epoch"]), batches,
                                                          int(e.get("ts", -1)), int(e.get("ce", -1)))
            state.open_txns = {int(pid): int(first) for pid, first in doc.get("open_txns", {}).items()}
            state.completed = deque((int(m), int(f)) for m, f in doc.get("completed_txns", []))
            return state, int(doc["offset"])
        except (OSError, ValueError, KeyError, TypeError, AttributeError):   # any shape but the one written
            return None


class ProducerStore:
    """The producer state of one partition log and its snapshot files (`<log end>.snapshot`, the
    state up to that offset): loaded from the newest usable snapshot plus a scan of the batches
    after it, kept current by the log's writes, rebuilt when the log is cut. Segments are the
    log's (anything with base_offset, next_offset, lookup(offset), walk_headers(pos))."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.state = ProducerState()
        self.txns = TxnIndex(directory)
        # producers expired since the last snapshot: the log end's snapshot, if there is one
        # already, is written again (a restart would load them back; one that does before it is
        # written only expires them again)
        self.expired_unsaved = False

    def snapshots(self, listing: list[str] | None = None) -> list[tuple[int, Path]]:
        """(offset, path) of every snapshot file, oldest first."""
        return offset_files(self.directory, ".snapshot", listing)

    def load(self, segments: list, log_end: int, listing: list[str] | None = None) -> None:
        """At open: the newest snapshot not beyond the log end, then the batches after it."""
        start = segments[0].base_offset
        self.state = ProducerState()
        for off, path in reversed(self.snapshots(listing)):
            if off > log_end:
                remove_or_empty(path)  # describes data that recovery truncated
                continue
            loaded = ProducerState.load_snapshot(path)
            if loaded is not None and loaded[1] == off:
                self.state, start = loaded
                break
        first = segments[0].base_offset
        if start < first:
            # a snapshot older than the oldest segment (segments deleted before a newer one was
            # written): whether its open transactions ended is lost with them, and one kept open
            # would hold the last stable offset back for good; the producers' sequences still help
            self.state.open_txns = {pid: f for pid, f in self.state.open_txns.items() if f >= first}
            start = first
        if not self.txns.load([s.base_offset for s in segments], start, listing):
            # a damaged .txnindex: everything is read again from the batches
            self.txns.reset()
            self.state = ProducerState()
            start = segments[0].base_offset
        self.rebuild_from(segments, start)

    def rebuild_from(self, segments: list, offset: int) -> None:
        """Add every batch from `offset` on to the state."""
        for seg in segments:
            if seg.next_offset <= offset:
                continue
            for pos, h in seg.walk_headers(seg.lookup(offset)):
                if h.base_offset >= offset:
                    control = control_record(seg.read_at(pos, HEADER_SIZE + 40), 0, h) if h.is_control else (-1, -1)
                    self.update(h, *control, segment_base=seg.base_offset)

    def truncated(self, segments: list, log_end: int) -> None:
        """The log was cut at log_end: as Kafka's truncateAndReload, the state is the newest
        snapshot at or below the cut plus the batches from it to the cut, then written as the
        snapshot of log_end. The batches left on disk alone do not say it: compaction and
        DeleteRecords removed batches whose producers the state (and the snapshots) still know,
        and forgetting one refuses its next batch, writes a retry of a removed batch twice, and
        lets a fenced epoch write again.

        Snapshots past the cut go first. Without a usable snapshot at or below it (or with an
        index file another program holds), the state is rebuilt from the batches: every snapshot
        goes first then, as it counts on index files this rewrites, so a crash in between
        rebuilds from the log rather than trust a snapshot whose aborted transactions were in
        files half rewritten."""
        kept = []
        for off, p in self.snapshots():
            if off > log_end:
                remove_or_empty(p)   # one another program holds (Windows) is emptied: never loaded
            else:
                kept.append((off, p))
        reloaded = self._reload_below(kept, segments)
        if reloaded is None:
            self.state = ProducerState()
            for _off, p in self.snapshots():
                remove_or_empty(p)
            self.txns.reset()        # index files held are emptied too, not left stale
            start, source = segments[0].base_offset, None
        else:
            start, source = reloaded
        self.rebuild_from(segments, start)
        bases = [s.base_offset for s in segments]
        if source == log_end:
            # reloaded from the log end's own (a roll's, maybe not fsynced): made durable in
            # place before the others go
            try:
                fsync_file(self._path(log_end))
            except OSError:
                pass   # one that cannot be opened for it (held) stays as it is: a crash skips it if torn
            self._drop_others(log_end, bases)
        else:
            self.snapshot(log_end, keep=bases)

    def _reload_below(self, snapshots: list[tuple[int, Path]], segments: list) -> tuple[int, int] | None:
        """The newest usable of `snapshots` (those at or below the cut, oldest first) made the
        state, and the aborted-transaction index cut back to where it covers: (the offset to
        replay the log from, the snapshot's offset), or None if none is usable."""
        first = segments[0].base_offset
        for off, path in reversed(snapshots):
            loaded = ProducerState.load_snapshot(path)
            if loaded is None or loaded[1] != off:
                continue
            state, start = loaded
            if start < first:   # as in load(): transactions whose markers went with deleted segments
                state.open_txns = {pid: f for pid, f in state.open_txns.items() if f >= first}
                start = first
            try:
                self.txns.truncate(start)   # what replaying from start adds back
            except OSError:
                return None
            self.state = state
            return start, off
        return None

    def reset(self) -> None:
        """The log was emptied: no state, no snapshot, no aborted transaction."""
        self.state = ProducerState()
        self.txns.clear_memory()
        for _off, p in self.snapshots():
            remove_or_empty(p)   # none may be loaded again, held (Windows) or not
        self.txns.reset()

    def check(self, headers: list[BatchHeader]) -> tuple[int, int] | None:
        return self.state.check(headers)

    def update(self, h: BatchHeader, control: int = -1, coordinator_epoch: int = -1, *,
               segment_base: int = 0) -> None:
        """A batch now in the log, in the segment starting at segment_base."""
        aborted = self.state.update(h, control, coordinator_epoch)
        if aborted is not None:
            self.txns.add(aborted, segment_base)

    def snapshot(self, log_end: int, keep=()) -> None:
        """Write the state up to log_end (fsynced); delete every other snapshot but those at the
        offsets `keep` below it (the segments' bases: one per segment, as Kafka keeps them, so a
        cut reloads from the one below it)."""
        self.txns.sync()
        self.state.write_snapshot(self._path(log_end), log_end)   # a stale mark left names another file
        self.expired_unsaved = False
        self._drop_others(log_end, keep)

    def roll_snapshot(self, base: int) -> None:
        """A new segment starts at `base` (the log end): its snapshot, unless one of that offset
        is there (a cut's, or this segment's from before a cut emptied it: the state at an
        offset of this log does not change, and a cut below it removes it first). Not fsynced,
        and nothing else removed: the fsynced snapshot before it stays for a crash that leaves
        this one unreadable; the next flush's snapshot drops what is not a segment's base."""
        path = self._path(base)
        if path.exists() and not (self.txns.marks_possible and is_stale(path)):
            return
        self.txns.sync()   # the entries it counts on: only index files written since the last sync
        self.state.write_snapshot(path, base, sync=False)

    def _drop_others(self, log_end: int, keep) -> None:
        kept = set(keep)
        for off, p in self.snapshots():
            if off != log_end and not (off < log_end and off in kept):
                _drop_snapshot(p, off, log_end)

    def needs_snapshot(self, log_end: int, holds_batches: bool) -> bool:
        """No snapshot of log_end exists and there is state worth one (a log holding no batch and
        no producer has none: 10,000 idle new partitions must not cost 10,000 fsynced writes at
        every stop)."""
        path = self._path(log_end)
        return self.expired_unsaved or (bool(self.state.producers) or holds_batches) and (
            not path.exists() or (self.txns.marks_possible and is_stale(path)))

    def open_transactions(self) -> list[tuple[int, int, int]]:
        """(producer id, epoch, first offset) of every open transaction."""
        return [(pid, self.state.producers[pid].epoch if pid in self.state.producers else -1, first)
                for pid, first in sorted(self.state.open_txns.items())]

    def _path(self, log_end: int) -> Path:
        return self.directory / f"{segment_name(log_end)}.snapshot"

    def active(self) -> list[tuple[int, int, int, int, int]]:
        """(producer id, epoch, last sequence, last timestamp, coordinator epoch of its last
        marker) of every producer whose batches the log holds, as DescribeProducers reports them."""
        return [(pid, e.epoch, e.last_sequence, e.last_timestamp, e.coordinator_epoch)
                for pid, e in sorted(self.state.producers.items())]


def _drop_snapshot(path: Path, offset: int, log_end: int) -> None:
    """A snapshot other than the log end's goes. One another program holds (Windows) stays: an
    older one is harmless (the newest not beyond the log end is the one loaded), one beyond the
    log end is emptied, or the log growing past it again would load what it says of cut batches."""
    if offset > log_end:
        remove_or_empty(path)
    else:
        safe_delete_later(path)
