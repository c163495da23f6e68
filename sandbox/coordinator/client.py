"""How a broker talks to the coordinator: RemoteCoordinator (over the Kafka protocol, reads from
a local mirror that follows `__cluster_metadata`) and LocalCoordinator (the embedded Coordinator),
both CoordinatorAPI (coordinator/api.py), so the broker treats both alike. The remote one is put
together from the transport, the mirror, the broker session and the remote admin calls.
"""
from __future__ import annotations

import asyncio
import time
import uuid
from typing import Callable, Iterable

from sandbox.lifecycle import cancel_and_wait
from sandbox.protocol import build, request_class
from sandbox.protocol.errors import UNKNOWN_SERVER_ERROR

from .changes import ChangeListener, typed_listener
from .local import LocalCoordinator  # noqa: F401  (re-exported: brokers import both from here)
from .mirror import MetadataMirror
from .model import CoordinatorError, PartitionInfo
from .remote_admin import RemoteAdmin
from .session import BrokerSession
from .transport import CoordinatorConnection, listener_triples, parse_address  # noqa: F401


V_ALTER_PARTITION = 3
MAX_ISR_CHANGES = 1000   # partitions per AlterPartition request


class RemoteCoordinator(RemoteAdmin):
    """The coordinator seen from a broker process. Reads answer from the local mirror at once
    (also while the coordinator is down); writes go over the wire and return once the mirror
    shows them (bounded), raising CoordinatorError on refusal or when the coordinator is away."""

    def __init__(self, address: str | tuple[str, int], *, client_id: str = "sandbox-broker",
                 request_timeout: float = 5.0, connect_timeout: float = 2.0,
                 catch_up_timeout: float = 5.0, heartbeat_interval: float = 0.5,
                 fetch_max_wait_ms: int = 500, session_timeout: float = 9.0) -> None:
        host, port = parse_address(address) if isinstance(address, str) else address
        self.host, self.port = host, int(port)
        control = CoordinatorConnection(host, self.port, client_id, connect_timeout)
        self._fetcher = CoordinatorConnection(host, self.port, client_id + "-metadata", connect_timeout)
        mirror = MetadataMirror(control, self._fetcher, request_timeout=request_timeout,
                                catch_up_timeout=catch_up_timeout, fetch_max_wait_ms=fetch_max_wait_ms)
        super().__init__(control, mirror, request_timeout)
        # heartbeats on a connection of their own, as Kafka's brokers keep one channel for them:
        # behind hundreds of ISR changes on the control connection (every broker restarted at
        # once) a heartbeat waited past the session timeout and healthy brokers were fenced
        self._session_conn = CoordinatorConnection(host, self.port, client_id + "-session", connect_timeout)
        self.session = BrokerSession(self._session_conn, lambda: self.mirror.metadata_offset,
                                     request_timeout=request_timeout, heartbeat_interval=heartbeat_interval,
                                     session_timeout=session_timeout)
        self._tasks: list[asyncio.Task] = []
        self._isr_queue: list = []    # (key, change, future) not sent yet
        self._isr_sender: asyncio.Task | None = None

    # ----------------------------------------------------------------- what the broker reads
    @property
    def connected(self) -> bool:
        """Whether the last exchange with the coordinator (registration/heartbeat) succeeded."""
        return self.session.healthy and self._session_conn.connected

    @property
    def broker_epoch(self) -> int:
        return self.session.broker_epoch

    def lease_valid(self) -> bool:
        return self.session.lease_valid()

    async def alter_partition(self, broker_id: int, topic_id: uuid.UUID, index: int, leader_epoch: int,
                              partition_epoch: int, new_isr: list[int]) -> tuple[int, PartitionInfo | None]:
        """AlterPartition for one partition: (error code, the partition as the coordinator has it
        afterwards); the mirror shows the change soon after. As Kafka's AlterPartitionManager
        does, the changes asked for while one request is out go together in the next one (a
        broker rejoining every ISR at once asks for hundreds)."""
        fut = asyncio.get_running_loop().create_future()
        self._isr_queue.append(((topic_id, index), (broker_id, leader_epoch, partition_epoch, list(new_isr)), fut))
        if self._isr_sender is None or self._isr_sender.done():
            self._isr_sender = asyncio.get_running_loop().create_task(self._send_isr_changes())
        return await fut

    async def _send_isr_changes(self) -> None:
        """Send the queued ISR changes, one request at a time, each key once per request."""
        while self._isr_queue:
            batch, rest, keys = [], [], set()
            broker_id = self._isr_queue[0][1][0]
            for item in self._isr_queue:
                if item[0] in keys or item[1][0] != broker_id or len(batch) >= MAX_ISR_CHANGES:
                    rest.append(item)
                else:
                    keys.add(item[0])
                    batch.append(item)
            self._isr_queue = rest
            try:
                answers = await self._alter_partitions(broker_id, batch)
            except asyncio.CancelledError:   # closing: nobody will send them
                for _k, _a, fut in batch + self._isr_queue:
                    fut.cancel()
                self._isr_queue = []
                raise
            except Exception as e:   # noqa: BLE001 - each asker gets the failure (the coordinator is away)
                for _k, _a, fut in batch:
                    if not fut.done():
                        fut.set_exception(e)
                continue
            for key, _a, fut in batch:
                if not fut.done():
                    fut.set_result(answers.get(key, (UNKNOWN_SERVER_ERROR, None)))

    async def _alter_partitions(self, broker_id: int, batch: list) -> dict:
        topics: dict[uuid.UUID, list[dict]] = {}
        for (topic_id, index), (_b, leader_epoch, partition_epoch, new_isr), _f in batch:
            topics.setdefault(topic_id, []).append({
                "partition_index": index, "leader_epoch": leader_epoch, "leader_recovery_state": 0,
                "new_isr_with_epochs": [{"broker_id": b, "broker_epoch": -1} for b in new_isr],
                "partition_epoch": partition_epoch})
        body = build(request_class(56, V_ALTER_PARTITION), {
            "broker_id": broker_id, "broker_epoch": self.broker_epoch,
            "topics": [{"topic_id": tid, "partitions": ps} for tid, ps in topics.items()]})
        resp = await self._request(body)
        if int(resp.error_code) != 0:
            return {key: (int(resp.error_code), None) for key, _a, _f in batch}
        answers = {}
        for t in resp.topics:
            for p in t.partitions:
                after = None if int(p.leader_id) < 0 else PartitionInfo(
                    int(p.partition_index), (), tuple(int(b) for b in p.isr), int(p.leader_id),
                    int(p.leader_epoch), int(p.partition_epoch))
                answers[(t.topic_id, int(p.partition_index))] = (int(p.error_code), after)
        return answers

    @property
    def cluster_changed_at(self) -> float | None:
        return self.mirror.cluster_changed_at

    def journal_replaced(self) -> None:
        """The journal this broker followed before it started was replaced meanwhile (a destroyed
        one being put back): from now on as if the broker had seen the change happen."""
        self.mirror.cluster_changed_at = time.monotonic()

    async def journal_still_followed(self) -> bool:
        """False if the coordinator serves another journal than the one the metadata here is of
        (see MetadataMirror.journal_still_followed)."""
        return await self.mirror.journal_still_followed()

    def watch(self, callback: ChangeListener) -> Callable[[], None]:
        return self.mirror.subscribe(typed_listener(callback, self.topics))

    async def wait_for_offset(self, offset: int, timeout: float) -> bool:
        """Wait until the mirror has applied every record before `offset`."""
        return await self.mirror.wait_for_offset(offset, timeout)

    # ----------------------------------------------------------------- lifecycle
    async def start(self, broker_id: int, host: str, port: int, rack: str | None = None, *,
                    listeners: Iterable[tuple[str, str, int]] | None = None,
                    timeout: float = 30.0) -> int:
        """Register (retrying until the coordinator answers, at most `timeout` s), load the
        metadata, then keep heartbeating and following. Returns the broker epoch.
        `listeners`: (name, advertised host, port) of every listener, the primary (host, port)
        first; None registers one PLAINTEXT listener at host:port."""
        deadline = time.monotonic() + timeout
        self.mirror.replica_id = broker_id
        triples = listener_triples(host, port, listeners) or [("PLAINTEXT", host, port)]
        await self.session.open(broker_id, triples, rack, deadline, timeout)
        while True:  # the first full view of the metadata before serving anything
            try:
                await self.mirror.load()
                break
            except CoordinatorError as e:
                if time.monotonic() >= deadline:
                    raise CoordinatorError(e.error_code, f"Could not load the metadata from the "
                                           f"coordinator at {self.host}:{self.port}: {e.message}")
                await asyncio.sleep(0.1)
        self._tasks = [asyncio.create_task(self.session.keep_alive()),
                       asyncio.create_task(self.mirror.follow())]
        return self.broker_epoch

    async def shut_down(self, wait_s: float = 2.0) -> bool:
        """Controlled shutdown (BrokerSession.shut_down), then wait (at most wait_s) until the
        metadata this broker follows shows none of its leaderships any more, so clients and
        followers asking it now are sent to the new leaders before it stops serving. True if
        they all moved in time."""
        broker_id = self.session.broker_id
        heartbeats = self._tasks[:1]   # keep_alive; the mirror goes on following
        await cancel_and_wait(heartbeats)
        self._tasks = self._tasks[1:]
        if not await self.session.shut_down():
            return False
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            if not any(p.leader == broker_id for t in self.topics() for p in t.partitions):
                return True
            await asyncio.sleep(0.02)
        return False

    async def stop(self) -> None:
        """Unregister (best effort, fast) and close the connections."""
        await cancel_and_wait(self._tasks)
        self._tasks = []
        await self.session.close()
        self.close()

    def close(self) -> None:
        for t in self._tasks:
            t.cancel()
        if self._isr_sender is not None:
            self._isr_sender.cancel()
        for _k, _a, fut in self._isr_queue:   # also those of a sender cancelled before it ran
            fut.cancel()
        self._isr_queue = []
        self._control.close()
        self._fetcher.close()
        self._session_conn.close()

    async def allocate_producer_ids(self, count: int = 1000) -> int:
        """A durable block of producer ids; returns the first (see BrokerSession)."""
        return await self.session.allocate_producer_ids(count)
