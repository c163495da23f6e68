"""Transactional ids kept in the replicated, compacted internal topic `__transaction_state`, as
Kafka keeps them: an id belongs to one partition (the group function), its coordinator is that
partition's leader, every state change is a record answered once the ISR has it, and the state of
a partition is read back when this broker starts leading it and dropped when it stops."""

from __future__ import annotations

import logging
import struct
from typing import Any, Callable, Coroutine

from sandbox.protocol.codec import DecodeError
from sandbox.protocol.errors import COORDINATOR_LOAD_IN_PROGRESS, NONE, NOT_COORDINATOR

from ..internal_topics import TXN_TOPIC
from ..internal_log import (
    COORDINATOR_ERRORS, append_records, ensure_topic, key_coordinator, key_partition, led_partitions, read_records,
    refused_load,
)
from .machine import TxnMachine
from .records import DEAD, TxnMetadata, decode_key, decode_value, encode_key, encode_value

log = logging.getLogger("sandbox.broker")

DEFAULT_PARTITIONS = 10           # transaction.state.log.num.partitions (Kafka's 50)
DEFAULT_REPLICATION_FACTOR = 3    # transaction.state.log.replication.factor, capped at the live brokers
TOPIC_CONFIGS = {"cleanup.policy": "compact"}


class TxnStore:
    """The `__transaction_state` partitions this broker leads, read into the machine; `write`
    makes one state durable (acks=all) and applies it."""

    def __init__(self, state: Any, machine: TxnMachine, *, partitions: int = DEFAULT_PARTITIONS,
                 replication_factor: int = DEFAULT_REPLICATION_FACTOR, fsync: bool = True,
                 write_timeout_ms: int = 5000, on_event: Callable[[str, dict], None] | None = None,
                 on_loaded: Callable[[int], None] | None = None) -> None:
        self.state = state
        self.machine = machine
        self.partitions = partitions
        self.replication_factor = replication_factor
        self._fsync = fsync
        self._timeout_s = write_timeout_ms / 1000
        self._emit = on_event or (lambda kind, detail: None)
        self._on_loaded = on_loaded or (lambda index: None)
        self._epochs: dict[int, int] = {}   # partition -> leader epoch it was loaded at
        self.refused: set[int] = set()   # led here, not loaded: a file of it held (retry_unopened)
        self._ids: dict[int, set[str]] = {}  # partition -> transactional ids read or written there
        self._unsynced: set[int] = set()     # partitions written since their last fsync

    # ---- where a transactional id lives --------------------------------------------------------
    def topic(self):
        return self.state.coordinator.topic(TXN_TOPIC)

    def partition_for(self, tid: str) -> int:
        return key_partition(self.state, TXN_TOPIC, tid, self.partitions)

    def coordinator_for(self, tid: str) -> int | None:
        """The leader of the id's partition (-1 while it has none); None without the topic."""
        return key_coordinator(self.state, TXN_TOPIC, tid)

    def check(self, tid: str) -> int:
        """NONE when this broker coordinates the id; NOT_COORDINATOR or COORDINATOR_LOAD_IN_PROGRESS."""
        index = self.partition_for(tid)
        if index in self._epochs:
            return NONE
        leader = self.state.leaders.get((TXN_TOPIC, index))
        return COORDINATOR_LOAD_IN_PROGRESS if leader is not None and leader[0] == self.state.node_id \
            else NOT_COORDINATOR

    def coordinator_epoch(self, tid: str) -> int:
        return self._epochs.get(self.partition_for(tid), -1)

    def still_leads(self, tid: str, epoch: int) -> bool:
        return self._epochs.get(self.partition_for(tid)) == epoch

    async def ensure_topic(self) -> bool:
        return await ensure_topic(self.state, TXN_TOPIC, self.partitions, self.replication_factor,
                                  TOPIC_CONFIGS, self._emit, "transaction coordinator")

    # ---- leadership ----------------------------------------------------------------------------
    def on_metadata(self) -> None:
        led = led_partitions(self.state, TXN_TOPIC)
        self.refused &= set(led)
        for index in [i for i in self._epochs if self._epochs[i] != led.get(i)]:
            self._unload(index)
        for index, epoch in sorted(led.items()):
            if index not in self._epochs:
                self._load(index, epoch)

    def _load(self, index: int, epoch: int) -> None:
        try:
            records = list(read_records(self.state.partitions[(TXN_TOPIC, index)]))
        except PermissionError as e:   # Windows: a file of it held; loaded once let go (retry_unopened)
            refused_load(self.refused, TXN_TOPIC, index, e,
                         "its transactional ids are answered COORDINATOR_LOAD_IN_PROGRESS")
            return
        self.refused.discard(index)
        ids: set[str] = set()
        for key, value in records:
            try:
                tid = decode_key(key)
                if tid is None:
                    continue
                self.machine.load(None if value is None else decode_value(tid, value), tid)
                ids.add(tid)
            except (ValueError, IndexError, UnicodeDecodeError, DecodeError, struct.error) as e:
                log.warning("unreadable record in %s-%d skipped: %s", TXN_TOPIC, index, e)
        self._ids[index] = {t for t in ids if self.machine.get(t) is not None}
        self._epochs[index] = epoch
        log.info("%s-%d loaded: %d transactional id(s)", TXN_TOPIC, index, len(self._ids[index]))
        self._on_loaded(index)

    def _unload(self, index: int) -> None:
        self._epochs.pop(index, None)
        gone = self._ids.pop(index, set())
        self.machine.unload(gone)
        log.info("%s-%d no longer led here: %d transactional id(s) unloaded", TXN_TOPIC, index, len(gone))

    def sync(self) -> None:
        """fsync the partitions written since the last call (when fsync is on): one fsync per
        partition and second at most, however many transactions ran."""
        unsynced, self._unsynced = self._unsynced, set()
        if not self._fsync:
            return
        for index in sorted(unsynced):
            plog = self.state.partitions.get((TXN_TOPIC, index))
            if plog is not None and plog.opened:
                try:
                    plog.housekeeping.sync()
                except OSError as e:   # retried with the next write's tick
                    log.warning("%s-%d not fsynced: %s", TXN_TOPIC, index, e)
                    self._unsynced.add(index)

    def ids_in(self, index: int) -> set[str]:
        return set(self._ids.get(index, ()))

    # ---- writing -------------------------------------------------------------------------------
    def write(self, meta: TxnMetadata) -> int | Coroutine[Any, Any, int]:
        """Make `meta` durable on the ISR, then apply it to the machine (a Dead state is a
        tombstone): NONE, or the error the coordinator's client gets; a coroutine giving it when
        the write must wait for followers (a replicated partition), so an unreplicated one is
        answered without a pass of the event loop. As in Kafka, a write is durable once the ISR
        has it (the operating system holds it: a killed broker loses nothing), not fsynced on the
        request path; `sync()` (the coordinator's one-second tick) fsyncs what was written since,
        so a power loss can cost at most that second, as it can for records."""
        tid = meta.transactional_id
        code = self.check(tid)
        if code != NONE:
            return code
        index = self.partition_for(tid)
        key = (TXN_TOPIC, index)
        epoch = self._epochs[index]
        code = self.state.replicas.check_produce(key, -1)
        if code != NONE:
            return COORDINATOR_ERRORS.get(code, code)
        self.machine.begin(meta)
        # known to the partition from now on: a leadership change while the write waits unloads
        # it (its pending write too), a first write of the id included
        self._ids.setdefault(index, set()).add(tid)
        value = None if meta.state == DEAD else encode_value(meta)
        try:
            last = append_records(self.state, key, [(encode_key(tid), value)], False)
        except OSError as e:
            log.warning("%s-%d: state of %r not written: %s", TXN_TOPIC, index, tid, e)
            return self._settle(meta, index, epoch, NOT_COORDINATOR)
        self._unsynced.add(index)
        code = self.state.replicas.acked(key, last)
        if code is None:
            return self._wait_for_isr(meta, index, epoch, last)
        return self._settle(meta, index, epoch, code)

    async def _wait_for_isr(self, meta: TxnMetadata, index: int, epoch: int, last: int) -> int:
        code = NOT_COORDINATOR   # if cancelled: the write is settled as failed
        try:
            code = await self.state.replicas.wait_for_replicas((TXN_TOPIC, index), last, self._timeout_s)
        finally:
            answer = self._settle(meta, index, epoch, code)
        return answer

    def _settle(self, meta: TxnMetadata, index: int, epoch: int, code: int) -> int:
        """Apply a written state (code NONE) or drop it (an error) unless leadership moved
        meanwhile (then the new leader has it: NOT_COORDINATOR)."""
        if self._epochs.get(index) != epoch:
            self.machine.applied(meta, False)   # its pending mark (if still this write's) goes
            return COORDINATOR_ERRORS.get(code, code) if code != NONE else NOT_COORDINATOR
        ok = code == NONE
        self.machine.applied(meta, ok)
        if ok and meta.state == DEAD:
            self._ids.setdefault(index, set()).discard(meta.transactional_id)
        return COORDINATOR_ERRORS.get(code, code)
