"""Committed group offsets kept in the replicated internal topic `__consumer_offsets`, as Kafka
keeps them: a group belongs to one partition, its coordinator is that partition's leader, commits
are records (offsets_records.py) answered once the ISR has them, and the in-memory view of a
partition is read from its log when this broker starts leading it and dropped when it stops.
Transactional commits (TxnOffsetCommit) are transactional records, pending until their marker."""

from __future__ import annotations

import logging
from collections import deque
import os
import struct
import time
from pathlib import Path
from typing import Any, Callable, Iterable

from sandbox.log.batch import CONTROL_COMMIT, control_type, iter_records
from sandbox.log import RecordTooLargeError
from sandbox.protocol.errors import (
    INVALID_COMMIT_OFFSET_SIZE, INVALID_GROUP_ID, INVALID_PRODUCER_EPOCH, NONE, NOT_COORDINATOR,
)

from .internal_log import (
    COORDINATOR_ERRORS as _COMMIT_ERRORS, append_records, ensure_topic, key_coordinator, key_partition, led_partitions,
    read_batches, refused_load,
)
from .internal_topics import OFFSETS_TOPIC
from .offsets import JOURNAL, CommittedOffset, Entry, OffsetStore
from .offsets_records import OffsetKey, decode_key, decode_value, encode_key, encode_value
from .offsets_txn import TxnOffsets

log = logging.getLogger("sandbox.broker")

DEFAULT_PARTITIONS = 10           # offsets.topic.num.partitions (Kafka's 50 is more than a sandbox needs)
DEFAULT_REPLICATION_FACTOR = 3    # offsets.topic.replication.factor, capped at the live brokers
TOPIC_CONFIGS = {"cleanup.policy": "compact"}

View = dict[str, dict[tuple[str, int], CommittedOffset]]


class OffsetsNotWritable(OSError):
    """This broker cannot append to the group's partition now; `error_code` says why."""

    def __init__(self, error_code: int, message: str) -> None:
        super().__init__(message)
        self.error_code = error_code


