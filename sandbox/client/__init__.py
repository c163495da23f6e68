"""A small blocking Kafka admin/probe client over sandbox.protocol (no typer, rich or services), and
the one async connection services use to talk to each other (async_connection)."""

from .connection import parse_bootstrap
from .kafka import KafkaClient, decode_assignment
from .models import (BrokerMeta, ClusterMetadata, GroupDescription, GroupListing, GroupMember,
                     KafkaClientError, PartitionLag, PartitionMeta, TopicMeta, TransactionInfo, error_name)

__all__ = [
    "KafkaClient", "KafkaClientError", "ClusterMetadata", "TopicMeta", "PartitionMeta",
    "BrokerMeta", "GroupListing", "GroupDescription", "GroupMember", "PartitionLag", "TransactionInfo",
    "decode_assignment", "error_name", "parse_bootstrap",
]
