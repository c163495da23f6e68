"""The coordinator's data model: immutable broker/partition/topic/cluster values, their JSON
forms (used by journal records and snapshots) and CoordinatorError (its codes: sandbox.protocol.errors).
"""
from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass, field
from typing import Any, Mapping

from sandbox.protocol.errors import NONE

NO_LEADER = -1


class CoordinatorError(Exception):
    """A request the coordinator refuses, with the Kafka error code to answer it with."""

    def __init__(self, error_code: int, message: str) -> None:
        super().__init__(message)
        self.error_code = error_code
        self.message = message

    def __repr__(self) -> str:
        return f"CoordinatorError({self.error_code}, {self.message!r})"


@dataclass(frozen=True)
class BrokerInfo:
    """A registered broker. host/port is its primary (first) listener's advertised address;
    `listeners` maps every listener name to its advertised (host, port), in registration order
    (empty for a broker registered before listeners were journaled). `offline`: the partitions
    (topic id, index) whose log this broker reported it cannot open (KIP-858's offline log dirs,
    per partition here: see offline_dir_id); its replicas of them are not eligible."""

    broker_id: int
    host: str
    port: int
    rack: str | None
    incarnation_id: uuid.UUID
    epoch: int
    fenced: bool
    listeners: dict[str, tuple[str, int]] = field(default_factory=dict)
    offline: frozenset[tuple[uuid.UUID, int]] = frozenset()

    def __post_init__(self) -> None:
        object.__setattr__(self, "listeners", {str(k): (str(v[0]), int(v[1]))
                                               for k, v in self.listeners.items()})
        object.__setattr__(self, "offline", frozenset((uuid.UUID(str(t)), int(i)) for t, i in self.offline))

    def __hash__(self) -> int:
        return hash((self.broker_id, self.host, self.port, self.rack, self.incarnation_id,
                     self.epoch, self.fenced, tuple(self.listeners.items()), self.offline))

    def is_offline(self, topic_id: uuid.UUID, index: int) -> bool:
        """Whether this broker's log of the partition cannot be opened (it reported so)."""
        return bool(self.offline) and (topic_id, index) in self.offline

    def address(self, listener: str | None = None) -> tuple[str, int]:
        """The (host, port) clients that came in through `listener` must use; the primary
        address when the name is None or this broker has no listener of that name."""
        if listener is not None and listener in self.listeners:
            return self.listeners[listener]
        return (self.host, self.port)

    def to_dict(self) -> dict[str, Any]:
        return {"broker_id": self.broker_id, "host": self.host, "port": self.port,
                "rack": self.rack, "incarnation_id": str(self.incarnation_id),
                "epoch": self.epoch, "fenced": self.fenced,
                "listeners": {name: [h, p] for name, (h, p) in self.listeners.items()},
                **({"offline": offline_json(self.offline)} if self.offline else {})}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> BrokerInfo:
        return cls(int(d["broker_id"]), str(d["host"]), int(d["port"]), d.get("rack"),
                   uuid.UUID(d["incarnation_id"]), int(d["epoch"]), bool(d["fenced"]),
                   dict(d.get("listeners") or {}), frozenset(map(tuple, d.get("offline") or ())))


def offline_json(keys) -> list[list]:
    """(topic id, index) pairs as JSON, sorted."""
    return [[str(t), int(i)] for t, i in sorted(keys, key=lambda k: (str(k[0]), k[1]))]


@dataclass(frozen=True, eq=True)
class OfflineReplicas:
    """Metadata's offline_replicas, as Kafka's metadata cache gives them: the replicas on brokers
    not registered or fenced, and those whose broker reported their log unopenable (KIP-858)."""

    alive: frozenset[int]
    reported: dict   # (topic id, index) -> the brokers that reported that partition's log offline

    def of(self, topic_id: uuid.UUID, p) -> tuple[int, ...]:
        bad = self.reported.get((topic_id, p.index), ()) if self.reported else ()
        return tuple(r for r in p.replicas if r not in self.alive or r in bad)


