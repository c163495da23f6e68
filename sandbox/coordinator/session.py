"""One broker's session with a remote coordinator: registration (retried at start-up, repeated
when the coordinator forgot us), heartbeats that keep it alive and tell whether the coordinator is
reachable, the lease that says whether this broker may still act as a leader, controlled-shutdown
unregistration, and producer id blocks (which need the session)."""
from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from typing import Callable, Iterable

from sandbox.protocol import build, request_class
from sandbox.protocol.errors import BROKER_ID_NOT_REGISTERED, INVALID_REQUEST, STALE_BROKER_EPOCH

from .model import CoordinatorError
from .transport import RETRY_BACKOFF_MAX_S, CoordinatorConnection, check

log = logging.getLogger("sandbox.coordinator.client")

# The versions we speak to our own coordinator (it serves these; see coordinator/handlers).
V_REGISTER, V_HEARTBEAT, V_UNREGISTER, V_PIDS = 3, 1, 0, 0
_RESESSION = (BROKER_ID_NOT_REGISTERED, STALE_BROKER_EPOCH)


class BrokerSession:
    """Registers broker `broker_id` with its listeners over `control`; `metadata_offset` tells
    each heartbeat how far this broker's mirror has come."""

    def __init__(self, control: CoordinatorConnection, metadata_offset: Callable[[], int], *,
                 request_timeout: float, heartbeat_interval: float, session_timeout: float = 9.0) -> None:
        self._control = control
        # the coordinator fences a broker session_timeout after the last heartbeat it got; that
        # heartbeat was sent no earlier than we sent it, so until sent + session_timeout (kept 10%
        # short) no other broker can have been given our leaderships
        self.session_timeout = session_timeout
        self._lease_until = 0.0
        self.shutting_down = False   # a controlled shutdown was asked for: no registration again
        self._metadata_offset = metadata_offset
        self.request_timeout = request_timeout
        self.heartbeat_interval = heartbeat_interval
        self.incarnation_id = uuid.uuid4()
        self.broker_id: int | None = None
        self.broker_epoch = -1
        self.healthy = False      # the last exchange (registration/heartbeat) succeeded
        self.registered = False
        self._rack: str | None = None
        self._listeners: list[tuple[str, str, int]] = []
        # the ids (model.offline_dir_id) of the partitions whose log this broker cannot open now
        # (a file held by another program): every heartbeat tells the whole set (KIP-858's
        # OfflineLogDirs), so the coordinator moves their leadership within one heartbeat
        self.offline_dirs: Callable[[], Iterable[uuid.UUID]] = tuple

    @property
    def where(self) -> str:
        return f"{self._control.host}:{self._control.port}"

    async def open(self, broker_id: int, listeners: list[tuple[str, str, int]], rack: str | None,
                   deadline: float, timeout: float) -> None:
        """Register, retrying until the coordinator answers (until `deadline`, monotonic)."""
        self.broker_id, self._listeners, self._rack = broker_id, listeners, rack
        delay = 0.05
        while True:
            try:
                await self.register()
                return
            except CoordinatorError as e:
                if time.monotonic() + delay >= deadline:
                    raise CoordinatorError(e.error_code, f"Could not register broker {broker_id} with the "
                                           f"coordinator at {self.where} within {timeout:g} s: {e.message}")
                await asyncio.sleep(delay)
                delay = min(delay * 2, 0.25)  # started together with the coordinator: join it soon

    async def register(self) -> None:
        assert self.broker_id is not None
        if self.shutting_down:
            raise CoordinatorError(BROKER_ID_NOT_REGISTERED, f"broker {self.broker_id} is shutting down")
        body = build(request_class(62, V_REGISTER), {
            "broker_id": self.broker_id, "cluster_id": "", "incarnation_id": self.incarnation_id,
            "listeners": [{"name": name, "host": h, "port": p, "security_protocol": 0}
                          for name, h, p in self._listeners],
            "features": [], "rack": self._rack})
        sent = time.monotonic()
        try:
            resp = await self._control.request(body, self.request_timeout)
            check(resp.error_code, None, f"Registering broker {self.broker_id}")
            self._lease_until = sent + 0.9 * self.session_timeout
        except CoordinatorError:
            self.healthy = False
            raise
        was_registered, self.registered, self.healthy = self.registered, True, True
        self.broker_epoch = int(resp.broker_epoch)
        log.info("broker %d %sregistered with the coordinator at %s (epoch %d)",
                 self.broker_id, "re-" if was_registered else "", self.where, self.broker_epoch)

    async def keep_alive(self) -> None:
        """Heartbeat for ever; register again when the coordinator forgot this broker."""
        delay = self.heartbeat_interval
        while True:
            await asyncio.sleep(delay)
            try:
                if not self.registered:
                    await self.register()
                else:
                    await self._heartbeat()
                if not self.healthy:
                    log.info("coordinator at %s is reachable again", self.where)
                self.healthy = True
                delay = self.heartbeat_interval
            except CoordinatorError as e:
                if e.error_code in _RESESSION:  # e.g. the coordinator restarted: register again
                    self.registered = False
                    delay = 0
                    continue
                if self.healthy:
                    log.warning("lost the coordinator at %s: %s", self.where, e.message)
                self.healthy = False
                delay = min(max(delay * 2, self.heartbeat_interval), RETRY_BACKOFF_MAX_S)
            except Exception:
                log.exception("coordinator heartbeat failed")
                delay = 2.0

    async def _heartbeat(self) -> None:
        body = build(request_class(63, V_HEARTBEAT), {
            "broker_id": self.broker_id, "broker_epoch": self.broker_epoch,
            "current_metadata_offset": self._metadata_offset(), "want_fence": False,
            "want_shut_down": False, "offline_log_dirs": tuple(self.offline_dirs())})
        sent = time.monotonic()
        resp = await self._control.request(body, self.request_timeout)
        check(resp.error_code, None, f"Heartbeat of broker {self.broker_id}")
        if not resp.is_fenced and resp.is_caught_up:
            self._lease_until = sent + 0.9 * self.session_timeout

    def lease_valid(self) -> bool:
        """True while the coordinator cannot have fenced this broker and its metadata was current
        at the last heartbeat: only then may it acknowledge writes as a partition leader."""
        return time.monotonic() < self._lease_until

    async def shut_down(self, timeout: float = 1.0) -> bool:
        """Kafka's controlled shutdown: a heartbeat asking to shut down has the coordinator fence
        this broker and move its leaderships now, while it still serves. It carries this
        session's broker epoch, so a late one cannot fence a newer incarnation. From the moment
        it is sent this broker acknowledges nothing as a leader (the lease ends). Stop the
        heartbeats first: one answered "not registered" would register the broker again. True
        if the coordinator took it."""
        if not self.registered or self.broker_id is None:
            return False
        self.shutting_down = True   # never registered again (a producer-id request would)
        self._lease_until = 0.0
        body = build(request_class(63, V_HEARTBEAT), {
            "broker_id": self.broker_id, "broker_epoch": self.broker_epoch,
            "current_metadata_offset": self._metadata_offset(), "want_fence": False,
            "want_shut_down": True})
        try:
            resp = await self._control.request(body, timeout)
            check(resp.error_code, None, f"Controlled shutdown of broker {self.broker_id}")
        except CoordinatorError as e:
            log.info("controlled shutdown not made (%s): the coordinator fences this broker when it unregisters "
                     "or its session ends", e.message)
            return False
        self.registered = self.healthy = False   # nothing left to unregister
        return bool(resp.should_shut_down)

    async def close(self) -> None:
        """Unregister (best effort, fast): the coordinator fences this broker at once."""
        if self.registered and self.broker_id is not None:
            body = build(request_class(64, V_UNREGISTER), {"broker_id": self.broker_id})
            with contextlib.suppress(CoordinatorError):
                await self._control.request(body, 1.0)
        self.registered = self.healthy = False

    async def allocate_producer_ids(self, count: int) -> int:
        """A durable block of producer ids; returns the first. The coordinator sets the block
        size (1000, as in Kafka); asking for more than one block is refused."""
        if self.broker_id is None:
            raise CoordinatorError(BROKER_ID_NOT_REGISTERED, "call start() first")
        for attempt in range(2):
            body = build(request_class(67, V_PIDS), {"broker_id": self.broker_id,
                                                     "broker_epoch": self.broker_epoch})
            resp = await self._control.request(body, self.request_timeout)
            if int(resp.error_code) in _RESESSION and attempt == 0:
                self.registered = False
                await self.register()
                continue
            check(resp.error_code, None, "Allocating producer ids")
            if count > int(resp.producer_id_len):
                raise CoordinatorError(INVALID_REQUEST, f"asked for {count} producer ids; the "
                                       f"coordinator hands out blocks of {resp.producer_id_len}")
            return int(resp.producer_id_start)
        raise AssertionError("unreachable")
