"""sandbox/coordinator: cluster metadata (brokers, topics, partitions, leaders), broker
liveness and placement, kept in a journaled, deterministic state machine."""
from .controller import Coordinator, new_cluster_id
from .journal import JournalCorruptError, JournalLockedError, MetadataJournal
from .machine import MetadataMachine
from .model import (
    BrokerInfo, ClusterState, CoordinatorError, NewTopic, PartitionInfo, TopicInfo, TopicResult,
)
from .topic_configs import DEFAULTS as TOPIC_CONFIG_DEFAULTS

__all__ = [
    "BrokerInfo", "ClusterState", "Coordinator", "CoordinatorError", "JournalCorruptError",
    "JournalLockedError", "MetadataJournal", "MetadataMachine", "NewTopic", "PartitionInfo",
    "TOPIC_CONFIG_DEFAULTS", "TopicInfo", "TopicResult", "new_cluster_id",
]
