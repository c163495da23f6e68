"""The transaction coordinator's state machine, as Kafka's TransactionCoordinator decides: what
InitProducerId, AddPartitionsToTxn, AddOffsetsToTxn and EndTxn answer and which new state of a
transactional id must become durable first. Pure: the clock is injected, nothing is written here;
the store (store.py) makes a decided state durable and then calls `applied`."""

from __future__ import annotations

import re
import time
from typing import Callable, Iterable, NamedTuple

from sandbox.protocol.errors import (
    CONCURRENT_TRANSACTIONS, INVALID_PRODUCER_EPOCH, INVALID_PRODUCER_ID_MAPPING, INVALID_REQUEST,
    INVALID_TRANSACTION_TIMEOUT, INVALID_TXN_STATE, NONE, PRODUCER_FENCED, TRANSACTION_ABORTABLE,
    TRANSACTIONAL_ID_NOT_FOUND,
)

from .records import (
    COMPLETE_ABORT, COMPLETE_COMMIT, DEAD, EMPTY, NO_EPOCH, NO_PRODUCER_ID, ONGOING, PREPARE_ABORT,
    PREPARE_COMMIT, STATE_NAMES, TxnMetadata,
)

DEFAULT_MAX_TIMEOUT_MS = 900_000              # transaction.max.timeout.ms
DEFAULT_EXPIRATION_MS = 7 * 24 * 3600 * 1000  # transactional.id.expiration.ms
MAX_EPOCH = 32767                             # Short.MaxValue
Partition = tuple[str, int]


class Decision(NamedTuple):
    """An answer: `error` for the client and, when `write` is set, the state that must be durable
    (then `applied`) before answering. A Prepare* write is followed by the markers and Complete*."""
    error: int
    write: TxnMetadata | None = None
    producer_id: int = NO_PRODUCER_ID
    producer_epoch: int = NO_EPOCH


def epoch_exhausted(epoch: int) -> bool:
    """Kafka keeps the last epoch (32767) for fencing, so 32766 is the last one handed out."""
    return epoch >= MAX_EPOCH - 1


def for_version(error: int, version: int, fenced_from: int) -> int:
    """PRODUCER_FENCED is INVALID_PRODUCER_EPOCH for request versions before `fenced_from` (KIP-588)."""
    return INVALID_PRODUCER_EPOCH if error == PRODUCER_FENCED and version < fenced_from else error


