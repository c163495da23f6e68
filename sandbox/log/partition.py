"""PartitionLog: one partition's segments: append (offsets, idempotence, transactions and their
markers, roll, flush policy), reads, timestamp lookups, durability. Removing data: shrinking.py;
its facets `replica` and `housekeeping`: replica_view.py and housekeeping.py; the unopened log: lazy.py.
"""
from __future__ import annotations

import os
import uuid
import struct
import time
from pathlib import Path
from typing import Callable, NamedTuple

from .batch import (
    ATTR_LOG_APPEND_TIME, BatchHeader, build_control_batch, compute_crc, control_record, own_batch, parse_header,
    validate_batches,
)
from .config import LogConfig
from .epochs import LeaderEpochCache
from .files import safe_rmtree
from .housekeeping import Housekeeping
from .producers import ProducerStore
from .recovery import open_segments
from .reading import Reading
from .replica_view import ReplicaView
from .segment import Segment
from .shrinking import Shrinking

_Q = struct.Struct(">q")
_I = struct.Struct(">i")
_H = struct.Struct(">h")
_U = struct.Struct(">I")
_new_header = tuple.__new__   # BatchHeader from a plain tuple, without NamedTuple.__new__'s argument parsing


class AppendInfo(NamedTuple):
    first_offset: int
    last_offset: int
    log_append_time_ms: int
    log_start_offset: int
    duplicate: bool


