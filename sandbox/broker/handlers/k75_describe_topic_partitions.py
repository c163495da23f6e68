"""DescribeTopicPartitions (75), v0: what Kafka 4's `kafka-topics --describe` asks. Topics sorted
by name, partitions from the cursor on, at most min(response_partition_limit, 2000) partitions
per answer; next_cursor names the first partition left out (a topic none of whose partitions fit
is left out whole and the cursor points at its partition 0). An empty topic list means every
topic Metadata lists; a cursor whose topic is not among the named ones is INVALID_REQUEST for
every topic, as Kafka answers an InvalidRequestException here.
"""

from __future__ import annotations

from sandbox.coordinator.acls import DESCRIBE, TOPIC
from sandbox.protocol.errors import TOPIC_AUTHORIZATION_FAILED
import uuid

from sandbox.coordinator import CoordinatorError
from sandbox.coordinator.model import INTERNAL_TOPICS, OfflineReplicas, offline_replicas
from sandbox.coordinator.rules import validate_topic_name

from ..internal_topics import listed_topics, lookup_topic
from sandbox.protocol.errors import (
    INVALID_REQUEST, INVALID_TOPIC_EXCEPTION, NONE, UNKNOWN_AUTHORIZED_OPERATIONS, UNKNOWN_TOPIC_OR_PARTITION,
)

API_KEY = 75
MIN_VERSION = 0
MAX_VERSION = 0
MAX_PARTITIONS = 2000   # Kafka's max.request.partition.size.limit default
ZERO_UUID = uuid.UUID(int=0)


def _missing(name: str, code: int) -> dict:
    return {"error_code": code, "name": name, "topic_id": ZERO_UUID, "is_internal": name in INTERNAL_TOPICS,
            "partitions": (), "topic_authorized_operations": UNKNOWN_AUTHORIZED_OPERATIONS}


def _partition(topic_id, p, offline: OfflineReplicas) -> dict:
    return {"error_code": NONE, "partition_index": p.index,
            "leader_id": p.leader if p.leader in offline.alive else -1,
            "leader_epoch": p.leader_epoch, "replica_nodes": tuple(p.replicas), "isr_nodes": tuple(p.isr),
            "eligible_leader_replicas": (), "last_known_elr": (), "offline_replicas": offline.of(topic_id, p)}


def _unknown_code(name: str) -> int:
    try:
        validate_topic_name(name)
    except CoordinatorError:
        return INVALID_TOPIC_EXCEPTION
    return UNKNOWN_TOPIC_OR_PARTITION


def handle(ctx, request) -> dict:
    state = ctx.state
    cursor = request.cursor
    cursor_topic = cursor.topic_name if cursor is not None else ""
    fetch_all = not request.topics
    if fetch_all:   # ACLs: only the topics the principal may DESCRIBE
        names = sorted(t.name for t in listed_topics(state) if t.name >= cursor_topic and
                       (not ctx.restricted or ctx.allowed(DESCRIBE, TOPIC, t.name, report=False)))
    else:
        names = sorted({t.name for t in request.topics if t.name >= cursor_topic})
        if cursor is not None and cursor.topic_name not in names:
            return {"throttle_time": 0, "next_cursor": None, "topics": [
                _missing(t.name, INVALID_REQUEST) for t in request.topics]}
    offline = offline_replicas(state.brokers_to_list())
    remaining = min(MAX_PARTITIONS, request.response_partition_limit)
    topics, next_cursor = [], None
    for name in names:
        if remaining <= 0:
            next_cursor = {"topic_name": name, "partition_index": 0}
            break
        if ctx.restricted and not ctx.allowed(DESCRIBE, TOPIC, name):
            topics.append(_missing(name, TOPIC_AUTHORIZATION_FAILED))
            continue
        t = lookup_topic(state, name)
        if t is None:
            if not fetch_all:
                topics.append(_missing(name, _unknown_code(name)))
            continue
        start = cursor.partition_index if cursor is not None and name == cursor.topic_name else 0
        upper = min(len(t.partitions), start + remaining)
        parts = [_partition(t.topic_id, p, offline) for p in t.partitions[max(start, 0):upper]]
        topics.append({"error_code": NONE, "name": t.name, "topic_id": t.topic_id, "is_internal": t.internal,
                       "partitions": parts, "topic_authorized_operations": ctx.operations(TOPIC, t.name)})
        if upper < len(t.partitions):
            next_cursor = {"topic_name": name, "partition_index": upper}
            break
        remaining -= len(parts)
    return {"throttle_time": 0, "topics": topics, "next_cursor": next_cursor}
