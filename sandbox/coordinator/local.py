"""The in-process coordinator behind the typed async API (coordinator/api.py): AsyncCoordinator
wraps a Coordinator for the admin handlers both servers share, LocalCoordinator adds one broker's
session (combined mode), so a broker treats an in-process and a networked coordinator alike."""
from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from sandbox.lifecycle import cancel_and_wait

from .api import ViewReads
from .changes import ChangeListener, typed_listener
from .controller import Coordinator
from .model import CoordinatorError, NewTopic, PartitionInfo, TopicInfo, TopicResult
from .transport import listener_triples

log = logging.getLogger("sandbox.coordinator.client")


class AsyncCoordinator(ViewReads):
    """A Coordinator in this process, as TopicAdmin: reads pass straight through, writes are
    awaited (they are done when they return: the journal is local)."""

    def __init__(self, controller: Coordinator) -> None:
        self.controller = controller

    @property
    def _view(self) -> Coordinator:
        return self.controller

    def watch(self, callback: ChangeListener) -> Callable[[], None]:
        return self.controller.subscribe(typed_listener(callback, self.controller.topics))

    async def create_topic(self, name: str, num_partitions: int = -1, replication_factor: int = -1,
                           configs: Mapping[str, str] | None = None, assignments: Any = None, *,
                           validate_only: bool = False) -> TopicInfo:
        return self.controller.create_topic(name, num_partitions, replication_factor, configs, assignments,
                                            validate_only=validate_only)

    async def create_topics(self, topics: Iterable[NewTopic | Mapping[str, Any]],
                            validate_only: bool = False) -> list[TopicResult]:
        return self.controller.create_topics(topics, validate_only)

    async def elect_leaders(self, election_type: int, pairs: list[tuple[str, int]]
                            ) -> dict[tuple[str, int], tuple[int, str | None]]:
        return self.controller.elect_leaders(election_type, pairs)

    async def delete_topic(self, name: str | uuid.UUID) -> None:
        self.controller.delete_topic(name)

    async def alter_reassignments(self, wanted: list[tuple[str, int, Any]]
                                  ) -> dict[tuple[str, int], tuple[int, str | None]]:
        return self.controller.alter_reassignments(wanted)

    async def create_partitions(self, name: str, total: int, assignments: Any = None,
                                validate_only: bool = False) -> TopicInfo:
        return self.controller.create_partitions(name, total, assignments, validate_only)

    async def alter_configs(self, name: str, set: Mapping[str, str] | None = None,  # noqa: A002
                            delete: Iterable[str] | None = None, incremental: bool = True,
                            validate_only: bool = False) -> None:
        self.controller.alter_configs(name, set, delete, incremental, validate_only)

    async def alter_group_configs(self, group: str, set: Mapping[str, str] | None = None,  # noqa: A002
                                  delete: Iterable[str] | None = None, incremental: bool = True,
                                  validate_only: bool = False) -> None:
        self.controller.alter_group_configs(group, set, delete, incremental, validate_only)

    async def alter_broker_configs(self, name: str, set: Mapping[str, str] | None = None,  # noqa: A002
                                   delete: Iterable[str] | None = None, incremental: bool = True,
                                   validate_only: bool = False) -> None:
        self.controller.alter_broker_configs(name, set, delete, incremental, validate_only)

    async def restore_cluster_id(self, cluster_id: str) -> None:
        self.controller.restore_cluster_id(cluster_id)

    async def alter_scram_credentials(self, deletions: Any, upsertions: Any) -> list[tuple[str, int, str | None]]:
        return self.controller.alter_scram_credentials(deletions, upsertions)

    async def create_acls(self, bindings: Any) -> list[tuple[int, str | None]]:
        return self.controller.create_acls(bindings)

    async def delete_acls(self, filters: Any) -> list[Any]:
        return self.controller.delete_acls(filters)

    async def alter_client_quotas(self, entries: Any, validate_only: bool = False) -> list[tuple[int, str | None]]:
        return self.controller.alter_client_quotas(entries, validate_only)

    async def update_features(self, wanted: Any, validate_only: bool = False) -> dict[str, tuple[int, str | None]]:
        return self.controller.update_features(wanted, validate_only)


class LocalCoordinator(AsyncCoordinator):
    """The embedded coordinator (combined mode) as CoordinatorAPI: it owns its Coordinator (opened
    from `directory` with Coordinator's keyword arguments) and this broker's session in it."""

    connected = True
    cluster_changed_at: float | None = None   # the journal is this process's: never replaced under it

    def __init__(self, directory: Path, *, heartbeat_interval: float = 0.5, **kwargs: Any) -> None:
        super().__init__(Coordinator(directory, **kwargs))
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
        self.broker_epoch = self.controller.register_broker(
            broker_id, host, port, rack, uuid.uuid4(), listeners=listener_triples(host, port, listeners))
        self._task = asyncio.create_task(self._keepalive())
        return self.broker_epoch

    async def _keepalive(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_interval)
            try:
                self.controller.heartbeat(self.broker_id, self.broker_epoch)  # type: ignore[arg-type]
            except CoordinatorError as e:
                log.warning("embedded heartbeat failed: %s", e.message)
            except Exception:
                log.exception("embedded heartbeat failed")

    async def stop(self) -> None:
        if self._task is not None:
            await cancel_and_wait([self._task])
            self._task = None
        if self.broker_id is not None and not self._closed:
            with contextlib.suppress(CoordinatorError):
                self.controller.unregister_broker(self.broker_id, self.broker_epoch)
        self.close()

    async def journal_still_followed(self) -> bool:
        return True   # the journal is this process's own: never replaced under it

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.controller.close()

    async def allocate_producer_ids(self, count: int = 1000) -> int:
        return self.controller.allocate_producer_ids(count)

    async def alter_partition(self, broker_id: int, topic_id: uuid.UUID, index: int, leader_epoch: int,
                              partition_epoch: int, new_isr: list[int]) -> tuple[int, PartitionInfo | None]:
        return self.controller.alter_partition(broker_id, topic_id, index, leader_epoch, partition_epoch, new_isr)

    def lease_valid(self) -> bool:
        return True   # the coordinator is in this process: it cannot fence us behind our back