def offline_replicas(brokers) -> OfflineReplicas:
    """The OfflineReplicas of the registered brokers' records."""
    reported: dict[tuple[uuid.UUID, int], tuple[int, ...]] = {}
    alive = set()
    for b in brokers:
        if not getattr(b, "fenced", False):
            alive.add(b.broker_id)
        for key in getattr(b, "offline", ()):
            reported[key] = reported.get(key, ()) + (b.broker_id,)
    return OfflineReplicas(frozenset(alive), reported)


def offline_dir_id(topic_id: uuid.UUID, index: int) -> uuid.UUID:
    """The id a broker reports in BrokerHeartbeat's OfflineLogDirs (KIP-858) for one partition
    whose log it cannot open: Kafka fails a whole log dir, a broker here one partition's folder
    (a file of it held by another program), so each partition folder counts as a dir of its own."""
    return uuid.uuid5(topic_id, str(index))


@dataclass(frozen=True)
class PartitionInfo:
    """One partition's replicas, ISR, leader and epochs. While a reassignment runs (KIP-455),
    `replicas` is the target followed by the replicas being removed, `adding` the target replicas
    not yet in sync and `removing` the ones that go once every target replica is in the ISR."""

    index: int
    replicas: tuple[int, ...]
    isr: tuple[int, ...]
    leader: int = NO_LEADER
    leader_epoch: int = 0
    partition_epoch: int = 0
    adding: tuple[int, ...] = ()
    removing: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "replicas", tuple(self.replicas))
        object.__setattr__(self, "isr", tuple(self.isr))
        object.__setattr__(self, "adding", tuple(self.adding))
        object.__setattr__(self, "removing", tuple(self.removing))

    @property
    def reassigning(self) -> bool:
        return bool(self.adding or self.removing)

    @property
    def target(self) -> tuple[int, ...]:
        """The replicas once a running reassignment completes (the replicas when none runs)."""
        return tuple(r for r in self.replicas if r not in self.removing)

    @property
    def original(self) -> tuple[int, ...]:
        """The replicas before a running reassignment (what cancelling it goes back to)."""
        return tuple(r for r in self.replicas if r not in self.adding)

    def to_dict(self) -> dict[str, Any]:
        d = {"index": self.index, "replicas": list(self.replicas), "isr": list(self.isr),
             "leader": self.leader, "leader_epoch": self.leader_epoch,
             "partition_epoch": self.partition_epoch}
        if self.reassigning:   # absent otherwise: journals written before reassignment read the same
            d["adding"], d["removing"] = list(self.adding), list(self.removing)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> PartitionInfo:
        return cls(int(d["index"]), tuple(int(r) for r in d["replicas"]),
                   tuple(int(r) for r in d["isr"]), int(d["leader"]),
                   int(d["leader_epoch"]), int(d["partition_epoch"]),
                   tuple(int(r) for r in d.get("adding") or ()),
                   tuple(int(r) for r in d.get("removing") or ()))

    def change(self, topic_id: Any, **fields: Any) -> dict[str, Any]:
        """A partition-change record: this partition with `fields` changed (the reassignment
        carried over unless changed), partition epoch + 1."""
        after = dataclasses.replace(self, partition_epoch=self.partition_epoch + 1, **fields)
        return {"type": "partition-change", "topic_id": str(topic_id), **after.to_dict()}


# Kafka's internal topics (Topic.INTERNAL_TOPICS): named here, beside the flag, as the client
# package names them too (sandbox.client.partitioner)
INTERNAL_TOPICS = frozenset({"__consumer_offsets", "__transaction_state"})


@dataclass(frozen=True)
class TopicInfo:
    """A topic. `configs` holds only the explicitly set (non-default) configs; every
    TopicInfo gets its own copy of the dict, so mutating it never reaches the coordinator."""

    name: str
    topic_id: uuid.UUID
    partitions: tuple[PartitionInfo, ...]
    configs: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "partitions", tuple(self.partitions))
        object.__setattr__(self, "configs", dict(self.configs))

    __hash__ = None  # type: ignore[assignment]  # holds a dict

    @property
    def internal(self) -> bool:
        """Kafka's Topic.isInternal: only the two topics its coordinators keep their state in; a
        user's topic named `__x` is an ordinary one (listed, is_internal false)."""
        return self.name in INTERNAL_TOPICS

    @property
    def replication_factor(self) -> int:
        return len(self.partitions[0].replicas) if self.partitions else 0

    def copy(self) -> TopicInfo:
        return dataclasses.replace(self)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "topic_id": str(self.topic_id),
                "partitions": [p.to_dict() for p in self.partitions],
                "configs": dict(self.configs)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TopicInfo:
        return cls(str(d["name"]), uuid.UUID(d["topic_id"]),
                   tuple(PartitionInfo.from_dict(p) for p in d["partitions"]),
                   {str(k): str(v) for k, v in d["configs"].items()})


