"""The broker's copy of the cluster metadata: a MetadataMachine that follows the coordinator's
`__cluster_metadata` log over Fetch, reloads from offset 0 when that log was replaced or fell
behind, announces what it applied, and lets a writer wait until its change shows."""
from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any, Callable

from sandbox.protocol import build, request_class
from sandbox.protocol.errors import INCONSISTENT_CLUSTER_ID, OFFSET_OUT_OF_RANGE
from sandbox.protocol.records import RecordsError, decode_batches

from .feed import METADATA_PARTITION, METADATA_TOPIC, SNAPSHOT_TYPE, decode_record
from .machine import MetadataMachine, Record
from .model import CoordinatorError
from .transport import RETRY_BACKOFF_MAX_S, CoordinatorConnection, check

log = logging.getLogger("sandbox.coordinator.client")

V_FETCH, V_LIST_OFFSETS = 12, 7   # the versions our coordinator serves (see coordinator/handlers)

RecordListener = Callable[[list[Record]], None]


class MetadataMirror:
    """`machine` answers reads at once (also while the coordinator is away). Fetches go over
    `fetcher` (long polls); the log end is asked for over `control`."""

    def __init__(self, control: CoordinatorConnection, fetcher: CoordinatorConnection, *,
                 request_timeout: float, catch_up_timeout: float, fetch_max_wait_ms: int) -> None:
        self._control, self._fetcher = control, fetcher
        self.request_timeout = request_timeout
        self.catch_up_timeout = catch_up_timeout
        self.fetch_max_wait_ms = fetch_max_wait_ms
        self.machine = MetadataMachine()
        self._resync: MetadataMachine | None = None  # rebuilding from offset 0 after a reset
        self.cluster_changed_at: float | None = None  # monotonic time the coordinator's journal was replaced
        self.replica_id = -1   # the following broker's id, once it has one
        self._listeners: list[RecordListener] = []
        self._progress = asyncio.Event()

    @property
    def metadata_offset(self) -> int:
        return self.machine.metadata_offset

    def subscribe(self, callback: RecordListener) -> Callable[[], None]:
        """Call `callback(records)` after each change applied; returns an unsubscribe. A
        snapshot arrives as one `{"type": "snapshot", ...}` record."""
        self._listeners.append(callback)
        return lambda: self._listeners.remove(callback) if callback in self._listeners else None

    async def wait_for_offset(self, offset: int, timeout: float) -> bool:
        """Wait until the mirror has applied every record before `offset`."""
        deadline = time.monotonic() + timeout
        while self.machine.metadata_offset < offset:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._progress.wait(), remaining)
        return True

    async def latest_offset(self) -> int:
        """The end of the coordinator's metadata log."""
        body = build(request_class(2, V_LIST_OFFSETS), {
            "replica_id": -1, "isolation_level": 0,
            "topics": [{"name": METADATA_TOPIC, "partitions": [{
                "partition_index": METADATA_PARTITION, "timestamp": -1}]}]})
        resp = await self._control.request(body, self.request_timeout)
        part = resp.topics[0].partitions[0]
        check(part.error_code, None, "Reading the metadata offset")
        return int(part.offset)

    async def journal_still_followed(self) -> bool:
        """Ask the coordinator (an empty Fetch on the control connection, applied nowhere) whether
        it still serves the journal this mirror follows. A broker whose mirror has not yet seen a
        replacement (it was paused, or its long poll has not come back) learns of it here: the
        change is then noted as the follow loop notes it. True when the coordinator cannot be
        asked (no change seen is no change to act on; the caller acts only on what the mirror
        holds)."""
        asked = self._current().cluster_id
        try:
            resp = await self._control.request(self._fetch_request(asked, 0, 1, []), self.request_timeout)
        except CoordinatorError:
            return True
        if int(resp.error_code) != INCONSISTENT_CLUSTER_ID:
            return True
        if self._resync is None and self.machine.cluster_id == asked:
            # not seen by the follow loop meanwhile (it reloads the metadata when it asks next)
            log.warning("the coordinator now serves another cluster (its journal was replaced)")
            self.cluster_changed_at = time.monotonic()
        return False

    async def catch_up(self) -> None:
        """After a write: wait (bounded) until the mirror shows it."""
        try:
            target = await self.latest_offset()
        except CoordinatorError:
            return
        if not await self.wait_for_offset(target, self.catch_up_timeout):
            log.warning("metadata mirror still at %d, coordinator at %d after %.1f s",
                        self.metadata_offset, target, self.catch_up_timeout)

    async def load(self) -> None:
        """Fetch until the mirror holds everything the coordinator has now (a first full view)."""
        hw = await self.latest_offset()
        while self._current().metadata_offset < hw or self._resync is not None:
            await self.fetch_once(0)

    def _current(self) -> MetadataMachine:
        return self._resync if self._resync is not None else self.machine

    async def follow(self) -> None:
        """Long-poll the metadata log for ever, backing off while the coordinator is away."""
        delay = 0.1
        while True:
            try:
                await self.fetch_once(self.fetch_max_wait_ms)
                delay = 0.1
            except CoordinatorError:
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_BACKOFF_MAX_S)
            except Exception:
                log.exception("following the coordinator's metadata failed")
                await asyncio.sleep(1.0)

    def _fetch_request(self, cluster_id: str | None, max_wait_ms: int, max_bytes: int, topics: list) -> Any:
        """A Fetch of the metadata log as this broker follows it: the history id (a coordinator
        serving another answers INCONSISTENT_CLUSTER_ID) and its replica id."""
        return build(request_class(1, V_FETCH), {
            "cluster_id": cluster_id, "replica_id": self.replica_id, "max_wait": max_wait_ms,
            "min_bytes": 1, "max_bytes": max_bytes, "isolation_level": 0, "session_id": 0,
            "session_epoch": -1, "topics": topics, "forgotten_topics_data": [], "rack_id": ""})

    async def fetch_once(self, max_wait_ms: int) -> None:
        machine = self._current()
        body = self._fetch_request(machine.cluster_id, max_wait_ms, 16 << 20, [
            {"topic": METADATA_TOPIC, "partitions": [{
                "partition": METADATA_PARTITION, "fetch_offset": machine.metadata_offset,
                "partition_max_bytes": 8 << 20}]}])
        resp = await self._fetcher.request(body, max_wait_ms / 1000 + self.request_timeout)
        if int(resp.error_code) == INCONSISTENT_CLUSTER_ID:
            log.warning("the coordinator now serves another cluster (its journal was replaced):"
                        " reloading the metadata")
            self._resync = MetadataMachine()
            self.cluster_changed_at = time.monotonic()
            return
        check(resp.error_code, None, "Fetching metadata")
        part = resp.responses[0].partitions[0]
        if int(part.error_code) == OFFSET_OUT_OF_RANGE:
            log.warning("the coordinator's metadata is behind this broker's (offset %d > %d): "
                        "reloading it", machine.metadata_offset, part.high_watermark)
            self._resync = MetadataMachine()
            return
        check(part.error_code, None, "Fetching metadata")
        if part.records:
            try:
                self._apply(decode_batches(bytes(part.records)), int(part.high_watermark))
            except (RecordsError, ValueError, KeyError, TypeError, IndexError) as e:
                log.warning("metadata record did not apply (%r): reloading the metadata", e)
                self._resync = MetadataMachine()

    def _apply(self, records: Any, high_watermark: int) -> None:
        machine = self._current()
        applied: list[Record] = []
        for rec in records:
            if rec.offset < machine.metadata_offset - 1:
                continue
            doc = decode_record(rec.value)
            if doc["type"] == SNAPSHOT_TYPE:
                if rec.offset + 1 < machine.metadata_offset:
                    continue
                machine.restore(doc["state"])
            elif rec.offset == machine.metadata_offset:
                machine.apply(doc)
            else:
                continue
            applied.append(doc)
        if self._resync is not None and machine.metadata_offset >= high_watermark:
            self.machine, self._resync = machine, None
            applied = [{"type": SNAPSHOT_TYPE, "state": machine.state().to_dict()}]
        elif self._resync is not None:
            return
        if applied:
            self._announce(applied)

    def _announce(self, records: list[Record]) -> None:
        progress, self._progress = self._progress, asyncio.Event()
        progress.set()
        for listener in list(self._listeners):
            try:
                listener([dict(r) for r in records])
            except Exception:
                log.exception("metadata listener failed")
