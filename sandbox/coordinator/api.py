"""What a broker (and the admin handlers both servers share) needs from a coordinator, as typed
protocols: reads of a local view are plain calls, every write and the lifecycle are awaited, in
the in-process (LocalCoordinator) and the remote (RemoteCoordinator) implementation alike."""

from __future__ import annotations

import uuid
from typing import Any, Callable, Iterable, Mapping, Protocol

from .changes import ChangeListener
from .model import BrokerInfo, ClusterState, NewTopic, PartitionInfo, TopicInfo, TopicResult


class MetadataView(Protocol):
    """The cluster metadata as this process sees it now (never waits, never fails)."""

    @property
    def cluster_id(self) -> str: ...

    @property
    def public_cluster_id(self) -> str: ...

    @property
    def metadata_offset(self) -> int: ...

    def state(self) -> ClusterState: ...

    def topic(self, name: str) -> TopicInfo | None: ...

    def partition_count(self, name: str) -> int: ...

    def topic_by_id(self, topic_id: uuid.UUID) -> TopicInfo | None: ...

    def topic_deleted(self, topic_id: uuid.UUID) -> bool:
        """Whether a topic of this id was deleted under the journal's current history."""
        ...

    def topics(self) -> list[TopicInfo]: ...

    def brokers(self) -> list[BrokerInfo]: ...

    def broker(self, broker_id: int) -> BrokerInfo | None: ...

    def describe_configs(self, name: str) -> dict[str, tuple[str, bool]]: ...

    def group_configs(self, group: str) -> dict[str, str]:
        """The config overrides set on a group (KIP-848), {} without any."""
        ...

    def describe_group_configs(self, group: str) -> dict[str, tuple[str, bool]]: ...

    def configured_groups(self) -> list[str]: ...

    def broker_configs(self) -> dict[str, dict[str, str]]:
        """Dynamic broker settings (KIP-226): "" (every broker) or a broker id -> settings."""
        ...

    def scram_credentials(self, users: list[str] | None) -> list[dict]:
        """DescribeUserScramCredentials results: every user when `users` is None or empty."""
        ...

    def scram_credential(self, user: str, mechanism: int) -> dict | None:
        """A user's SCRAM credential of one mechanism (salt and keys), for SASL logins; None without one."""
        ...

    def acls(self) -> dict:
        """The ACL bindings (acls.Acls; read only)."""
        ...

    @property
    def acl_version(self) -> int: ...

    def client_quotas(self) -> dict: ...

    def finalized_features(self) -> dict[str, int]: ...


class TopicAdmin(MetadataView, Protocol):
    """Topic writes: each returns once this process's view shows it (bounded) and raises
    CoordinatorError when refused or when the coordinator cannot be reached."""

    async def create_topic(self, name: str, num_partitions: int = -1, replication_factor: int = -1,
                           configs: Mapping[str, str] | None = None, assignments: Any = None, *,
                           validate_only: bool = False) -> TopicInfo: ...

    async def create_topics(self, topics: Iterable[NewTopic | Mapping[str, Any]],
                            validate_only: bool = False) -> list[TopicResult]: ...

    async def delete_topic(self, name: str | uuid.UUID) -> None: ...

    async def elect_leaders(self, election_type: int, pairs: list[tuple[str, int]]
                            ) -> dict[tuple[str, int], tuple[int, str | None]]:
        """ElectLeaders: 0 preferred, 1 unclean; (error code, message) per (topic, partition)."""
        ...

    async def create_partitions(self, name: str, total: int, assignments: Any = None,
                                validate_only: bool = False) -> TopicInfo | None: ...

    async def alter_reassignments(self, wanted: list[tuple[str, int, Any]]
                                  ) -> dict[tuple[str, int], tuple[int, str | None]]:
        """AlterPartitionReassignments: a target replica list per (topic, partition), None to
        cancel; (error code, message) per partition, the change visible here when it returns."""
        ...

    async def alter_configs(self, name: str, set: Mapping[str, str] | None = None,  # noqa: A002
                            delete: Iterable[str] | None = None, incremental: bool = True,
                            validate_only: bool = False) -> None: ...

    async def alter_group_configs(self, group: str, set: Mapping[str, str] | None = None,  # noqa: A002
                                  delete: Iterable[str] | None = None, incremental: bool = True,
                                  validate_only: bool = False) -> None: ...

    async def alter_broker_configs(self, name: str, set: Mapping[str, str] | None = None,  # noqa: A002
                                   delete: Iterable[str] | None = None, incremental: bool = True,
                                   validate_only: bool = False) -> None: ...

    async def restore_cluster_id(self, cluster_id: str) -> None:
        """After a destroyed journal: answer clients with the cluster id they knew."""
        ...