@dataclass(frozen=True)
class ClusterState:
    """The whole journaled state. `metadata_offset` = number of records applied so far (the
    offset the next record gets)."""

    cluster_id: str | None
    brokers: dict[int, BrokerInfo]
    topics: dict[str, TopicInfo]
    next_producer_id: int
    metadata_offset: int
    quotas: list = field(default_factory=list)     # client quotas in their JSON form (quotas.py)
    features: dict = field(default_factory=dict)   # feature levels set by UpdateFeatures
    group_configs: dict = field(default_factory=dict)   # group id -> its config overrides (KIP-848)
    scram: dict = field(default_factory=dict)   # SCRAM credentials in their JSON form (scram.py)
    public_cluster_id: str | None = None   # the id clients are told, when not cluster_id (a restore's)
    acls: list = field(default_factory=list)   # ACL bindings in their JSON form (acls.py)
    broker_configs: dict = field(default_factory=dict)   # "" or broker id -> dynamic settings (KIP-226)
    deleted_topic_ids: list = field(default_factory=list)   # ids (str) deleted under this history

    __hash__ = None  # type: ignore[assignment]

    def to_dict(self) -> dict[str, Any]:
        out = {"cluster_id": self.cluster_id,
               "brokers": [b.to_dict() for _, b in sorted(self.brokers.items())],
               "topics": [t.to_dict() for _, t in sorted(self.topics.items())],
               "next_producer_id": self.next_producer_id,
               "metadata_offset": self.metadata_offset}
        if self.quotas:
            out["quotas"] = list(self.quotas)
        if self.features:
            out["features"] = dict(sorted(self.features.items()))
        if self.group_configs:
            out["group_configs"] = {g: dict(c) for g, c in sorted(self.group_configs.items())}
        if self.scram:
            out["scram"] = dict(self.scram)
        if self.public_cluster_id:
            out["public_cluster_id"] = self.public_cluster_id
        if self.acls:
            out["acls"] = list(self.acls)
        if self.broker_configs:
            out["broker_configs"] = {b: dict(c) for b, c in sorted(self.broker_configs.items())}
        if self.deleted_topic_ids:
            out["deleted_topic_ids"] = list(self.deleted_topic_ids)
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ClusterState:
        brokers = {b.broker_id: b for b in map(BrokerInfo.from_dict, d["brokers"])}
        topics = {t.name: t for t in map(TopicInfo.from_dict, d["topics"])}
        return cls(d["cluster_id"], brokers, topics, int(d["next_producer_id"]),
                   int(d["metadata_offset"]), list(d.get("quotas") or ()),
                   {str(k): int(v) for k, v in (d.get("features") or {}).items()},
                   {str(g): {str(k): str(v) for k, v in c.items()} for g, c in (d.get("group_configs") or {}).items()},
                   dict(d.get("scram") or {}), d.get("public_cluster_id") or None, list(d.get("acls") or ()),
                   {str(b): {str(k): str(v) for k, v in c.items()} for b, c in (d.get("broker_configs") or {}).items()},
                   [str(i) for i in d.get("deleted_topic_ids") or ()])


@dataclass(frozen=True)
class NewTopic:
    """One topic of a create_topics request. -1 means the broker default."""

    name: str
    num_partitions: int = -1
    replication_factor: int = -1
    configs: Mapping[str, str] | None = None
    assignments: Any = None


@dataclass(frozen=True)
class TopicResult:
    """Per-topic outcome of create_topics: error_code 0 and `topic` set on success."""

    name: str
    error_code: int = NONE
    error_message: str | None = None
    topic: TopicInfo | None = None

    __hash__ = None  # type: ignore[assignment]
