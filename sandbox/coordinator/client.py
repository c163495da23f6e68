"""How a broker talks to the coordinator: RemoteCoordinator (over the Kafka protocol, reads from
a local mirror that follows `__cluster_metadata`) and LocalCoordinator (the embedded Coordinator
with the same async write API), so the broker treats both alike.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from typing import Any, Callable, Iterable, Mapping

from sandbox.protocol import build, request_class
from sandbox.protocol.records import RecordsError, decode_batches

from .controller import Listener
from .transport import _assignment_list, _check, _Connection, _listener_triples, parse_address  # noqa: F401
from .feed import METADATA_PARTITION, METADATA_TOPIC, SNAPSHOT_TYPE, decode_record
from .machine import MetadataMachine, Record
from .model import (
    BROKER_ID_NOT_REGISTERED, INCONSISTENT_CLUSTER_ID, INVALID_REQUEST, NO_LEADER, STALE_BROKER_EPOCH, UNKNOWN_TOPIC_ID,
    BrokerInfo, ClusterState, CoordinatorError, NewTopic, PartitionInfo, TopicInfo, TopicResult,
)

log = logging.getLogger("sandbox.coordinator.client")

OFFSET_OUT_OF_RANGE = 1
TOPIC_RESOURCE = 2
SET, DELETE = 0, 1
_RESESSION = (BROKER_ID_NOT_REGISTERED, STALE_BROKER_EPOCH)

# The versions we speak to our own coordinator (it serves these; see coordinator/handlers).
V_REGISTER, V_HEARTBEAT, V_UNREGISTER, V_PIDS = 3, 1, 0, 0
V_FETCH, V_LIST_OFFSETS, V_CREATE, V_DELETE, V_PARTITIONS = 12, 7, 7, 5, 3
V_ALTER, V_INCREMENTAL = 2, 1
V_ALTER_PARTITION = 3


class RemoteCoordinator:
    """The coordinator seen from a broker process. Reads answer from the local mirror at once
    (also while the coordinator is down); writes go over the wire and return once the mirror
    shows them (bounded), raising CoordinatorError on refusal or when the coordinator is away."""

    def __init__(self, address: str | tuple[str, int], *, client_id: str = "sandbox-broker",
                 request_timeout: float = 5.0, connect_timeout: float = 2.0,
                 catch_up_timeout: float = 5.0, heartbeat_interval: float = 0.5,
                 fetch_max_wait_ms: int = 500, session_timeout: float = 9.0) -> None:
        host, port = parse_address(address) if isinstance(address, str) else address
        # no acknowledgement once the coordinator may have fenced us: our session runs out
        # session_timeout after the last heartbeat it answered was sent (kept 10% short)
        self.session_timeout = session_timeout
        self._lease_until = 0.0
        self.host, self.port = host, int(port)
        self.request_timeout = request_timeout
        self.catch_up_timeout = catch_up_timeout
        self.heartbeat_interval = heartbeat_interval
        self.fetch_max_wait_ms = fetch_max_wait_ms
        self._control = _Connection(host, self.port, client_id, connect_timeout)
        self._fetcher = _Connection(host, self.port, client_id + "-metadata", connect_timeout)
        self._machine = MetadataMachine()
        self._resync: MetadataMachine | None = None  # rebuilding from offset 0 after a reset
        self.cluster_changed_at: float | None = None  # monotonic time the coordinator's journal was replaced
        self._listeners: list[Listener] = []
        self._progress = asyncio.Event()
        self._tasks: list[asyncio.Task] = []
        self._healthy = False
        self._registered = False
        self.incarnation_id = uuid.uuid4()
        self.broker_id: int | None = None
        self.broker_epoch = -1
        self._endpoint: tuple[str, int, str | None] | None = None
        self._listener_list: list[tuple[str, str, int]] = []

    # ----------------------------------------------------------------- reads (the mirror)
    @property
    def cluster_id(self) -> str:
        return self._machine.cluster_id  # type: ignore[return-value]

    @property
    def metadata_offset(self) -> int:
        return self._machine.metadata_offset

    @property
    def connected(self) -> bool:
        """Whether the last exchange with the coordinator (registration/heartbeat) succeeded."""
        return self._healthy and self._control.connected

    def state(self) -> ClusterState:
        return self._machine.state()

    def topic(self, name: str) -> TopicInfo | None:
        return self._machine.topic(name)

    def topic_by_id(self, topic_id: uuid.UUID) -> TopicInfo | None:
        return self._machine.topic_by_id(topic_id)

    def topics(self) -> list[TopicInfo]:
        return self._machine.topics()

    def brokers(self) -> list[BrokerInfo]:
        return self._machine.brokers()

    def broker(self, broker_id: int) -> BrokerInfo | None:
        return self._machine.broker(broker_id)

    def describe_configs(self, name: str) -> dict[str, tuple[str, bool]]:
        return self._machine.describe_configs(name)

    def client_quotas(self) -> dict:
        return self._machine.client_quotas()

    def finalized_features(self) -> dict[str, int]:
        return self._machine.finalized_features()

    def subscribe(self, callback: Listener) -> Callable[[], None]:
        """Call `callback(records)` after each change the mirror applies; returns an
        unsubscribe. A snapshot arrives as one `{"type": "snapshot", ...}` record."""
        self._listeners.append(callback)
        return lambda: self._listeners.remove(callback) if callback in self._listeners else None

    async def wait_for_offset(self, offset: int, timeout: float) -> bool:
        """Wait until the mirror has applied every record before `offset`."""
        deadline = time.monotonic() + timeout
        while self._machine.metadata_offset < offset:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._progress.wait(), remaining)
        return True

    # ----------------------------------------------------------------- lifecycle
    async def start(self, broker_id: int, host: str, port: int, rack: str | None = None, *,
                    listeners: Iterable[tuple[str, str, int]] | None = None,
                    timeout: float = 30.0) -> int:
        """Register (retrying until the coordinator answers, at most `timeout` s), load the
        metadata, then keep heartbeating and following. Returns the broker epoch.
        `listeners`: (name, advertised host, port) of every listener, the primary (host, port)
        first; None registers one PLAINTEXT listener at host:port."""
        self.broker_id, self._endpoint = broker_id, (host, port, rack)
        self._listener_list = _listener_triples(host, port, listeners)
        deadline = time.monotonic() + timeout
        delay = 0.05
        while True:
            try:
                await self._register()
                break
            except CoordinatorError as e:
                if time.monotonic() + delay >= deadline:
                    raise CoordinatorError(e.error_code, f"Could not register broker "
                                           f"{broker_id} with the coordinator at {self.host}:"
                                           f"{self.port} within {timeout:g} s: {e.message}")
                await asyncio.sleep(delay)
                delay = min(delay * 2, 0.25)  # started together with the coordinator: join it soon
        while True:  # the first full view of the metadata before serving anything
            try:
                hw = await self._latest_offset()
                while self._current().metadata_offset < hw or self._resync is not None:
                    await self._fetch_once(0)
                break
            except CoordinatorError as e:
                if time.monotonic() >= deadline:
                    raise CoordinatorError(e.error_code, f"Could not load the metadata from the "
                                           f"coordinator at {self.host}:{self.port}: {e.message}")
                await asyncio.sleep(0.1)
        self._tasks = [asyncio.create_task(self._heartbeat_loop()),
                       asyncio.create_task(self._follow_loop())]
        return self.broker_epoch

    async def stop(self) -> None:
        """Unregister (best effort, fast) and close the connections."""
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        if self._registered and self.broker_id is not None:
            body = build(request_class(64, V_UNREGISTER), {"broker_id": self.broker_id})
            with contextlib.suppress(CoordinatorError):
                await self._control.request(body, 1.0)
        self._registered = self._healthy = False
        self.close()

    def close(self) -> None:
        for t in self._tasks:
            t.cancel()
        self._control.close()
        self._fetcher.close()

    async def _register(self) -> None:
        assert self.broker_id is not None and self._endpoint is not None
        host, port, rack = self._endpoint
        body = build(request_class(62, V_REGISTER), {
            "broker_id": self.broker_id, "cluster_id": "", "incarnation_id": self.incarnation_id,
            "listeners": [{"name": name, "host": h, "port": p, "security_protocol": 0}
                          for name, h, p in self._listener_list or [("PLAINTEXT", host, port)]],
            "features": [], "rack": rack})
        sent = time.monotonic()
        try:
            resp = await self._control.request(body, self.request_timeout)
            _check(resp.error_code, None, f"Registering broker {self.broker_id}")
            self._lease_until = sent + 0.9 * self.session_timeout
        except CoordinatorError:
            self._healthy = False
            raise
        was_registered, self._registered, self._healthy = self._registered, True, True
        self.broker_epoch = int(resp.broker_epoch)
        log.info("broker %d %sregistered with the coordinator at %s:%d (epoch %d)",
                 self.broker_id, "re-" if was_registered else "", self.host, self.port,
                 self.broker_epoch)

    async def _heartbeat_loop(self) -> None:
        delay = self.heartbeat_interval
        while True:
            await asyncio.sleep(delay)
            try:
                if not self._registered:
                    await self._register()
                else:
                    await self._heartbeat()
                if not self._healthy:
                    log.info("coordinator at %s:%d is reachable again", self.host, self.port)
                self._healthy = True
                delay = self.heartbeat_interval
            except CoordinatorError as e:
                if e.error_code in _RESESSION:  # e.g. the coordinator restarted: register again
                    self._registered = False
                    delay = 0
                    continue
                if self._healthy:
                    log.warning("lost the coordinator at %s:%d: %s", self.host, self.port,
                                e.message)
                self._healthy = False
                delay = min(max(delay * 2, self.heartbeat_interval), 2.0)
            except Exception:
                log.exception("coordinator heartbeat failed")
                delay = 2.0

    async def _heartbeat(self) -> None:
        body = build(request_class(63, V_HEARTBEAT), {
            "broker_id": self.broker_id, "broker_epoch": self.broker_epoch,
            "current_metadata_offset": self._machine.metadata_offset, "want_fence": False,
            "want_shut_down": False})
        sent = time.monotonic()
        resp = await self._control.request(body, self.request_timeout)
        _check(resp.error_code, None, f"Heartbeat of broker {self.broker_id}")
        if not resp.is_fenced and resp.is_caught_up:
            self._lease_until = sent + 0.9 * self.session_timeout

    def lease_valid(self) -> bool:
        """True while the coordinator cannot have fenced this broker and this broker's metadata
        was current at its last heartbeat: only then may it acknowledge writes as a leader."""
        return time.monotonic() < self._lease_until

    async def alter_partition(self, broker_id: int, topic_id: uuid.UUID, index: int,
                              leader_epoch: int, partition_epoch: int, new_isr: list[int]
                              ) -> tuple[int, PartitionInfo | None]:
        """AlterPartition for one partition: (error code, the partition as the coordinator has
        it afterwards). The metadata mirror shows the change soon after."""
        body = build(request_class(56, V_ALTER_PARTITION), {
            "broker_id": broker_id, "broker_epoch": self.broker_epoch,
            "topics": [{"topic_id": topic_id, "partitions": [{
                "partition_index": index, "leader_epoch": leader_epoch,
                "new_isr_with_epochs": [{"broker_id": b, "broker_epoch": -1} for b in new_isr],
                "leader_recovery_state": 0, "partition_epoch": partition_epoch}]}]})
        resp = await self._request(body)
        if int(resp.error_code) != 0:
            return int(resp.error_code), None
        p = resp.topics[0].partitions[0]
        if int(p.error_code) != 0 and int(p.leader_id) < 0:
            return int(p.error_code), None
        return int(p.error_code), PartitionInfo(index, (), tuple(int(b) for b in p.isr),
                                                int(p.leader_id), int(p.leader_epoch),
                                                int(p.partition_epoch))

    # ----------------------------------------------------------------- following metadata
    def _current(self) -> MetadataMachine:
        return self._resync if self._resync is not None else self._machine

    async def _follow_loop(self) -> None:
        delay = 0.1
        while True:
            try:
                await self._fetch_once(self.fetch_max_wait_ms)
                delay = 0.1
            except CoordinatorError:
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
            except Exception:
                log.exception("following the coordinator's metadata failed")
                await asyncio.sleep(1.0)

    async def _fetch_once(self, max_wait_ms: int) -> None:
        machine = self._current()
        body = build(request_class(1, V_FETCH), {
            "cluster_id": machine.cluster_id, "replica_id": -1 if self.broker_id is None else self.broker_id,
            "max_wait": max_wait_ms, "min_bytes": 1, "max_bytes": 16 << 20,
            "isolation_level": 0, "session_id": 0, "session_epoch": -1,
            "topics": [{"topic": METADATA_TOPIC, "partitions": [{
                "partition": METADATA_PARTITION, "fetch_offset": machine.metadata_offset,
                "partition_max_bytes": 8 << 20}]}],
            "forgotten_topics_data": [], "rack_id": ""})
        resp = await self._fetcher.request(body, max_wait_ms / 1000 + self.request_timeout)
        if int(resp.error_code) == INCONSISTENT_CLUSTER_ID:
            log.warning("the coordinator now serves another cluster (its journal was replaced):"
                        " reloading the metadata")
            self._resync = MetadataMachine()
            self.cluster_changed_at = time.monotonic()
            return
        _check(resp.error_code, None, "Fetching metadata")
        part = resp.responses[0].partitions[0]
        if int(part.error_code) == OFFSET_OUT_OF_RANGE:
            log.warning("the coordinator's metadata is behind this broker's (offset %d > %d): "
                        "reloading it", machine.metadata_offset, part.high_watermark)
            self._resync = MetadataMachine()
            return
        _check(part.error_code, None, "Fetching metadata")
        if part.records:
            try:
                self._apply(decode_batches(bytes(part.records)), int(part.high_watermark))
            except (RecordsError, ValueError, KeyError, TypeError, IndexError) as e:
                log.warning("metadata record did not apply (%r): reloading the metadata", e)
                self._resync = MetadataMachine()

    def _apply(self, records, high_watermark: int) -> None:
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
            self._machine, self._resync = machine, None
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

    # ----------------------------------------------------------------- writes
    async def _request(self, body: Any) -> Any:
        return await self._control.request(body, self.request_timeout)

    async def forward(self, body: Any, catch_up: bool = False) -> Any:
        """A client's request the coordinator answers (as a Kafka broker forwards to its
        controller): its response entity, or CoordinatorError when the coordinator is away.
        catch_up: a write; return once the mirror shows it (bounded)."""
        response = await self._request(body)
        if catch_up:
            await self._catch_up()
        return response

    async def _latest_offset(self) -> int:
        body = build(request_class(2, V_LIST_OFFSETS), {
            "replica_id": -1, "isolation_level": 0,
            "topics": [{"name": METADATA_TOPIC, "partitions": [{
                "partition_index": METADATA_PARTITION, "timestamp": -1}]}]})
        resp = await self._request(body)
        part = resp.topics[0].partitions[0]
        _check(part.error_code, None, "Reading the metadata offset")
        return int(part.offset)

    async def _catch_up(self) -> None:
        """After a write: wait (bounded) until the mirror shows it."""
        try:
            target = await self._latest_offset()
        except CoordinatorError:
            return
        if not await self.wait_for_offset(target, self.catch_up_timeout):
            log.warning("metadata mirror still at %d, coordinator at %d after %.1f s",
                        self.metadata_offset, target, self.catch_up_timeout)

    async def create_topic(self, name: str, num_partitions: int = -1,
                           replication_factor: int = -1, configs: Mapping[str, str] | None = None,
                           assignments: Any = None, *, validate_only: bool = False) -> TopicInfo:
        topic = {"name": name, "num_partitions": num_partitions,
                 "replication_factor": replication_factor,
                 "assignments": [{"partition_index": i, "broker_ids": b}
                                 for i, b in _assignment_list(assignments or [])],
                 "configs": [{"name": k, "value": v} for k, v in (configs or {}).items()]}
        body = build(request_class(19, V_CREATE), {
            "topics": [topic], "timeout": int(self.request_timeout * 1000),
            "validate_only": validate_only})
        result = (await self._request(body)).topics[0]
        _check(result.error_code, result.error_message, f"Creating topic {name!r}")
        if not validate_only:
            await self._catch_up()
            info = self._machine.topic(name)
            if info is not None:
                return info
        rf = max(int(result.replication_factor), 0)
        parts = tuple(PartitionInfo(i, (NO_LEADER,) * rf, (NO_LEADER,) * rf)
                      for i in range(max(int(result.num_partitions), 0)))
        return TopicInfo(name, result.topic_id or uuid.UUID(int=0), parts,
                         {c.name: c.value for c in (result.configs or ())
                          if c.config_source != 5 and c.value is not None})

    async def create_topics(self, topics: Iterable[NewTopic | Mapping[str, Any]],
                            validate_only: bool = False) -> list[TopicResult]:
        requests = [t if isinstance(t, NewTopic) else NewTopic(**t) for t in topics]
        names = [t.name for t in requests]
        results = []
        for req in requests:
            if names.count(req.name) > 1:
                results.append(TopicResult(req.name, INVALID_REQUEST,
                                           f"Topic '{req.name}' appears more than once."))
                continue
            try:
                info = await self.create_topic(req.name, req.num_partitions,
                                               req.replication_factor, req.configs,
                                               req.assignments, validate_only=validate_only)
            except CoordinatorError as e:
                results.append(TopicResult(req.name, e.error_code, e.message))
            else:
                results.append(TopicResult(req.name, topic=info))
        return results

    async def delete_topic(self, name: str | uuid.UUID) -> None:
        if isinstance(name, uuid.UUID):
            info = self._machine.topic_by_id(name)
            if info is None:
                raise CoordinatorError(UNKNOWN_TOPIC_ID, f"Topic id {name} does not exist.")
            name = info.name
        body = build(request_class(20, V_DELETE), {
            "topic_names": [name], "timeout": int(self.request_timeout * 1000)})
        result = (await self._request(body)).responses[0]
        _check(result.error_code, result.error_message, f"Deleting topic {name!r}")
        await self._catch_up()

    async def create_partitions(self, name: str, total: int, assignments: Any = None,
                                validate_only: bool = False) -> TopicInfo | None:
        assign = None
        if assignments is not None:
            assign = [{"broker_ids": b} for _i, b in sorted(_assignment_list(assignments))]
        body = build(request_class(37, V_PARTITIONS), {
            "topics": [{"name": name, "count": total, "assignments": assign}],
            "timeout": int(self.request_timeout * 1000), "validate_only": validate_only})
        result = (await self._request(body)).results[0]
        _check(result.error_code, result.error_message, f"Adding partitions to {name!r}")
        if not validate_only:
            await self._catch_up()
        return self._machine.topic(name)

    async def alter_configs(self, name: str, set: Mapping[str, str] | None = None,  # noqa: A002
                            delete: Iterable[str] | None = None, incremental: bool = True,
                            validate_only: bool = False) -> None:
        set_ = dict(set or {})
        delete = list(delete or ())
        if incremental:
            configs = [{"name": k, "config_operation": SET, "value": v} for k, v in set_.items()]
            configs += [{"name": k, "config_operation": DELETE, "value": None} for k in delete]
            key, version = 44, V_INCREMENTAL
        else:
            configs = [{"name": k, "value": v} for k, v in set_.items()]
            configs += [{"name": k, "value": None} for k in delete]
            key, version = 33, V_ALTER
        body = build(request_class(key, version), {
            "resources": [{"resource_type": TOPIC_RESOURCE, "resource_name": name,
                           "configs": configs}], "validate_only": validate_only})
        result = (await self._request(body)).responses[0]
        _check(result.error_code, result.error_message, f"Altering the configs of {name!r}")
        if not validate_only:
            await self._catch_up()

    async def allocate_producer_ids(self, count: int = 1000) -> int:
        """A durable block of producer ids; returns the first. The coordinator sets the block
        size (1000, as in Kafka); asking for more than one block is refused."""
        if self.broker_id is None:
            raise CoordinatorError(BROKER_ID_NOT_REGISTERED, "call start() first")
        for attempt in range(2):
            body = build(request_class(67, V_PIDS), {"broker_id": self.broker_id,
                                                     "broker_epoch": self.broker_epoch})
            resp = await self._request(body)
            if int(resp.error_code) in _RESESSION and attempt == 0:
                self._registered = False
                await self._register()
                continue
            _check(resp.error_code, None, "Allocating producer ids")
            if count > int(resp.producer_id_len):
                raise CoordinatorError(INVALID_REQUEST, f"asked for {count} producer ids; the "
                                       f"coordinator hands out blocks of {resp.producer_id_len}")
            return int(resp.producer_id_start)
        raise AssertionError("unreachable")


from .local import LocalCoordinator  # noqa: E402,F401  (re-exported: brokers import both from here)
