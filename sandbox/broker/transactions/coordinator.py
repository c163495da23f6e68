"""The transaction coordinator of one broker: each request is decided by the machine, the new
state made durable by the store, and a PrepareCommit / PrepareAbort is then completed in the
background (markers to every partition, then CompleteCommit / CompleteAbort). Housekeeping aborts
transactions past their timeout and forgets transactional ids idle past their expiration."""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import time
from typing import Any, Awaitable, Callable, Coroutine, Union

from sandbox.protocol.errors import CONCURRENT_TRANSACTIONS, NONE

from .machine import DEFAULT_EXPIRATION_MS, DEFAULT_MAX_TIMEOUT_MS, Decision, TxnMachine, epoch_exhausted
from .markers import MarkerSender
from .verifier import TxnVerifier
from .records import PREPARE_ABORT, PREPARE_COMMIT, TxnMetadata
from .store import TxnStore

log = logging.getLogger("sandbox.broker")

COMPLETION_WAIT_S = 1.0   # how long a request waits for the markers of the id's previous transaction
Answer = Union[int, Coroutine[Any, Any, int]]   # an error code, or a coroutine giving it after a wait


# Give the processor up once: os.sched_yield on Linux and macOS; Windows has no such call, and
# time.sleep(0) gives up the rest of the time slice there (Sleep(0)).
yield_cpu: Callable[[], None] = getattr(os, "sched_yield", None) or (lambda: time.sleep(0))


async def settled(answer: int | Awaitable[int]) -> int:
    """The error code of an Answer, awaited if it had to wait."""
    return await answer if inspect.isawaitable(answer) else answer