class TopicOffsetStore:
    """OffsetStore's API (get, group_offsets, groups, commit, delete_group, delete_partitions,
    delete_topic, close) over the `__consumer_offsets` partitions this broker leads, plus
    `replicated(group)`, awaited before a write is answered."""

    def __init__(self, state: Any, *, partitions: int = DEFAULT_PARTITIONS,
                 replication_factor: int = DEFAULT_REPLICATION_FACTOR, fsync: bool = True,
                 legacy_dir: Path | None = None, clock: Callable[[], float] = time.time,
                 on_event: Callable[[str, dict], None] | None = None) -> None:
        self.state = state
        self.partitions = partitions
        self.replication_factor = replication_factor
        self._fsync = fsync
        self._clock = clock
        self._emit = on_event or (lambda kind, detail: None)
        self._views: dict[int, View] = {}
        self._epochs: dict[int, int] = {}              # partition -> leader epoch it was loaded at
        self.refused: set[int] = set()   # led here, not loaded: a file of it held (retry_unopened)
        self._txn: dict[int, TxnOffsets] = {}          # partition -> its transactional commits
        # partition -> plain commits written here and not yet on the ISR (the high watermark has
        # not passed their record): (record offset, group, (topic, partition), offset), in log
        # order. Reads do not see them until it has, as Kafka's coordinator reads its state at
        # the last committed offset: one seen by another member, then lost with the leader
        # before the ISR had it, would have the group read its records again. The offsets a
        # transaction's marker read back at a load past the high watermark commits wait here too
        # (at the marker's offset)
        self._uncommitted: dict[int, deque[tuple[int, str, tuple[str, int], CommittedOffset | None]]] = {}
        # group -> (partition, last offset, leader epoch it was written in)
        self._pending: dict[str, tuple[tuple[str, int], int, int]] = {}
        self.legacy: OffsetStore | None = None
        if legacy_dir is not None and (Path(legacy_dir) / JOURNAL).exists():
            self.legacy = OffsetStore(legacy_dir, fsync=fsync, on_event=on_event)
            if not self.legacy.groups():
                self._retire_legacy()

    # ---- where a group lives -----------------------------------------------------------------
    def topic(self):
        return self.state.coordinator.topic(OFFSETS_TOPIC)

    def partition_for(self, group: str) -> int:
        return key_partition(self.state, OFFSETS_TOPIC, group, self.partitions)

    def coordinator_for(self, group: str) -> int | None:
        """The leader of the group's partition (-1 while it has none); None without the topic."""
        return key_coordinator(self.state, OFFSETS_TOPIC, group)

    def leads(self, group: str) -> bool:
        """This broker coordinates the group: it leads the group's partition and has read it."""
        return self.partition_for(group) in self._views

    async def ensure_topic(self) -> bool:
        """Create `__consumer_offsets` on first need (FindCoordinator, a commit), with
        min(offsets.topic.replication.factor, live brokers) replicas. True if it exists."""
        return await ensure_topic(self.state, OFFSETS_TOPIC, self.partitions, self.replication_factor,
                                  TOPIC_CONFIGS, self._emit, "group coordinator")

    # ---- leadership ------------------------------------------------------------------------
    def on_metadata(self) -> None:
        """Load the partitions this broker has started leading, drop those it no longer leads."""
        led = led_partitions(self.state, OFFSETS_TOPIC)
        self.refused &= set(led)
        for index in [i for i in self._views if self._epochs.get(i) != led.get(i)]:
            self._unload(index)
        for index, epoch in sorted(led.items()):
            if index not in self._views:
                self._load(index, epoch)

    def _load(self, index: int, epoch: int) -> None:
        plog = self.state.partitions[(OFFSETS_TOPIC, index)]
        view: View = {}
        txn = TxnOffsets()
        # plain commits past the high watermark (a new leader's records its followers may not have
        # yet) wait for it, as those written here do
        uncommitted: deque = deque()
        hw = plog.high_watermark
        try:
            for h, batch, start in read_batches(plog):
                _apply_batch(view, txn, h, batch, start, hw, uncommitted)
        except PermissionError as e:   # Windows: a file of it held; loaded once let go (retry_unopened)
            refused_load(self.refused, OFFSETS_TOPIC, index, e, "its groups are answered NOT_COORDINATOR")
            return
        self.refused.discard(index)
        self._views[index], self._epochs[index], self._txn[index] = view, epoch, txn
        self._uncommitted[index] = uncommitted
        log.info("%s-%d loaded: %d group(s) with committed offsets, %d open transaction(s) with offsets",
                 OFFSETS_TOPIC, index, len(view), len(txn.pending))
        self._migrate(index)

    def _unload(self, index: int) -> None:
        gone = self._views.pop(index, {})
        self._epochs.pop(index, None)
        self._txn.pop(index, None)
        self._uncommitted.pop(index, None)
        key = (OFFSETS_TOPIC, index)   # writes nobody waits on (expiry, a deleted topic's) are no one's now
        self._pending = {g: p for g, p in self._pending.items() if p[0] != key}
        groups = getattr(self.state, "groups", None)
        if groups is not None:   # members re-find the coordinator (NOT_COORDINATOR meanwhile)
            # every group goes, members or not, classic or KIP-848: what this broker knew of their
            # members is stale once another coordinator has them (a zombie's old generation or
            # member epoch was accepted when the partition came back)
            moved = [g for g in groups.machine.groups if self.partition_for(g) == index]
            for gid in moved:
                groups.machine.forget(gid)
            consumer = [g for g in groups.consumer.machine.groups if self.partition_for(g) == index]
            for gid in consumer:
                groups.consumer.machine.forget(gid)
            groups.not_coordinating(moved + consumer + list(gone))
        log.info("%s-%d no longer led here: %d group(s) unloaded", OFFSETS_TOPIC, index, len(gone))

    # ---- reading ---------------------------------------------------------------------------
    def _view(self, group: str) -> dict[tuple[str, int], CommittedOffset] | None:
        index = self.partition_for(group)
        self._settle(index)
        return self._views.get(index, {}).get(group)

    def _settle(self, index: int) -> None:
        """The plain commits the high watermark has passed since go into the view."""
        pending = self._uncommitted.get(index)
        if not pending:
            return
        plog = self.state.partitions.get((OFFSETS_TOPIC, index))
        view = self._views.get(index)
        if plog is None or view is None:
            return
        hw = plog.high_watermark
        txn = self._txn.get(index)
        while pending and pending[0][0] < hw:
            at, group, tp, committed = pending.popleft()
            if txn is not None:
                if txn.applied_at.get((group, tp), -1) > at:
                    continue   # a transaction's later commit is in already
                txn.applied_at[(group, tp)] = at
            if committed is not None:
                view.setdefault(group, {})[tp] = committed
            elif group in view:   # a tombstone read back at a load
                view[group].pop(tp, None)
                if not view[group]:
                    del view[group]

    def unsettled(self, group: str, *, tombstones: bool = False) -> set[tuple[str, int]]:
        """The partitions of the group's plain commits (and tombstones, if asked) written here and
        not on the ISR yet (OffsetFetch does not see them yet, but OffsetDelete and DeleteGroups
        must delete them)."""
        index = self.partition_for(group)
        self._settle(index)
        return {tp for _at, g, tp, c in self._uncommitted.get(index, ())
                if g == group and (tombstones or c is not None)}

    def get(self, group: str, topic: str, partition: int) -> CommittedOffset | None:
        return (self._view(group) or {}).get((topic, partition))

    def group_offsets(self, group: str) -> dict[tuple[str, int], CommittedOffset]:
        return dict(self._view(group) or {})

    def groups(self) -> list[str]:
        for index in list(self._uncommitted):
            self._settle(index)
        return [g for view in self._views.values() for g in view]

    # ---- writing ---------------------------------------------------------------------------
    def commit(self, group: str, entries: Iterable[Entry]) -> None:
        rows = list(entries)
        if not rows:
            return
        now = int(self._clock() * 1000)
        index = self._writable(group)
        at = self._append(index, group, _records(group, rows, now))
        pending = self._uncommitted.setdefault(index, deque())
        txn = self._txn[index]
        for (t, p, o, e, m), record in zip(rows, at):
            pending.append((record, group, (t, int(p)), CommittedOffset(int(o), int(e), m or "", now)))
            txn.written(group, (t, int(p)), record)
        self._settle(index)   # at once when the partition has no follower in its ISR

    def commit_txn(self, group: str, producer_id: int, producer_epoch: int, entries: Iterable[Entry]) -> None:
        """TxnOffsetCommit: the offsets are written as one transactional record batch of the
        producer and stay pending (OffsetFetch does not see them) until its transaction's marker
        reaches this partition (complete_txn)."""
        rows = list(entries)
        if not rows:
            return
        now = int(self._clock() * 1000)
        index = self._writable(group)
        plog = self.state.partitions[(OFFSETS_TOPIC, index)]
        seen = next((e for pid, e, _s, _t, _c in plog.housekeeping.active_producers() if pid == producer_id), -1)
        if producer_epoch < seen:   # the log checks epochs of sequenced batches only; these have none
            raise OffsetsNotWritable(INVALID_PRODUCER_EPOCH, f"producer {producer_id} has epoch {producer_epoch}, "
                                                             f"older than {seen}")
        at = self._append(index, group, _records(group, rows, now), producer=(producer_id, producer_epoch))
        txn = self._txn[index]
        for (t, p, o, e, m), record in zip(rows, at):
            txn.add(producer_id, group, (t, int(p)), CommittedOffset(int(o), int(e), m or "", now), record)

    def complete_txn(self, index: int, producer_id: int, commit: bool) -> int:
        """The transaction's marker is on partition `index` (and replicated): its offset commits
        there become committed offsets, or are dropped on abort. Returns how many went in."""
        txn, view = self._txn.get(index), self._views.get(index)
        if txn is None or view is None:
            return 0
        return txn.complete(producer_id, commit, view)

    def txn_pending(self, group: str, topic: str, partition: int) -> bool:
        """A commit of the group for this partition is not settled: a transaction holds one
        (KIP-447: OffsetFetch with require_stable answers UNSTABLE_OFFSET_COMMIT meanwhile), or
        a plain one is not on the ISR yet (Kafka answers a stable read once it is)."""
        txn = self._txn.get(self.partition_for(group))
        return (txn is not None and txn.is_pending(group, (topic, partition))) or \
            (topic, partition) in self.unsettled(group, tombstones=True)

    def delete_group(self, group: str) -> bool:
        offs = self._view(group)
        unsettled = self.unsettled(group)
        if offs is None and not unsettled:
            return False
        self.delete_partitions(group, list(offs or {}) + sorted(unsettled - set(offs or {})))
        txn = self._txn.get(self.partition_for(group))
        if txn is not None:
            txn.forget(group)
        return True

    def delete_partitions(self, group: str, parts: list[tuple[str, int]]) -> None:
        """Tombstones for some of a group's offsets (OffsetDelete, DeleteGroups)."""
        offs = self._view(group) or {}
        unsettled = self.unsettled(group)
        gone = [k for k in parts if k in offs or k in unsettled]
        if not gone:
            return
        index = self._writable(group)
        at = self._append(index, group, [(encode_key(group, t, p), None) for t, p in gone])
        txn = self._txn[index]
        txn.forget(group, set(gone))
        dropped = set(gone)   # commits before the tombstones, not on the ISR yet: never to come in
        pending = self._uncommitted.get(index)
        if pending:
            self._uncommitted[index] = deque(u for u in pending if not (u[1] == group and u[2] in dropped))
        for k, record in zip(gone, at):
            offs.pop(k, None)
            txn.written(group, k, record)
        if not offs:
            self._views[index].pop(group, None)

    def delete_topic(self, topic: str) -> int:
        """A deleted topic's offsets go from every group this broker coordinates (tombstones),
        those not on the ISR yet too."""
        n = 0
        for index, view in list(self._views.items()):
            if (OFFSETS_TOPIC, index) not in self.state.partitions:
                continue
            self._settle(index)
            unsettled: dict[str, set[tuple[str, int]]] = {}
            for _at, g, tp, _c in self._uncommitted.get(index, ()):
                if tp[0] == topic:
                    unsettled.setdefault(g, set()).add(tp)
            for group in sorted(set(view) | set(unsettled)):
                parts = sorted({k for k in view.get(group, {}) if k[0] == topic} | unsettled.get(group, set()))
                if parts:
                    try:
                        self.delete_partitions(group, parts)
                        n += len(parts)
                    except OSError as e:
                        log.warning("offsets of deleted topic %r in group %r not removed: %s", topic, group, e)
        return n

    async def replicated(self, group: str, timeout_s: float) -> int:
        """After a write for `group`: wait until every ISR member has it (acks=all); an error
        code for the client (COORDINATOR_NOT_AVAILABLE, NOT_COORDINATOR) if it cannot be."""
        pending = self._pending.get(group)
        if pending is None:
            return NONE
        key, last, epoch = pending
        # also when the partition has no followers: NOT_LEADER_OR_FOLLOWER (NOT_COORDINATOR for the
        # client) if this broker stopped leading it, or leads it in another epoch, since the write
        code = await self.state.replicas.wait_for_replicas(key, last, timeout_s, epoch)
        if self._pending.get(group) == pending:
            del self._pending[group]
        return _COMMIT_ERRORS.get(code, code)

    def _writable(self, group: str) -> int:
        index = self.partition_for(group)
        if index not in self._views:
            raise OffsetsNotWritable(NOT_COORDINATOR, f"{OFFSETS_TOPIC}-{index} is not led here")
        code = self.state.replicas.check_produce((OFFSETS_TOPIC, index), -1)
        if code != NONE:
            raise OffsetsNotWritable(_COMMIT_ERRORS.get(code, code), f"{OFFSETS_TOPIC}-{index}: error {code}")
        return index

    def _append(self, index: int, group: str, records: list[tuple[bytes, bytes | None]],
                producer: tuple[int, int] | None = None) -> list[int]:
        """Append the records (transactional batches of `producer` = (id, epoch) if given) and
        return the log offset of each."""
        key = (OFFSETS_TOPIC, index)
        epoch = self.state.leaders[key][1]
        try:
            last = append_records(self.state, key, records, self._fsync, producer=producer)
        except RecordTooLargeError as e:   # nothing written (append_records checks every batch first)
            raise OffsetsNotWritable(INVALID_COMMIT_OFFSET_SIZE, f"the offsets to commit are too large: {e}") from e
        self._pending[group] = (key, last, epoch)
        return list(range(last - len(records) + 1, last + 1))   # one append, nothing in between: contiguous

    # ---- the journal of earlier versions -----------------------------------------------------
    def _migrate(self, index: int) -> None:
        """Offsets in this broker's `offsets.journal` (before offsets were a topic) are written
        once into the partitions of their groups as this broker leads them, then the journal
        is kept as offsets.journal.migrated."""
        if self.legacy is None:
            return
        moved = 0
        for group in [g for g in self.legacy.groups() if self.partition_for(g) == index]:
            rows = [(t, p, c.offset, c.leader_epoch, c.metadata)
                    for (t, p), c in self.legacy.group_offsets(group).items()]
            try:
                self.commit(group, rows)
            except OSError as e:
                log.warning("offsets of group %r not migrated yet: %s", group, e)
                continue
            self.legacy.delete_group(group)
            moved += 1
        if moved:
            self._emit("offsets-migrated", {"partition": index, "groups": moved})
        if not self.legacy.groups():
            self._retire_legacy()

    def has_legacy(self) -> bool:
        return self.legacy is not None

    def _retire_legacy(self) -> None:
        assert self.legacy is not None
        path = self.legacy.path
        self.legacy.close()
        self.legacy = None
        try:
            os.replace(path, path.with_name(JOURNAL + ".migrated"))
        except OSError as e:
            log.warning("%s not renamed after migration: %s", path, e)

    def close(self) -> None:
        if self.legacy is not None:
            self.legacy.close()