class TxnMachine:
    def __init__(self, *, clock: Callable[[], float] = time.time, max_timeout_ms: int = DEFAULT_MAX_TIMEOUT_MS,
                 expiration_ms: int = DEFAULT_EXPIRATION_MS) -> None:
        self._clock = clock
        self.max_timeout_ms = max_timeout_ms
        self.expiration_ms = expiration_ms
        self.txns: dict[str, TxnMetadata] = {}
        self.pending: dict[str, TxnMetadata] = {}   # a state being made durable

    def now_ms(self) -> int:
        return int(self._clock() * 1000)

    # ---- what the store tells the machine ------------------------------------------------------
    def load(self, meta: TxnMetadata | None, transactional_id: str) -> None:
        """A record read back from the log (None: a tombstone)."""
        if meta is None or meta.state == DEAD:
            self.txns.pop(transactional_id, None)
        else:
            old = self.txns.get(transactional_id)
            self.txns[transactional_id] = meta.but(last_producer_epoch=old.last_producer_epoch) if (
                old is not None and old.producer_id == meta.producer_id) else meta

    def unload(self, ids: Iterable[str]) -> None:
        for tid in list(ids):
            self.txns.pop(tid, None)
            self.pending.pop(tid, None)

    def begin(self, meta: TxnMetadata) -> None:
        self.pending[meta.transactional_id] = meta

    def applied(self, meta: TxnMetadata, ok: bool) -> None:
        """The write of `meta` is durable (ok) or failed (the old state stays)."""
        if self.pending.get(meta.transactional_id) is meta:
            del self.pending[meta.transactional_id]
        if ok:
            if meta.state == DEAD:
                self.txns.pop(meta.transactional_id, None)
            else:
                self.txns[meta.transactional_id] = meta

    def get(self, transactional_id: str) -> TxnMetadata | None:
        return self.txns.get(transactional_id)

    # ---- requests ------------------------------------------------------------------------------
    def init_producer_id(self, tid: str, timeout_ms: int, fresh_pid: int, producer_id: int = NO_PRODUCER_ID,
                         producer_epoch: int = NO_EPOCH) -> Decision:
        """InitProducerId with a transactional id; `fresh_pid` is used if a new producer id is due."""
        if not tid:
            return Decision(INVALID_REQUEST)
        if timeout_ms <= 0 or timeout_ms > self.max_timeout_ms:
            return Decision(INVALID_TRANSACTION_TIMEOUT)
        if tid in self.pending:
            return Decision(CONCURRENT_TRANSACTIONS)
        now = self.now_ms()
        meta = self.txns.get(tid) or TxnMetadata(tid, fresh_pid, NO_EPOCH, timeout_ms, EMPTY, last_update_ms=now)
        expected = (producer_id, producer_epoch) if producer_id != NO_PRODUCER_ID else None
        if expected is not None and not (
                meta.producer_epoch == NO_EPOCH or producer_id == meta.producer_id
                or (producer_id == meta.previous_producer_id and epoch_exhausted(producer_epoch))):
            return Decision(PRODUCER_FENCED)
        if meta.state in (PREPARE_COMMIT, PREPARE_ABORT):
            return Decision(CONCURRENT_TRANSACTIONS)
        if meta.state == ONGOING:
            # the open transaction is aborted under a bumped epoch (the old producer is fenced) and
            # the caller retries: its retry bumps the epoch again (or rotates the id when exhausted)
            return Decision(CONCURRENT_TRANSACTIONS, self._abort(meta, now, fence=True))
        if meta.state not in (EMPTY, COMPLETE_COMMIT, COMPLETE_ABORT):
            return Decision(CONCURRENT_TRANSACTIONS)
        if epoch_exhausted(meta.producer_epoch) and (expected is None or expected[1] == meta.producer_epoch):
            new = meta.but(producer_id=fresh_pid, producer_epoch=0, previous_producer_id=meta.producer_id,
                           last_producer_epoch=meta.producer_epoch if expected else NO_EPOCH)
        else:
            if expected is None or meta.producer_epoch == NO_EPOCH:
                epoch, last = meta.producer_epoch + 1, (NO_EPOCH if expected is None else meta.producer_epoch)
            elif expected[1] == meta.producer_epoch:
                epoch, last = meta.producer_epoch + 1, meta.producer_epoch
            elif expected[1] == meta.last_producer_epoch:   # a retry whose answer was lost
                return Decision(NONE, None, meta.producer_id, meta.producer_epoch)
            else:
                return Decision(PRODUCER_FENCED)
            new = meta.but(producer_epoch=epoch, last_producer_epoch=last)
        new = new.but(timeout_ms=timeout_ms, state=EMPTY, partitions=frozenset(), last_update_ms=now, start_ms=-1)
        return Decision(NONE, new, new.producer_id, new.producer_epoch)

    def _check_producer(self, tid: str, producer_id: int, producer_epoch: int, *,
                        growing_ok: bool = False) -> tuple[int, TxnMetadata | None]:
        """The producer's durable transaction, or why not: unknown id, fenced epoch, or busy
        (ending, or a state write in flight; growing_ok lets a write that keeps it open pass)."""
        meta = self.txns.get(tid)
        if meta is None or meta.producer_id != producer_id:
            return INVALID_PRODUCER_ID_MAPPING, None
        if meta.producer_epoch != producer_epoch:
            return PRODUCER_FENCED, None
        writing = self.pending.get(tid)
        if meta.state in (PREPARE_COMMIT, PREPARE_ABORT) or (
                writing is not None and not (growing_ok and writing.state == ONGOING)):
            return CONCURRENT_TRANSACTIONS, None
        return NONE, meta

    def add_partitions(self, tid: str, producer_id: int, producer_epoch: int,
                       partitions: Iterable[Partition]) -> Decision:
        """AddPartitionsToTxn (and AddOffsetsToTxn with the group's offsets partition)."""
        if not tid:
            return Decision(INVALID_REQUEST)
        parts = frozenset((t, int(p)) for t, p in partitions)
        error, meta = self._check_producer(tid, producer_id, producer_epoch)
        if meta is None:
            return Decision(error)
        if meta.state == ONGOING and parts <= meta.partitions:
            return Decision(NONE)
        if meta.state not in (EMPTY, ONGOING, COMPLETE_COMMIT, COMPLETE_ABORT):
            return Decision(INVALID_TXN_STATE)
        now = self.now_ms()
        start = meta.start_ms if meta.state == ONGOING else now
        base = meta.partitions if meta.state == ONGOING else frozenset()
        return Decision(NONE, meta.but(state=ONGOING, partitions=base | parts, last_update_ms=now, start_ms=start))

    def verify(self, tid: str, producer_id: int, producer_epoch: int,
               partitions: Iterable[Partition]) -> tuple[int, dict[Partition, int]]:
        """AddPartitionsToTxn v4+ verify_only (a partition leader asking before a transactional
        append, KIP-890): every partition's error, or one error for all."""
        # as Kafka: a state write in flight that keeps the transaction open (partitions being
        # added) does not matter, the partitions already durable in it are verified; a transaction
        # ending (Prepare*, durable or being written) answers CONCURRENT_TRANSACTIONS, which the
        # producer retries (NOT_ENOUGH_REPLICAS) and then finds the partition outside any
        # transaction. (Refusing any in-flight write aborted librdkafka's transactions whenever a
        # Produce crossed its second AddPartitionsToTxn.)
        error, meta = self._check_producer(tid, producer_id, producer_epoch, growing_ok=True)
        if meta is None:
            return error, {}
        return NONE, {(t, int(p)): NONE if (t, int(p)) in meta.partitions and meta.state == ONGOING
                      else TRANSACTION_ABORTABLE for t, p in partitions}

    def end_txn(self, tid: str, producer_id: int, producer_epoch: int, commit: bool) -> Decision:
        """EndTxn from a client: Ongoing -> PrepareCommit / PrepareAbort; a retry of a completed
        one is answered NONE, of one being completed CONCURRENT_TRANSACTIONS."""
        if not tid:
            return Decision(INVALID_REQUEST)
        meta = self.txns.get(tid)
        if meta is None or meta.producer_id != producer_id:
            return Decision(INVALID_PRODUCER_ID_MAPPING)
        if meta.producer_epoch != producer_epoch:
            return Decision(PRODUCER_FENCED)
        if tid in self.pending:
            return Decision(CONCURRENT_TRANSACTIONS)
        state = meta.state
        if state == ONGOING:
            now = self.now_ms()
            return Decision(NONE, meta.but(state=PREPARE_COMMIT if commit else PREPARE_ABORT, last_update_ms=now))
        done, preparing = (COMPLETE_COMMIT, PREPARE_COMMIT) if commit else (COMPLETE_ABORT, PREPARE_ABORT)
        if state == done:
            return Decision(NONE)
        if state == preparing:
            return Decision(CONCURRENT_TRANSACTIONS)
        return Decision(INVALID_TXN_STATE)

    # ---- the coordinator's own transitions ---------------------------------------------------
    def _abort(self, meta: TxnMetadata, now: int, *, fence: bool) -> TxnMetadata:
        epoch = meta.producer_epoch
        if fence and not epoch_exhausted(epoch):
            epoch += 1
        return meta.but(state=PREPARE_ABORT, producer_epoch=epoch, last_update_ms=now)

    def completed(self, meta: TxnMetadata) -> TxnMetadata:
        """After the markers of a Prepare* state: the Complete* state to write."""
        state = COMPLETE_COMMIT if meta.state == PREPARE_COMMIT else COMPLETE_ABORT
        return meta.but(state=state, partitions=frozenset(), last_update_ms=self.now_ms())

    def timed_out(self) -> list[str]:
        """The ids of Ongoing transactions past transaction.timeout.ms (abort_timed_out decides
        each one again at the moment it is written)."""
        now = self.now_ms()
        return [tid for tid, m in sorted(self.txns.items()) if self._timed_out(tid, m, now)]

    def abort_timed_out(self, tid: str) -> TxnMetadata | None:
        """The PrepareAbort under a bumped epoch (the producer is fenced) of `tid` if it is still
        an Ongoing transaction past its timeout with no write pending, decided now: housekeeping
        writes one id after another, each waiting for the ISR, and an EndTxn answered meanwhile
        must not be overwritten by an abort decided before it (found by review: a commit
        acknowledged to the producer ended aborted, its markers half commit, half abort). As
        Kafka's abortTimedOutTransactions re-reads each id under its lock."""
        m, now = self.txns.get(tid), self.now_ms()
        return self._abort(m, now, fence=True) if m is not None and self._timed_out(tid, m, now) else None

    def _timed_out(self, tid: str, m: TxnMetadata, now: int) -> bool:
        return m.state == ONGOING and tid not in self.pending and m.start_ms + m.timeout_ms < now

    def expired(self) -> list[str]:
        """The ids idle past transactional.id.expiration.ms (expire decides each one again)."""
        now = self.now_ms()
        return [tid for tid, m in sorted(self.txns.items()) if self._expired(tid, m, now)]

    def expire(self, tid: str) -> TxnMetadata | None:
        """The Dead state (written as a tombstone) of `tid` if it is still idle past
        transactional.id.expiration.ms with no write pending, decided now: an InitProducerId
        answered since must keep the id (Kafka removes it only if nothing changed meanwhile)."""
        m, now = self.txns.get(tid), self.now_ms()
        return m.but(state=DEAD, last_update_ms=now) if m is not None and self._expired(tid, m, now) else None

    def _expired(self, tid: str, m: TxnMetadata, now: int) -> bool:
        return (m.state in (EMPTY, COMPLETE_COMMIT, COMPLETE_ABORT) and tid not in self.pending
                and m.last_update_ms + self.expiration_ms <= now)

    def unfinished(self) -> list[TxnMetadata]:
        """Transactions in PrepareCommit / PrepareAbort (their markers are still to be written)."""
        return [m for tid, m in sorted(self.txns.items())
                if m.state in (PREPARE_COMMIT, PREPARE_ABORT) and tid not in self.pending]

    # ---- reads ---------------------------------------------------------------------------------
    def describe(self, tid: str) -> tuple[int, TxnMetadata | None]:
        meta = self.txns.get(tid)
        return (NONE, meta) if meta is not None else (TRANSACTIONAL_ID_NOT_FOUND, None)

    def list(self, states: Iterable[str] = (), producer_ids: Iterable[int] = (), duration_ms: int = -1,
             pattern: str | None = None) -> tuple[list[TxnMetadata], list[str]]:
        """ListTransactions' filters: (matching transactions, state names not known). `pattern`
        is a regular expression the whole id must match (re.error when it is not one)."""
        names = set(states)
        unknown = sorted(n for n in names if n not in STATE_NAMES)
        wanted = {STATE_NAMES.index(n) for n in names if n in STATE_NAMES}
        pids = set(producer_ids)
        rx = re.compile(pattern) if pattern else None
        now = self.now_ms()
        out = [m for m in self.txns.values()
               if (not names or m.state in wanted) and (not pids or m.producer_id in pids)
               and (duration_ms < 0 or now - m.start_ms > duration_ms)
               and (rx is None or rx.fullmatch(m.transactional_id))]
        if names and not wanted:
            out = []
        return sorted(out, key=lambda m: m.transactional_id), unknown