class TxnCoordinator:
    def __init__(self, state: Any, *, clock: Callable[[], float] = time.time,
                 max_timeout_ms: int = DEFAULT_MAX_TIMEOUT_MS, expiration_ms: int = DEFAULT_EXPIRATION_MS,
                 partitions: int = 10, replication_factor: int = 3, fsync: bool = True,
                 write_timeout_ms: int = 5000, on_event: Callable[[str, dict], None] | None = None) -> None:
        self.state = state
        self.machine = TxnMachine(clock=clock, max_timeout_ms=max_timeout_ms, expiration_ms=expiration_ms)
        self.store = TxnStore(state, self.machine, partitions=partitions, replication_factor=replication_factor,
                              fsync=fsync, write_timeout_ms=write_timeout_ms, on_event=on_event,
                              on_loaded=self._loaded)
        self.markers = MarkerSender(state)
        self.verifier = TxnVerifier(state)   # the partition leader's side of KIP-890 part 1
        self._completing: dict[str, asyncio.Task] = {}
        # Prepare* states whose markers are all written while their Complete* write failed: a
        # retry writes that state only, as Kafka's txnLogAppendRetryQueue retries the append only
        # (before, every partition got another marker each second until the write went through)
        self._markers_written: dict[str, tuple[TxnMetadata, int]] = {}
        try:
            self._loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            self._loop = None
        self._closed = False

    # ---- requests ------------------------------------------------------------------------------
    async def init_producer_id(self, tid: str, timeout_ms: int, producer_id: int = -1,
                               producer_epoch: int = -1) -> tuple[int, int, int]:
        """(error, producer id, epoch) for InitProducerId with a transactional id."""
        if tid:
            code = self.store.check(tid)
            if code != NONE:
                return code, -1, -1
        meta = self.machine.get(tid)
        fresh = -1
        if tid and (meta is None or epoch_exhausted(meta.producer_epoch)):
            fresh = await self.state.next_producer_id()
            code = self.store.check(tid)
            if code != NONE:
                return code, -1, -1
        d = self.machine.init_producer_id(tid, timeout_ms, fresh, producer_id, producer_epoch)
        if self._completing_now(tid, d):
            code = await self._after_completion(tid, lambda: NONE)
            if code != NONE:
                return code, -1, -1
            return await self.init_producer_id(tid, timeout_ms, producer_id, producer_epoch)
        code = await settled(self._apply(d))
        return (code, d.producer_id, d.producer_epoch) if code == NONE else (code, -1, -1)

    def add_partitions(self, tid: str, producer_id: int, producer_epoch: int, partitions,
                       wait: bool = True) -> Answer:
        code = self.store.check(tid) if tid else NONE
        if code != NONE:
            return code
        d = self.machine.add_partitions(tid, producer_id, producer_epoch, partitions)
        if wait and self._completing_now(tid, d):
            return self._after_completion(tid, lambda: self.add_partitions(tid, producer_id, producer_epoch,
                                                                           partitions, wait=False))
        return self._apply(d)

    def verify(self, tid: str, producer_id: int, producer_epoch: int, partitions) -> tuple[int, dict]:
        code = self.store.check(tid)
        if code != NONE:
            return code, {}
        return self.machine.verify(tid, producer_id, producer_epoch, partitions)

    def end_txn(self, tid: str, producer_id: int, producer_epoch: int, commit: bool, wait: bool = True) -> Answer:
        code = self.store.check(tid) if tid else NONE
        if code != NONE:
            return code
        d = self.machine.end_txn(tid, producer_id, producer_epoch, commit)
        if wait and self._completing_now(tid, d):
            return self._after_completion(tid, lambda: self.end_txn(tid, producer_id, producer_epoch, commit,
                                                                    wait=False))
        return self._apply(d)

    def _apply(self, d: Decision) -> Answer:
        """Write the decided state (if any); the decision's error once it is durable (a
        coroutine giving it when the write waits for followers)."""
        if d.write is None:
            return d.error
        code = self.store.write(d.write)
        if inspect.iscoroutine(code):
            return self._applied_later(d, code)
        return self._applied(d, code)

    async def _applied_later(self, d: Decision, write: Coroutine[Any, Any, int]) -> int:
        return self._applied(d, await write)

    def _applied(self, d: Decision, code: int) -> int:
        if code != NONE:
            return code
        if d.write.state in (PREPARE_COMMIT, PREPARE_ABORT):
            self._complete_later(d.write)
        return d.error

    def _completing_now(self, tid: str, d: Decision) -> bool:
        """True when `d` was refused only because this broker is still writing the markers of
        the id's previous transaction (a producer that begins the next one at once): the request
        is better answered once that is done than refused and retried after the client's backoff."""
        task = self._completing.get(tid)
        return d.error == CONCURRENT_TRANSACTIONS and d.write is None and task is not None and not task.done()

    async def _after_completion(self, tid: str, again: Callable[[], Answer]) -> int:
        task = self._completing.get(tid)
        if task is not None:
            await asyncio.wait([task], timeout=COMPLETION_WAIT_S)
            if not task.done():
                return CONCURRENT_TRANSACTIONS   # markers slow to write (a leader away): retry later
        return await settled(again())

    # ---- completion ----------------------------------------------------------------------------
    def _complete_later(self, meta: TxnMetadata) -> None:
        tid = meta.transactional_id
        task = self._completing.get(tid)
        if (task is not None and not task.done()) or self._closed:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:   # answered outside the loop (in-process tests): it runs on the broker's
            loop = self._loop
            if loop is None or loop.is_closed():
                return   # made outside any loop (unit tests): housekeeping completes it
        self._completing[tid] = loop.create_task(self._complete(meta))

    async def _complete(self, meta: TxnMetadata) -> None:
        # The EndTxn reply sent just before this woke the producer's thread, which the kernel
        # likes to place on this very processor; without this yield it waits until the markers
        # below are written (0.2-0.3 ms here), and its commit_transaction() returns that much
        # later. Measured: EndTxn reply to commit_transaction() returning, median 0.25-0.32 ms
        # without, 0.09 ms with (docs/performance.md, session 34).
        yield_cpu()
        tid = meta.transactional_id
        epoch = self.store.coordinator_epoch(tid)
        try:
            if self._markers_written.get(tid) != (meta, epoch):
                self._markers_written.pop(tid, None)
                ok = await self.markers.send(meta.producer_id, meta.producer_epoch, meta.state == PREPARE_COMMIT,
                                             epoch, meta.partitions, lambda: self._still(meta, epoch))
                if not ok or not self._still(meta, epoch):
                    return
                self._markers_written[tid] = (meta, epoch)
            elif not self._still(meta, epoch):
                self._markers_written.pop(tid, None)
                return
            code = await settled(self.store.write(self.machine.completed(meta)))
            if code == NONE:
                self._markers_written.pop(tid, None)
            else:   # housekeeping tries again: the write only
                log.warning("transaction %r: completion not written (error %d)", tid, code)
        except asyncio.CancelledError:
            raise
        except Exception:   # noqa: BLE001 - housekeeping retries an unfinished transaction
            log.exception("transaction %r: completion failed", tid)
        finally:
            if self._completing.get(tid) is asyncio.current_task():
                del self._completing[tid]

    def _still(self, meta: TxnMetadata, epoch: int) -> bool:
        return (not self._closed and self.store.still_leads(meta.transactional_id, epoch)
                and self.machine.get(meta.transactional_id) == meta)

    def _loaded(self, index: int) -> None:
        """A partition just read back: transactions found in PrepareCommit / PrepareAbort are
        completed (their markers sent again); Ongoing ones time out as usual."""
        for tid in sorted(self.store.ids_in(index)):
            meta = self.machine.get(tid)
            if meta is not None and meta.state in (PREPARE_COMMIT, PREPARE_ABORT):
                self._complete_later(meta)

    # ---- housekeeping --------------------------------------------------------------------------
    async def tick(self) -> None:
        """Abort transactions past transaction.timeout.ms (epoch bumped: the producer is fenced),
        write tombstones for ids idle past transactional.id.expiration.ms, and complete what an
        earlier attempt left in Prepare*."""
        # each decided again just before its write: the writes before it waited for the ISR,
        # and the producers' own requests were answered meanwhile
        for tid in self.machine.timed_out():
            meta = self.machine.abort_timed_out(tid)
            if meta is None:
                continue
            log.info("transaction %r (producer %d) timed out after %d ms: aborting", tid, meta.producer_id,
                     meta.timeout_ms)
            await settled(self._apply(Decision(NONE, meta)))
        for tid in self.machine.expired():
            meta = self.machine.expire(tid)
            if meta is not None:
                await settled(self.store.write(meta))
        for meta in self.machine.unfinished():
            self._complete_later(meta)
        # a completion waiting to be written that this broker no longer leads, or that another
        # state replaced (its partition moved away, the id expired): nothing to retry here
        for tid, (meta, epoch) in list(self._markers_written.items()):
            if tid not in self._completing and not self._still(meta, epoch):
                del self._markers_written[tid]
        self.store.sync()

    async def ensure_topic(self) -> bool:
        return await self.store.ensure_topic()

    def on_metadata(self) -> None:
        self.store.on_metadata()

    def close(self) -> None:
        self._closed = True
        for task in self._completing.values():
            task.cancel()
        self._completing.clear()
        self.markers.close()
        self.verifier.close()
