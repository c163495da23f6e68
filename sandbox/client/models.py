"""What the sandbox client returns: plain dataclasses and named tuples, and its one exception."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import NamedTuple

from kio.schema.errors import ErrorCode


def error_name(code: int | None) -> str:
    """Kafka's name of an error code (e.g. 36 -> TOPIC_ALREADY_EXISTS)."""
    try:
        return ErrorCode(int(code)).name.upper()
    except (TypeError, ValueError):
        return f"ERROR_{code}"


class KafkaClientError(Exception):
    """A failed request or connection; `error_code` is Kafka's when the broker sent one."""

    def __init__(self, message: str, error_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.error_code = None if error_code is None else int(error_code)

    @property
    def error_name(self) -> str | None:
        return None if self.error_code is None else error_name(self.error_code)


class BrokerMeta(NamedTuple):
    id: int
    host: str
    port: int


@dataclass(frozen=True)
class PartitionMeta:
    index: int
    leader: int
    replicas: list[int]
    isr: list[int]
    leader_epoch: int = -1
    error_code: int = 0
    # Metadata v5+: replicas on brokers that are gone, or whose log of it cannot be opened
    offline_replicas: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class TopicMeta:
    name: str
    topic_id: uuid.UUID | None
    partitions: list[PartitionMeta]
    internal: bool = False
    error_code: int = 0


@dataclass(frozen=True)
class ClusterMetadata:
    cluster_id: str | None
    controller_id: int
    brokers: list[BrokerMeta]
    topics: dict[str, TopicMeta] = field(default_factory=dict)


class GroupListing(NamedTuple):
    group: str
    state: str
    protocol_type: str


@dataclass(frozen=True)
class GroupMember:
    member_id: str
    client_id: str
    client_host: str
    group_instance_id: str | None
    assignment: dict[str, list[int]]   # decoded consumer-protocol assignment (topic -> partitions)


@dataclass(frozen=True)
class GroupDescription:
    group: str
    state: str
    protocol_type: str
    protocol: str
    members: list[GroupMember]
    error_code: int = 0
    group_type: str = "classic"        # "consumer" for KIP-848 groups (ConsumerGroupDescribe)
    epoch: int | None = None           # their group epoch


class PartitionLag(NamedTuple):
    topic: str
    partition: int
    committed: int
    end: int | None   # None: its leader was not asked (known not to answer)
    lag: int | None


class TransactionInfo(NamedTuple):
    transactional_id: str
    state: str                          # Ongoing, PrepareCommit, ... as DescribeTransactions names it
    producer_id: int
    producer_epoch: int
    timeout_ms: int
    start_time_ms: int                  # the coordinator's clock; -1 before the first partition
    partitions: list[tuple[str, int]]


class Fetched(NamedTuple):
    """One partition of KafkaClient.fetch."""
    records: list                       # sandbox.protocol.records.Record
    end: int                            # high watermark (read_committed: last stable offset); -1 unknown
    next_offset: int                    # where to fetch next: past markers and skipped batches too
