"""The transaction coordinator of one broker: each request is decided by the machine, the new
state made durable by the store, and a PrepareCommit / PrepareAbort is then completed in the
background (markers to every partition, then CompleteCommit / CompleteAbort). Housekeeping aborts
transactions past their timeout and forgets transactional ids idle past their expiration."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Callable

from sandbox.protocol.errors import NONE

from .machine import DEFAULT_EXPIRATION_MS, DEFAULT_MAX_TIMEOUT_MS, Decision, TxnMachine, epoch_exhausted
from .markers import MarkerSender
from .records import PREPARE_ABORT, PREPARE_COMMIT, TxnMetadata
from .store import TxnStore

log = logging.getLogger("sandbox.broker")


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
        self._completing: dict[str, asyncio.Task] = {}
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
        code = await self._apply(d)
        return (code, d.producer_id, d.producer_epoch) if code == NONE else (code, -1, -1)

    async def add_partitions(self, tid: str, producer_id: int, producer_epoch: int, partitions) -> int:
        code = self.store.check(tid) if tid else NONE
        if code != NONE:
            return code
        return await self._apply(self.machine.add_partitions(tid, producer_id, producer_epoch, partitions))

    def verify(self, tid: str, producer_id: int, producer_epoch: int, partitions) -> tuple[int, dict]:
        code = self.store.check(tid)
        if code != NONE:
            return code, {}
        return self.machine.verify(tid, producer_id, producer_epoch, partitions)

    async def end_txn(self, tid: str, producer_id: int, producer_epoch: int, commit: bool) -> int:
        code = self.store.check(tid) if tid else NONE
        if code != NONE:
            return code
        return await self._apply(self.machine.end_txn(tid, producer_id, producer_epoch, commit))

    async def _apply(self, d: Decision) -> int:
        """Write the decided state (if any); the decision's error once it is durable."""
        if d.write is None:
            return d.error
        code = await self.store.write(d.write)
        if code != NONE:
            return code
        if d.write.state in (PREPARE_COMMIT, PREPARE_ABORT):
            self._complete_later(d.write)
        return d.error

    # ---- completion ----------------------------------------------------------------------------
    def _complete_later(self, meta: TxnMetadata) -> None:
        tid = meta.transactional_id
        task = self._completing.get(tid)
        if (task is not None and not task.done()) or self._closed:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return   # loaded outside a loop (tests): housekeeping completes it
        self._completing[tid] = loop.create_task(self._complete(meta))

    async def _complete(self, meta: TxnMetadata) -> None:
        tid = meta.transactional_id
        epoch = self.store.coordinator_epoch(tid)
        try:
            ok = await self.markers.send(meta.producer_id, meta.producer_epoch, meta.state == PREPARE_COMMIT, epoch,
                                         meta.partitions, lambda: self._still(meta, epoch))
            if not ok or not self._still(meta, epoch):
                return
            code = await self.store.write(self.machine.completed(meta), fsync=False)
            if code != NONE:   # housekeeping tries again
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
        for meta in self.machine.timed_out():
            log.info("transaction %r (producer %d) timed out after %d ms: aborting", meta.transactional_id,
                     meta.producer_id, meta.timeout_ms)
            await self._apply(Decision(NONE, meta))
        for meta in self.machine.expired():
            await self.store.write(meta)
        for meta in self.machine.unfinished():
            self._complete_later(meta)

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