def _apply_batch(view: View, txn: TxnOffsets, h, batch, start: int, hw: int | None = None,
                 uncommitted: deque | None = None) -> None:
    """One (uncompressed) batch read back from the log: plain commits and tombstones go into the
    view (those at or past `hw` into `uncommitted`, for the view once the high watermark passes
    them), transactional ones wait for their producer's marker, a marker completes them (one at
    or past `hw` puts the offsets it commits into `uncommitted`, at its own offset)."""
    if h.is_control:
        kind = control_type(batch, 0, h)
        if kind >= 0 and hw is not None and uncommitted is not None and h.base_offset >= hw:
            # a marker the followers may not have yet: the offsets it commits wait for the high
            # watermark to pass it, as plain commits do (a group reads at the last committed offset)
            done: list = []
            txn.complete(h.producer_id, kind == CONTROL_COMMIT, view, into=done)
            uncommitted.extend((h.base_offset, group, tp, committed) for group, tp, committed in done)
        elif kind >= 0:
            txn.complete(h.producer_id, kind == CONTROL_COMMIT, view)
        return
    for at, _ts, key, value, _hd in iter_records(batch):
        if at < start or key is None:
            continue
        if h.is_transactional:
            _apply_txn_record(txn, h.producer_id, at, key, value)
        elif hw is not None and uncommitted is not None and at >= hw:
            later: View = {}
            k = _apply_record(later, key, value)
            if k is not None:
                tp = (k.topic, k.partition)
                uncommitted.append((at, k.group, tp, later.get(k.group, {}).get(tp)))
                txn.written(k.group, tp, at)
        else:
            k = _apply_record(view, key, value)
            if k is not None:
                txn.written(k.group, (k.topic, k.partition), at)