class PartitionLog(Reading, Shrinking):
    """The journal of one partition. Single owner, no locks: call it from one thread/task."""

    opened = True   # False only while an UnopenedPartitionLog waits for its first use
    # True: every append is committed at once (one replica). A replicated partition's high
    # watermark is moved by its replica manager instead (the smallest log end of the ISR).
    hw_follows_leo = True
    # Set by the owner (LogDir.roll_sync): roll_sync(log, segment) -> True when it will fsync a
    # just-rolled segment off the caller's thread and then call housekeeping.segment_synced;
    # None or False: the roll fsyncs it at once, holding the append that rolled.
    roll_sync: Callable[[PartitionLog, Segment], bool] | None = None
    # Set by the owner (LogDir): called before the first append after a cut lowered the recovery
    # point, to write the checkpoint files (raising OSError if it cannot: the append fails), as
    # Kafka's truncateTo checkpoints it: the file's older, higher one would have the next start
    # trust (check only the framing of) data appended after the cut and never fsynced. One call
    # covers every log cut meanwhile (a leader change cuts many at once).
    on_recovery_lowered: Callable[[], None] | None = None
    _rp_unsaved = False   # a cut lowered the recovery point and the files still say the older one
    # The id of the topic this log belongs to, as its folder's partition.metadata names it (None:
    # not known yet). Kept by LogDir (read at open, written by LogDir.record_topic_id).
    topic_id: uuid.UUID | None = None

    def __init__(self, directory: Path, config: LogConfig, *, recovery_point: int = 0,
                 log_start_offset: int | None = None, clock: Callable[[], float] = time.time,
                 on_event: Callable[[str, dict], None] | None = None, listing: list[str] | None = None,
                 high_watermark: int | None = None) -> None:
        self.directory = Path(directory)
        self._config = config
        self._clock = clock
        self._on_event = on_event
        if listing is None:
            self.directory.mkdir(parents=True, exist_ok=True)
        try:
            self._load(recovery_point, log_start_offset, listing, high_watermark)
        except BaseException:   # no handle left open (Windows could not remove the folder)
            for seg in self.__dict__.get("_segments", []):
                seg.close()
            raise

    def _load(self, recovery_point: int, log_start_offset: int | None, listing: list[str] | None,
              high_watermark: int | None = None) -> None:
        """Open and recover the directory's segments and producer state (the constructor's work)."""
        config = self._config
        if listing is None:
            listing = os.listdir(self.directory)   # listed once for segments, leftovers and snapshots
        self._segments: list[Segment] = open_segments(
            self.directory, config.index_interval_bytes, recovery_point, self._emit, listing)
        if not self._segments:
            self._segments.append(Segment(self.directory, log_start_offset or 0, config.index_interval_bytes))
        self._bases = [s.base_offset for s in self._segments]
        leo = self._segments[-1].next_offset
        lso = self._segments[0].base_offset
        if log_start_offset is not None:
            lso = min(max(lso, log_start_offset), leo)
        self._log_start_offset = lso
        self._recovery_point = min(max(recovery_point, 0), leo)
        # the checkpointed high watermark (replicated partitions). Without one: the log end while
        # the log is not known to be replicated (a partition never replicated has none), and the
        # log start once it is (the checkpoint file damaged or lost: as Kafka's, nothing is shown
        # to consumers that the replicas have not confirmed again); ReplicaView.set_replicated
        # settles it for a log opened before the metadata said which
        follows = self.__dict__.get("hw_follows_leo")   # None: the metadata has not said yet
        if follows:
            self._high_watermark = leo
        elif high_watermark is not None:
            self._high_watermark = max(lso, min(high_watermark, leo))
            if high_watermark > leo:
                # every replica had the records below the checkpointed high watermark, and this
                # log no longer does (unflushed at a power loss, or a file shortened or removed
                # while it was stopped): said with the offsets (Kafka clamps without a word); a
                # follower fetches them back from its leader
                self._emit("repair", {"path": str(self.directory), "missing_from": leo,
                                      "missing_to": high_watermark - 1, "checkpoint": "high watermark"})
        elif follows is None:
            self._high_watermark = leo
            self._hw_unchecked = True
        else:
            self._high_watermark = lso
        self._epochs = LeaderEpochCache(self.directory)
        self._epochs.truncate_from_end(leo)
        if not self._epochs.entries and leo > lso:
            self._rebuild_epochs()
        self._unflushed_messages = 0
        self._last_flush_ms = self._now_ms()
        self.flush_failed: OSError | None = None   # why the last flush an append asked for failed
        self._producers = ProducerStore(self.directory)
        self._producers.load(self._segments, leo, listing)
        if log_start_offset is not None and log_start_offset > leo:
            # records up to the checkpointed log start were deleted (DeleteRecords, retention) but
            # a crash lost the log's unsynced end below it: continue empty at the log start, as
            # Kafka's deleteSegmentsIfLogStartGreaterThanLogEnd does, never giving deleted
            # offsets out again (a group that committed past them would skip the new records)
            # Windows: a segment another program holds stops it with PermissionError, and the open
            # fails (tried again: a log opened at its first use at its next use, the others at
            # the broker's next start), rather than go on below the log start
            self._emit("log-start-past-end", {"log_end_offset": leo, "log_start_offset": log_start_offset})
            self._reset_to(log_start_offset)
        # recovery cut the log below its checkpointed point: written before the next append
        self._rp_unsaved = recovery_point > self._recovery_point

    # ---------------------------------------------------------------- small helpers

    def _emit(self, kind: str, info: dict) -> None:
        if self._on_event is not None:
            self._on_event(kind, info)

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    @property
    def _active(self) -> Segment:
        return self._segments[-1]

    @property
    def config(self) -> LogConfig:
        return self._config

    @config.setter
    def config(self, cfg: LogConfig) -> None:
        self._config = cfg
        for s in self._segments:
            s.index_interval_bytes = cfg.index_interval_bytes

    @property
    def log_start_offset(self) -> int:
        return self._log_start_offset

    @property
    def log_end_offset(self) -> int:
        return self._active.next_offset

    @property
    def high_watermark(self) -> int:
        return self._high_watermark

    @property
    def recovery_point(self) -> int:
        return self._recovery_point

    @property
    def size_bytes(self) -> int:
        return sum(s.size for s in self._segments)

    @property
    def replica(self) -> ReplicaView:
        """Replication's verbs: follower appends, leader epochs, the high watermark."""
        return ReplicaView(self)

    @property
    def housekeeping(self) -> Housekeeping:
        """Timers' and tools' verbs: retention, flush, roll, checkpoints, deletion."""
        return Housekeeping(self)

    # ---------------------------------------------------------------- leader epochs

    def _rebuild_epochs(self) -> None:
        """Rebuild the leader-epoch cache from the batches (a log written before it existed)."""
        for seg in self._segments:
            for _pos, h in seg.walk_headers(0):
                self._epochs.assign(h.leader_epoch, h.base_offset)

    # ---------------------------------------------------------------- append

    def append(self, records, *, leader_epoch: int = 0, now_ms: int | None = None,
               validated: list[BatchHeader] | None = None, in_place: bool = False) -> AppendInfo:
        """Validate, assign offsets, write with one call, index, roll and apply the flush policy.
        in_place: `records` is a writable buffer the caller gives away, so offsets are stamped into
        it without a copy (the broker's request buffers)."""
        cfg = self._config
        headers = validated if validated is not None else validate_batches(records, cfg.max_message_bytes)
        dup = self._producers.check(headers)
        if dup is not None:
            return AppendInfo(dup[0], dup[1], -1, self._log_start_offset, True)
        now = self._now_ms() if now_ms is None else now_ms
        buf = records if in_place else bytearray(records)
        first = offset = self.log_end_offset
        append_time = now if cfg.log_append_time else -1
        placed: list[tuple[int, BatchHeader]] = []
        pos = 0
        messages = 0
        for h in headers:
            _Q.pack_into(buf, pos, offset)
            _I.pack_into(buf, pos + 12, leader_epoch)
            if append_time >= 0:
                _H.pack_into(buf, pos + 21, h.attributes | ATTR_LOG_APPEND_TIME)
                _Q.pack_into(buf, pos + 35, append_time)
                _U.pack_into(buf, pos + 17, compute_crc(buf, pos, h.size))
                h = parse_header(buf, pos)
            else:   # h._replace(base_offset=offset, leader_epoch=leader_epoch), without its cost
                h = _new_header(BatchHeader, (offset, h[1], leader_epoch, *h[3:]))
            placed.append((pos, h))
            offset = h.next_offset
            pos += h.size
            messages += h.records_count
        if leader_epoch > self._epochs.latest_epoch:
            self._epochs.assign(leader_epoch, first)
        self._write(buf, placed, offset - 1, messages, now)
        return AppendInfo(first, offset - 1, append_time, self._log_start_offset, False)

    def _write(self, buf, placed: list[tuple[int, BatchHeader]], last_offset: int, messages: int,
               now: int) -> None:
        """Write placed batches with one call, index them, roll and apply the flush policy."""
        if self._epochs.unsaved:   # a cut's epochs first: never batches beyond a stale file's entries
            self._epochs.save_pending()
        if self._rp_unsaved and self.on_recovery_lowered is not None:
            self.on_recovery_lowered()   # a cut's recovery point first (see on_recovery_lowered)
        cfg = self._config
        self.flush_failed = None   # of this append only
        self._maybe_roll(len(buf), last_offset, now)
        seg = self._active
        txns = self._producers.txns
        if txns.marks_possible and any(h.is_control for _p, h in placed):
            txns.ensure_writable(seg.base_offset)   # before the marker, not after
        seg.append(buf, placed)
        if seg.roll_base_ms is None:
            seg.roll_base_ms = now
        for p, h in placed:
            self._producers.update(h, *(control_record(buf, p, h) if h.is_control else (-1, -1)),
                                   segment_base=seg.base_offset)
        if self.hw_follows_leo:
            self._high_watermark = self.log_end_offset
        self._unflushed_messages += messages
        if ((cfg.flush_messages is not None and self._unflushed_messages >= cfg.flush_messages)
                or (cfg.flush_ms is not None and now - self._last_flush_ms >= cfg.flush_ms)):
            try:
                self._flush(now_ms=now)
            except OSError as e:
                # the batches are written (readable, in the producer state): failing the append
                # would have a client send them again. Left dirty, the broker's flush timer tries
                # again (and says the disk is full while it fails)
                self.flush_failed = e

    def append_marker(self, producer_id: int, producer_epoch: int, commit: bool, coordinator_epoch: int, *,
                      leader_epoch: int = 0, now_ms: int | None = None) -> AppendInfo:
        """End a producer's transaction here with a commit or abort marker (a control batch, as
        WriteTxnMarkers asks), as Kafka's ProducerAppendInfo.appendEndTxnMarker checks one from
        the coordinator: a marker from an older producer epoch than the producer's is refused
        (InvalidProducerEpochError), then one from an older coordinator epoch than the producer's
        last marker had (TransactionCoordinatorFencedError: a zombie coordinator's); a producer
        this partition does not know takes any. Nothing is appended when refused. A follower
        copies the leader's markers through `append` and checks neither (Kafka only logs them
        for replication). A coordinator put back after its journal was lost does not go below
        the old coordinator epochs as far as the restore can see: restored partitions start above
        every leader epoch their replicas that answer then hold (docs/protocol.md)."""
        self._producers.state.check_marker(producer_id, producer_epoch, coordinator_epoch)
        now = self._now_ms() if now_ms is None else now_ms
        buf = build_control_batch(producer_id, producer_epoch, commit, coordinator_epoch, now, writable=True)
        return self.append(buf, leader_epoch=leader_epoch, now_ms=now, in_place=True,
                           validated=own_batch(buf, self._config.max_message_bytes))

    def in_transaction(self, producer_id: int, producer_epoch: int) -> bool:
        """True while this producer, at this epoch, has a transaction open here (data written, no
        marker yet): its next transactional batches need no check with the coordinator."""
        state = self._producers.state
        entry = state.producers.get(producer_id)
        return producer_id in state.open_txns and entry is not None and entry.epoch == producer_epoch

    @property
    def last_stable_offset(self) -> int:
        """Where read_committed consumers stop: the first offset of a transaction not yet ended
        (or whose marker the high watermark has not passed), else the high watermark."""
        first = self._producers.state.first_unstable(self._high_watermark)
        return self._high_watermark if first is None else max(min(first, self._high_watermark),
                                                              self._log_start_offset)

    def aborted_transactions(self, start: int, upper: int) -> list[tuple[int, int]]:
        """(producer id, first offset) of the aborted transactions with data in [start, upper),
        for a read_committed fetch of that range."""
        return self._producers.txns.overlapping(start, upper)

    def _maybe_roll(self, nbytes: int, last_offset: int, now: int) -> None:
        seg = self._active
        if seg.size == 0:
            return
        cfg = self._config
        if (seg.size + nbytes > cfg.segment_bytes
                or (seg.roll_base_ms is not None and now - seg.roll_base_ms > cfg.segment_ms)
                or last_offset - seg.base_offset > 0xFFFFFFFF):
            self._roll()

    def _roll(self) -> None:
        """Close the active segment for writing (indexes persisted) and start a new one at LEO."""
        old = self._active
        if old.size == 0:
            return
        old.cut_tail()
        if self.roll_sync is None or not self.roll_sync(self, old):
            old.fsync()
            old.write_indexes()
            # every older segment was fsynced at its own roll (or by flush): all below is durable,
            # so a crash only rescans what is above, and damage below this point is never
            # "repaired" by silently cutting acknowledged data (recovery refuses instead)
            self._recovery_point = max(self._recovery_point, old.next_offset)
        # else: until the fsync is done (segment_synced) the recovery point stays below the old
        # segment and a crash rescans it too
        seg = Segment(self.directory, old.next_offset, self._config.index_interval_bytes)
        self._segments.append(seg)
        self._bases.append(seg.base_offset)
        # the producer state at the new segment's base, kept while the segment is (Kafka's roll
        # snapshot): a cut into this segment reloads from it, not from the batches compaction or
        # DeleteRecords left (producers.truncated). Not fsynced here (on the event loop): it
        # removes no other snapshot, so one a crash left unreadable is skipped for the fsynced
        # one before it. One that cannot be written (a full disk, a file of that name another
        # program holds) fails no append: a cut then reloads from an older snapshot, and a held
        # one describes this same offset of this same log (a cut below it removed or emptied it)
        try:
            self._producers.roll_snapshot(seg.base_offset)
        except OSError:
            pass

    def _segment_synced(self, seg: Segment, mark: tuple[int, int]) -> None:
        """A rolled segment's deferred fsync is done (roll_sync; mark: seg.mark() when it
        rolled): write its indexes durably and move the recovery point past it, as a roll does
        at once without roll_sync. Nothing moves if the segment changed meanwhile (closed,
        deleted, cut, even if appended back to the same offset: the fsync may have missed the
        new bytes) or an older segment is not known durable yet (its own fsync failed): the
        next flush makes all of it durable."""
        if (seg.closed or seg is self._active or seg.mark() != mark
                or self._recovery_point < seg.base_offset or seg not in self._segments):
            return
        seg.write_indexes()
        self._recovery_point = max(self._recovery_point, seg.next_offset)

    # ---------------------------------------------------------------- durability and lifecycle

    def _flush(self, now_ms: int | None = None, *, if_due: bool = False) -> bool:
        """fsync every segment at or above the recovery point, persist indexes and the producer
        snapshot, then advance the recovery point to the log end offset. if_due: only when
        flush.ms has passed since the last flush and something is unflushed (from a timer:
        appends alone would never flush an idle partition). True if it flushed."""
        if if_due:
            fm = self._config.flush_ms
            now = self._now_ms() if now_ms is None else now_ms
            if fm is None or not self._dirty or now - self._last_flush_ms < fm:
                return False
        leo = self.log_end_offset
        for seg in self._unflushed():
            seg.fsync()
            seg.write_indexes()
        for seg in self._segments:
            if seg.index_dirty:   # an older segment's indexes, rebuilt at a read (Segment._floor)
                seg.write_indexes()
        self._producers.snapshot(leo, keep=self._bases)
        self._recovery_point = leo
        self._unflushed_messages = 0
        self._last_flush_ms = self._now_ms() if now_ms is None else now_ms
        self.flush_failed = None
        return True

    def _unflushed(self) -> list[Segment]:
        """The segments a flush fsyncs: those above the recovery point, and the active one."""
        return [seg for seg in self._segments if seg.next_offset > self._recovery_point or seg is self._active]

    @property
    def _dirty(self) -> bool:
        """True when appended data is not yet fsynced (the recovery point lags the log end)."""
        return self._recovery_point < self.log_end_offset

    def _checkpoint_offsets(self) -> tuple[int, int | None]:
        """(recovery point, log start offset) for the checkpoint files."""
        return self._recovery_point, self._log_start_offset

    def close(self, *, flush: bool = True) -> None:
        """Flush and close every handle. Idempotent. flush=False: a log about to be deleted, whose
        fsyncs (of all it wrote since the last flush) would be wasted time on the caller's thread."""
        if not self._segments or self._active.closed:
            return
        # an untouched partition has nothing to persist: closing 10,000 idle partitions must not
        # cost 30,000 fsynced writes
        try:
            if flush and (self._dirty or any(seg.index_dirty for seg in self._segments)
                    or self._producers.needs_snapshot(self.log_end_offset, any(seg.size for seg in self._segments))):
                self._flush()   # a full disk: raised, after the handles are closed all the same
        finally:
            for seg in self._segments:
                seg.close()

    def _delete(self) -> None:
        """Close every handle, then remove the whole partition directory (retrying on Windows)."""
        for seg in self._segments:
            seg.close()
        safe_rmtree(self.directory)
