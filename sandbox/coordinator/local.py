"""LocalCoordinator: the embedded Coordinator (combined mode) with RemoteCoordinator's async write
API and lifecycle, so a broker treats an in-process and a networked coordinator alike."""
from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from typing import Any, Iterable, Mapping

from .controller import Coordinator
from sandbox.protocol.errors import INVALID_REQUEST
from .model import CoordinatorError, NewTopic, TopicInfo, TopicResult

log = logging.getLogger("sandbox.coordinator.client")


def _listener_triples(host: str, port: int, listeners: Iterable[tuple[str, str, int]] | None
                      ) -> list[tuple[str, str, int]]:
    """(name, host, port) of every listener; one PLAINTEXT listener at host:port by default."""
    if listeners is None:
        return [("PLAINTEXT", host, port)]
    return [(str(name), str(h), int(p)) for name, h, p in listeners]


class LocalCoordinator(Coordinator):
    """The embedded Coordinator with RemoteCoordinator's async write API and lifecycle, so a
    broker treats both alike. Reads (and the sync broker calls) pass straight through."""

    connected = True

    def __init__(self, *args: Any, heartbeat_interval: float = 0.5, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.heartbeat_interval = heartbeat_interval
        self.broker_id: int | None = None
        self.broker_epoch = -1
        self._task: asyncio.Task | None = None
        self._closed = False

    async def start(self, broker_id: int, host: str, port: int, rack: str | None = None, *,
                    listeners: Iterable[tuple[str, str, int]] | None = None,
                    timeout: float = 30.0) -> int:
        """Register this broker (and its listeners, as RemoteCoordinator.start) and keep its
        session alive. Returns the broker epoch."""
        self.broker_id = broker_id
        self.broker_epoch = self.register_broker(broker_id, host, port, rack, uuid.uuid4(),
                                                 listeners=_listener_triples(host, port, listeners))
        self._task = asyncio.create_task(self._keepalive())
        return self.broker_epoch

    async def _keepalive(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_interval)
            try:
                self.heartbeat(self.broker_id, self.broker_epoch)  # type: ignore[arg-type]
            except CoordinatorError as e:
                log.warning("embedded heartbeat failed: %s", e.message)
            except Exception:
                log.exception("embedded heartbeat failed")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self.broker_id is not None and not self._closed:
            with contextlib.suppress(CoordinatorError):
                self.unregister_broker(self.broker_id, self.broker_epoch)
        self.close()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            super().close()

    async def create_topic(self, name: str, num_partitions: int = -1,  # type: ignore[override]
                           replication_factor: int = -1, configs: Mapping[str, str] | None = None,
                           assignments: Any = None, *, validate_only: bool = False) -> TopicInfo:
        return Coordinator.create_topic(self, name, num_partitions, replication_factor, configs,
                                        assignments, validate_only=validate_only)

    async def create_topics(self, topics: Iterable[NewTopic | Mapping[str, Any]],  # type: ignore[override]
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
                info = Coordinator.create_topic(self, req.name, req.num_partitions,
                                                req.replication_factor, req.configs,
                                                req.assignments, validate_only=validate_only)
            except CoordinatorError as e:
                results.append(TopicResult(req.name, e.error_code, e.message))
            else:
                results.append(TopicResult(req.name, topic=info))
        return results

    async def delete_topic(self, name: str | uuid.UUID) -> None:  # type: ignore[override]
        Coordinator.delete_topic(self, name)

    async def create_partitions(self, name: str, total: int,  # type: ignore[override]
                                assignments: Any = None, validate_only: bool = False) -> TopicInfo:
        return Coordinator.create_partitions(self, name, total, assignments, validate_only)

    async def alter_configs(self, name: str, set: Mapping[str, str] | None = None,  # type: ignore[override]  # noqa: A002
                            delete: Iterable[str] | None = None, incremental: bool = True,
                            validate_only: bool = False) -> None:
        Coordinator.alter_configs(self, name, set, delete, incremental, validate_only)

    async def allocate_producer_ids(self, count: int = 1000) -> int:  # type: ignore[override]
        return Coordinator.allocate_producer_ids(self, count)