class CoordinatorAPI(TopicAdmin, Protocol):
    """The coordinator as one broker uses it: its session (start registers, stop unregisters),
    producer id blocks, and typed notice of every metadata change."""

    broker_epoch: int
    cluster_changed_at: float | None   # monotonic time the coordinator's journal was replaced

    @property
    def connected(self) -> bool: ...

    async def start(self, broker_id: int, host: str, port: int, rack: str | None = None, *,
                    listeners: Iterable[tuple[str, str, int]] | None = None,
                    timeout: float = 30.0) -> int: ...

    async def stop(self) -> None: ...

    def close(self) -> None: ...

    async def journal_still_followed(self) -> bool:
        """False if the coordinator now serves another journal than the one this broker's
        metadata is of (it was replaced and the broker has not seen it yet)."""
        ...

    async def allocate_producer_ids(self, count: int = 1000) -> int: ...

    async def alter_partition(self, broker_id: int, topic_id: uuid.UUID, index: int, leader_epoch: int,
                              partition_epoch: int, new_isr: list[int]) -> tuple[int, PartitionInfo | None]:
        """A partition leader's ISR change (AlterPartition): (error code, the partition afterwards)."""
        ...

    def lease_valid(self) -> bool:
        """Whether this broker may still act as a leader: the coordinator cannot have fenced it."""
        ...

    def watch(self, callback: ChangeListener) -> Callable[[], None]:
        """Call `callback(changes)` after each change this view applies; returns an unsubscribe."""
        ...


class ViewReads:
    """The MetadataView reads, answered by `self._view` (a Coordinator or a MetadataMachine):
    written once for both implementations."""

    @property
    def _view(self) -> Any:
        raise NotImplementedError

    @property
    def cluster_id(self) -> str:
        """The journal's history id (brokers following another history start over)."""
        return self._view.cluster_id

    @property
    def public_cluster_id(self) -> str:
        """The cluster id clients are told (see MetadataMachine.public_cluster_id)."""
        return self._view.public_cluster_id

    @property
    def metadata_offset(self) -> int:
        return self._view.metadata_offset

    def state(self) -> ClusterState:
        return self._view.state()

    def topic(self, name: str) -> TopicInfo | None:
        return self._view.topic(name)

    def partition_count(self, name: str) -> int:
        return self._view.partition_count(name)

    def topic_by_id(self, topic_id: uuid.UUID) -> TopicInfo | None:
        return self._view.topic_by_id(topic_id)

    def topic_deleted(self, topic_id: uuid.UUID) -> bool:
        return self._view.topic_deleted(topic_id)

    def topics(self) -> list[TopicInfo]:
        return self._view.topics()

    def brokers(self) -> list[BrokerInfo]:
        return self._view.brokers()

    def broker(self, broker_id: int) -> BrokerInfo | None:
        return self._view.broker(broker_id)

    def describe_configs(self, name: str) -> dict[str, tuple[str, bool]]:
        return self._view.describe_configs(name)

    def group_configs(self, group: str) -> dict[str, str]:
        return self._view.group_configs(group)

    def describe_group_configs(self, group: str) -> dict[str, tuple[str, bool]]:
        return self._view.describe_group_configs(group)

    def configured_groups(self) -> list[str]:
        return self._view.configured_groups()

    def broker_configs(self) -> dict[str, dict[str, str]]:
        return self._view.broker_configs()

    def scram_credentials(self, users: list[str] | None) -> list[dict]:
        return self._view.scram_credentials(users)

    def scram_credential(self, user: str, mechanism: int) -> dict | None:
        return self._view.scram_credential(user, mechanism)

    def acls(self) -> dict:
        return self._view.acls()

    @property
    def acl_version(self) -> int:
        return self._view.acl_version

    def client_quotas(self) -> dict:
        return self._view.client_quotas()

    def finalized_features(self) -> dict[str, int]:
        return self._view.finalized_features()