def _records(group: str, rows: list, now: int) -> list[tuple[bytes, bytes]]:
    """The `__consumer_offsets` records of a commit; a group id too long for the record key
    (Kafka's int16-length string: a flexible request may carry a longer one) is refused."""
    try:
        return [(encode_key(group, t, p), encode_value(o, e, m or "", now)) for t, p, o, e, m in rows]
    except struct.error as e:
        raise OffsetsNotWritable(INVALID_GROUP_ID, f"a group id of {len(group.encode())} bytes does not fit "
                                                   f"an offset record (at most 32767)") from e


def _apply_txn_record(txn: TxnOffsets, producer_id: int, at: int, key: bytes, value: bytes | None) -> None:
    try:
        k = decode_key(key)
        if k is None or value is None:
            return
        v = decode_value(value)
    except (ValueError, IndexError, UnicodeDecodeError, struct.error) as e:   # struct.error is no ValueError
        log.warning("unreadable transactional record in %s skipped: %s", OFFSETS_TOPIC, e)
        return
    txn.add(producer_id, k.group, (k.topic, k.partition),
            CommittedOffset(v.offset, v.leader_epoch, v.metadata, v.commit_timestamp), at)


def _apply_record(view: View, key: bytes, value: bytes | None) -> OffsetKey | None:
    """A plain record into the view; its key if it was an offset commit (or its tombstone)."""
    try:
        k = decode_key(key)
        if k is None:
            return None
        if value is None:
            offs = view.get(k.group)
            if offs is not None:
                offs.pop((k.topic, k.partition), None)
                if not offs:
                    del view[k.group]
            return k
        v = decode_value(value)
    except (ValueError, IndexError, UnicodeDecodeError, struct.error) as e:   # struct.error is no ValueError
        log.warning("unreadable record in %s skipped: %s", OFFSETS_TOPIC, e)
        return None
    view.setdefault(k.group, {})[(k.topic, k.partition)] = CommittedOffset(v.offset, v.leader_epoch, v.metadata,
                                                                          v.commit_timestamp)
    return k
