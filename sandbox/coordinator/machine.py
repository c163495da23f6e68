"""MetadataMachine: the pure, deterministic cluster metadata state machine. Command methods
validate and return journal records; apply() is the only way state changes. No I/O, no clock.
"""
from __future__ import annotations

import dataclasses
import itertools
import re
import uuid
from typing import Any, Iterable, Mapping

from . import acls, broker_configs, features, group_configs, quotas, scram, topic_configs
from .elections import Draft
from sandbox.protocol.errors import INVALID_REQUEST
from .broker_sessions import BrokerSessions
from .topic_changes import TopicChanges
from .model import BrokerInfo, ClusterState, CoordinatorError, PartitionInfo, TopicInfo

MAX_DELETED_IDS = 10_000   # topic ids deleted under a history that the metadata remembers
CLUSTER_ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")   # Kafka's are 22 base64url characters

Record = dict[str, Any]
# ACL versions unique across every machine of the process: a broker's mirror replaced by a fresh one
# (a resync) never shows the version its authorizer was built at
_ACL_VERSIONS = itertools.count(1)


class MetadataMachine(TopicChanges, BrokerSessions):
    """Cluster metadata. Broker sessions (last heartbeat times) are soft state: kept in memory,
    never journaled, and not part of state(); a restored broker's session starts at the first
    fence_expired() call after the restore."""

    def __init__(self, *, default_partitions: int = 1, default_replication_factor: int = 1,
                 min_insync_replicas: int = 1) -> None:
        if default_partitions < 1 or default_replication_factor < 1 or min_insync_replicas < 1:
            raise ValueError("default_partitions, default_replication_factor and "
                             "min_insync_replicas must be >= 1")
        self.default_partitions = default_partitions   # the stack's defaults (sandbox.toml):
        self.default_replication_factor = default_replication_factor   # for replication -1
        self.min_insync_replicas = min_insync_replicas   # written into new topics' configs
        self._cluster_id: str | None = None   # this journal's history: a fresh journal, a new id
        self._public_id: str | None = None    # the id clients see, when it is not that one
        self._brokers: dict[int, BrokerInfo] = {}
        self._topics: dict[str, TopicInfo] = {}
        self._ids: dict[uuid.UUID, str] = {}
        self._deleted: dict[uuid.UUID, None] = {}   # topic ids deleted under this history, oldest first
        self._next_pid = 0
        self._offset = 0
        self._quotas: quotas.Quotas = {}
        self._features: dict[str, int] = {}
        self._group_configs: group_configs.Configs = {}
        self._broker_configs: broker_configs.Configs = {}
        self._scram: scram.Credentials = {}
        self._acls: acls.Acls = {}
        self._acl_version = next(_ACL_VERSIONS)   # changes with every ACL change: brokers rebuild their authorizer
        self._last_contact: dict[int, int] = {}
        self._live: set[int] = set()  # sessions opened by this process (register/heartbeat)

    # ----------------------------------------------------------------- queries
    @property
    def cluster_id(self) -> str | None:
        """The id of this journal's history: brokers following another history start over."""
        return self._cluster_id

    @property
    def public_cluster_id(self) -> str | None:
        """The cluster id clients are told (Metadata, DescribeCluster): the history's own, or the
        one a destroyed journal had, put back by the supervisor's restore."""
        return self._public_id or self._cluster_id

    @property
    def metadata_offset(self) -> int:
        return self._offset

    @property
    def next_producer_id(self) -> int:
        return self._next_pid

    def state(self) -> ClusterState:
        return ClusterState(self._cluster_id, dict(self._brokers),
                            {n: t.copy() for n, t in self._topics.items()},
                            self._next_pid, self._offset, quotas.to_json(self._quotas),
                            dict(self._features), _copy(self._group_configs), scram.to_json(self._scram),
                            self._public_id, acls.to_json(self._acls), _copy(self._broker_configs),
                            list(map(str, self._deleted)))

    def restore(self, state: ClusterState | Mapping[str, Any]) -> None:
        """Replace the whole state with a snapshot (a ClusterState or its to_dict() form)."""
        if not isinstance(state, ClusterState):
            state = ClusterState.from_dict(state)
        self._cluster_id = state.cluster_id
        self._public_id = state.public_cluster_id
        self._brokers = dict(state.brokers)
        self._topics = {n: t.copy() for n, t in state.topics.items()}
        self._ids = {t.topic_id: n for n, t in self._topics.items()}
        self._deleted = dict.fromkeys(map(uuid.UUID, state.deleted_topic_ids))
        self._next_pid = state.next_producer_id
        self._offset = state.metadata_offset
        self._quotas = quotas.from_json(state.quotas)
        self._features = dict(state.features)
        self._group_configs = _copy(state.group_configs)
        self._broker_configs = _copy(state.broker_configs)
        self._scram = scram.from_json(state.scram)
        self._acls = acls.from_json(state.acls)
        self._acl_version = next(_ACL_VERSIONS)
        self._last_contact.clear()
        self._live.clear()

    def topic(self, name: str) -> TopicInfo | None:
        return t.copy() if (t := self._topics.get(name)) else None

    def partition_count(self, name: str) -> int:
        """The topic's partitions, 0 without it: no copy of its metadata (asked per request)."""
        return len(t.partitions) if (t := self._topics.get(name)) else 0

    def topic_by_id(self, topic_id: uuid.UUID) -> TopicInfo | None:
        return self.topic(name) if (name := self._ids.get(topic_id)) is not None else None

    def topic_deleted(self, topic_id: uuid.UUID) -> bool:
        """Whether a topic of this id was deleted under this journal's history (and not made again)."""
        return topic_id in self._deleted

    def topics(self) -> list[TopicInfo]:
        return [self._topics[n].copy() for n in sorted(self._topics)]

    def broker(self, broker_id: int) -> BrokerInfo | None:
        return self._brokers.get(broker_id)

    def brokers(self) -> list[BrokerInfo]:
        return [self._brokers[b] for b in sorted(self._brokers)]

    def unfenced_brokers(self) -> list[int]:
        return sorted(b for b, info in self._brokers.items() if not info.fenced)

    def client_quotas(self) -> quotas.Quotas:
        return {e: dict(v) for e, v in self._quotas.items()}

    def finalized_features(self) -> dict[str, int]:
        return features.finalized(self._features)

    def describe_configs(self, name: str) -> dict[str, tuple[str, bool]]:
        """Every known topic config -> (value, is_default)."""
        topic = self._require_topic(name)
        out = {k: (v, True) for k, v in topic_configs.DEFAULTS.items()}
        out.update({k: (v, False) for k, v in topic.configs.items()})
        return dict(sorted(out.items()))

    def group_configs(self, group: str) -> dict[str, str]:
        """The config overrides set on a group (KIP-848 group configs), {} without any."""
        return dict(self._group_configs.get(group, {}))

    def configured_groups(self) -> list[str]:
        """The group ids that have group configs set (ListConfigResources)."""
        return sorted(g for g, c in self._group_configs.items() if c)

    def broker_configs(self) -> broker_configs.Configs:
        """The dynamic broker settings (KIP-226): "" (every broker) or a broker id -> settings."""
        return _copy(self._broker_configs)

    def describe_group_configs(self, group: str) -> dict[str, tuple[str, bool]]:
        """Every group config -> (value, is_default), for any group id (as Kafka describes them)."""
        return group_configs.described(self._group_configs.get(group, {}))

    def scram_credentials(self, users: list[str] | None) -> list[dict]:
        """DescribeUserScramCredentials results (mechanisms and iterations; keys never leave)."""
        return scram.described(self._scram, users)

    def scram_credential(self, user: str, mechanism: int) -> dict | None:
        """One user's credential of a mechanism (1 SCRAM-SHA-256, 2 SCRAM-SHA-512): iterations,
        salt, stored key and server key (hex), as a broker's SASL listener checks a login; None without one."""
        return self._scram.get(user, {}).get(mechanism)

    def acls(self) -> acls.Acls:
        """The ACL bindings (read only: callers must not change it)."""
        return self._acls

    @property
    def acl_version(self) -> int:
        """Changes whenever the ACLs may have: an authorizer built at one version stays right until then."""
        return self._acl_version

    # ----------------------------------------------------------------- apply
    def apply(self, record: Mapping[str, Any]) -> None:
        """Apply one journal record. Raises ValueError/KeyError on a record that does not fit."""
        kind = record["type"]
        handler = _APPLY.get(kind)
        if handler is None:
            raise ValueError(f"unknown metadata record type {kind!r}")
        handler(self, record)
        self._offset += 1

    def _apply_cluster(self, r: Mapping[str, Any]) -> None:
        self._cluster_id = str(r["cluster_id"])

    def _apply_public_cluster_id(self, r: Mapping[str, Any]) -> None:
        self._public_id = str(r["cluster_id"])

    def _apply_register(self, r: Mapping[str, Any]) -> None:
        info = BrokerInfo.from_dict({**r, "fenced": False})
        old = self._brokers.get(info.broker_id)
        if old is not None and old.offline:   # kept until its next heartbeat tells again
            info = dataclasses.replace(info, offline=old.offline)
        self._brokers[info.broker_id] = info

    def _apply_offline(self, r: Mapping[str, Any]) -> None:
        bid = int(r["broker_id"])
        self._brokers[bid] = dataclasses.replace(self._brokers[bid], offline=frozenset(map(tuple, r["partitions"])))

    def _apply_fence(self, r: Mapping[str, Any], fenced: bool = True) -> None:
        bid = int(r["broker_id"])
        self._brokers[bid] = dataclasses.replace(self._brokers[bid], fenced=fenced)

    def _apply_unfence(self, r: Mapping[str, Any]) -> None:
        self._apply_fence(r, fenced=False)

    def _apply_topic(self, r: Mapping[str, Any]) -> None:
        name, tid = str(r["name"]), uuid.UUID(r["topic_id"])
        if name in self._topics or tid in self._ids:
            raise ValueError(f"topic {name} already exists")
        self._topics[name] = TopicInfo(name, tid, (), dict(r.get("configs") or {}))
        self._ids[tid] = name
        self._deleted.pop(tid, None)

    def _apply_partition(self, r: Mapping[str, Any]) -> None:
        t = self._topics[self._ids[uuid.UUID(r["topic_id"])]]
        p = PartitionInfo.from_dict(r)
        if p.index != len(t.partitions):
            raise ValueError(f"partition {p.index} of {t.name} is out of order")
        self._topics[t.name] = TopicInfo(t.name, t.topic_id, t.partitions + (p,), t.configs)

    def _apply_partition_change(self, r: Mapping[str, Any]) -> None:
        t = self._topics[self._ids[uuid.UUID(r["topic_id"])]]
        p = PartitionInfo.from_dict(r)
        parts = list(t.partitions)
        parts[p.index] = p  # IndexError for an unknown partition
        self._topics[t.name] = TopicInfo(t.name, t.topic_id, tuple(parts), t.configs)

    def _apply_remove_topic(self, r: Mapping[str, Any]) -> None:
        tid = uuid.UUID(r["topic_id"])
        del self._topics[self._ids.pop(tid)]
        self._deleted[tid] = None
        while len(self._deleted) > MAX_DELETED_IDS:   # bounded: a broker down for that many deletions
            del self._deleted[next(iter(self._deleted))]

    def _apply_config(self, r: Mapping[str, Any]) -> None:
        t = self._topics[self._ids[uuid.UUID(r["topic_id"])]]
        self._topics[t.name] = TopicInfo(t.name, t.topic_id, t.partitions, dict(r["configs"]))

    def _apply_producer_ids(self, r: Mapping[str, Any]) -> None:
        nxt = int(r["next_producer_id"])
        if nxt < self._next_pid:
            raise ValueError("producer id counter cannot go backwards")
        self._next_pid = nxt

    def _apply_quota(self, r: Mapping[str, Any]) -> None:
        quotas.apply(self._quotas, r)

    def _apply_feature(self, r: Mapping[str, Any]) -> None:
        features.apply(self._features, r)

    def _apply_group_config(self, r: Mapping[str, Any]) -> None:
        group_configs.apply(self._group_configs, r)

    def _apply_broker_config(self, r: Mapping[str, Any]) -> None:
        broker_configs.apply(self._broker_configs, r)

    def _apply_scram(self, r: Mapping[str, Any]) -> None:
        scram.apply(self._scram, r)

    def _apply_acl(self, r: Mapping[str, Any]) -> None:
        acls.apply(self._acls, r)
        self._acl_version = next(_ACL_VERSIONS)

    # ----------------------------------------------------------------- commands
    def alter_client_quotas(self, entries: Any) -> tuple[list[Record], list[tuple[int, str | None]]]:
        """AlterClientQuotas: records and one (error code, message) per entry (quotas.py)."""
        return quotas.alterations(self._quotas, entries)

    def update_features(self, wanted: Any) -> tuple[list[Record], dict[str, tuple[int, str | None]]]:
        """UpdateFeatures: records and (error code, message) per feature (features.py)."""
        return features.updates(self._features, wanted)

    def set_cluster_id(self, cluster_id: str) -> list[Record]:
        if self._cluster_id is not None:
            raise CoordinatorError(INVALID_REQUEST, "the cluster id is already set")
        return [{"type": "cluster", "cluster_id": cluster_id}]

    def restore_public_cluster_id(self, cluster_id: str) -> list[Record]:
        """After a destroyed journal: answer clients with the id they knew (a changed cluster id
        makes clients warn, and tools that keep it, such as Kafka Connect, may object). The
        supervisor's catalog is the authority: a later restore replaces an earlier one (refusing
        it would leave the restore, and with it the catalog's refreshes, pending for good)."""
        if not isinstance(cluster_id, str) or not CLUSTER_ID_PATTERN.fullmatch(cluster_id):
            raise CoordinatorError(INVALID_REQUEST, f"{cluster_id!r} is not a cluster id (1-64 letters, "
                                   "digits, '-' or '_')")
        if self.public_cluster_id == cluster_id:
            return []
        return [{"type": "public-cluster-id", "cluster_id": cluster_id}]

    def alter_group_configs(self, group: str, set: Mapping[str, str] | None = None,  # noqa: A002
                            delete: Iterable[str] | None = None, incremental: bool = True) -> list[Record]:
        """A GROUP resource's configs, as alter_configs does a topic's (group_configs.py)."""
        return group_configs.alteration(self._group_configs.get(group, {}), group, set, delete, incremental)

    def alter_broker_configs(self, name: str, set: Mapping[str, str] | None = None,  # noqa: A002
                             delete: Iterable[str] | None = None, incremental: bool = True) -> list[Record]:
        """A BROKER resource's dynamic settings ("" every broker, "N" broker N; broker_configs.py)."""
        return broker_configs.alteration(self._broker_configs.get(name, {}), name, set, delete, incremental,
                                         self._brokers)

    def alter_scram_credentials(self, deletions: Any, upsertions: Any) -> tuple[list[Record], list[scram.Result]]:
        """AlterUserScramCredentials: records and one (user, error code, message) per user (scram.py)."""
        return scram.alterations(self._scram, deletions, upsertions)

    def create_acls(self, bindings: list[acls.Binding]) -> tuple[list[Record], list[tuple[int, str | None]]]:
        """CreateAcls: records and one (error code, message) per binding (acls.py)."""
        return acls.creations(self._acls, bindings)

    def delete_acls(self, filters: list[acls.Filter]) -> tuple[list[Record], list[Any]]:
        """DeleteAcls: records and one (error code, message, bindings removed) per filter (acls.py)."""
        return acls.deletions(self._acls, filters)

    def allocate_producer_ids(self, count: int, floor: int = 0) -> list[Record]:
        """A block of `count` ids from the counter, or from `floor` if that is higher."""
        if not isinstance(count, int) or count < 1:
            raise CoordinatorError(INVALID_REQUEST, "producer id block size must be >= 1")
        return [{"type": "producer-ids", "next_producer_id": max(self._next_pid, floor) + count}]

    # ----------------------------------------------------------------- helpers
    def preview(self, records: Iterable[Mapping[str, Any]]) -> MetadataMachine:
        """A scratch copy with `records` applied (for validate-only requests)."""
        fork = self._fork()
        for record in records:
            fork.apply(record)
        return fork

    def _draft(self) -> Draft:
        return Draft(self)

    def _fork(self) -> MetadataMachine:
        m = MetadataMachine(default_partitions=self.default_partitions, min_insync_replicas=self.min_insync_replicas,
                            default_replication_factor=self.default_replication_factor)
        m._cluster_id, m._public_id = self._cluster_id, self._public_id
        m._next_pid, m._offset = self._next_pid, self._offset
        m._brokers, m._topics, m._ids = dict(self._brokers), dict(self._topics), dict(self._ids)
        m._deleted, m._quotas, m._features = dict(self._deleted), self.client_quotas(), dict(self._features)
        m._group_configs, m._broker_configs = _copy(self._group_configs), _copy(self._broker_configs)
        m._scram = scram.from_json(scram.to_json(self._scram))
        m._acls, m._acl_version = dict(self._acls), self._acl_version
        return m


_APPLY = {
    "cluster": MetadataMachine._apply_cluster,
    "public-cluster-id": MetadataMachine._apply_public_cluster_id,
    "register-broker": MetadataMachine._apply_register,
    "fence-broker": MetadataMachine._apply_fence,
    "unfence-broker": MetadataMachine._apply_unfence,
    "offline-replicas": MetadataMachine._apply_offline,
    "topic": MetadataMachine._apply_topic,
    "partition": MetadataMachine._apply_partition,
    "partition-change": MetadataMachine._apply_partition_change,
    "remove-topic": MetadataMachine._apply_remove_topic,
    "config": MetadataMachine._apply_config,
    "producer-ids": MetadataMachine._apply_producer_ids,
    "client-quota": MetadataMachine._apply_quota,
    "feature-level": MetadataMachine._apply_feature,
    "group-config": MetadataMachine._apply_group_config,
    "broker-config": MetadataMachine._apply_broker_config,
    "scram": MetadataMachine._apply_scram,
    "acl": MetadataMachine._apply_acl,
}


def _copy(configs: Mapping[str, Mapping[str, str]]) -> dict[str, dict[str, str]]:
    return {k: dict(c) for k, c in configs.items()}
