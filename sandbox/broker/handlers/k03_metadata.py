"""Metadata (3), v0-v13 (v13 adds a top-level error code, always NONE here): brokers, cluster id, topics with ids, partitions, leaders.

topics=None (v1+) or [] (v0) means all topics; unknown topics are auto-created when the
request and the broker allow it. Kafka's internal topics (`__consumer_offsets`,
`__transaction_state`) are listed once they exist, flagged is_internal (see internal_topics); a
user's topic whose name starts with `__` is an ordinary topic.
Brokers are listed with their addresses on the listener the request came in through.
"""

from __future__ import annotations

import uuid

from sandbox.coordinator import CoordinatorError
from sandbox.coordinator.acls import CLUSTER, CLUSTER_NAME, CREATE, DESCRIBE, TOPIC
from sandbox.coordinator.model import OfflineReplicas, offline_replicas
from sandbox.coordinator.rules import validate_topic_name
from sandbox.protocol.fast_metadata import encode_metadata_topic

from ..internal_topics import OFFSETS_TOPIC, TXN_TOPIC, listed_internal_topics, lookup_topic, lookup_topic_id
from sandbox.protocol.errors import (
    INVALID_TOPIC_EXCEPTION, LEADER_NOT_AVAILABLE, NONE, TOPIC_AUTHORIZATION_FAILED, UNKNOWN_TOPIC_ID,
    UNKNOWN_TOPIC_OR_PARTITION,
)
from ..endpoints import broker_list

API_KEY = 3
MIN_VERSION = 0
MAX_VERSION = 13
ZERO_UUID = uuid.UUID(int=0)
UNREQUESTED = -2147483648   # authorized operations not asked for (KIP-430)


def _topic_entry(t, operations: int, offline: OfflineReplicas) -> dict:
    parts = []
    for p in t.partitions:
        parts.append({
            "error_code": NONE if p.leader >= 0 else LEADER_NOT_AVAILABLE,
            "partition_index": p.index,
            "leader_id": p.leader,
            "leader_epoch": p.leader_epoch,
            "replica_nodes": tuple(p.replicas),
            "isr_nodes": tuple(p.isr),
            "offline_replicas": offline.of(t.topic_id, p),
        })
    return {
        "error_code": NONE, "name": t.name, "topic_id": t.topic_id,
        "is_internal": t.internal, "partitions": parts,
        "topic_authorized_operations": operations,
    }


# version -> id(topic.partitions) -> (partitions, name, topic id, encoded entry). A topic's partitions
# tuple is replaced whenever a leader, replica list or partition count changes, so an entry is
# reused only while the very same tuple is current. Rebuilt on each full listing: no stale entries.
_ENCODED: dict[int, dict[int, tuple]] = {}


def _encoded_topics(version: int, topics, offline) -> list[bytes]:
    old, new, out = _ENCODED.get(version, {}), {}, []
    for t in topics:
        if t.internal:   # listed after, once they exist (listed_internal_topics)
            continue
        key = id(t.partitions)
        hit = old.get(key)
        if hit is not None and hit[0] is t.partitions and hit[1] == t.name and hit[2] == t.topic_id \
                and hit[4] == offline:   # a replica gone offline or back: encoded again
            blob = hit[3]
        else:
            blob = encode_metadata_topic(version, _topic_entry(t, UNREQUESTED, offline))
        new[key] = (t.partitions, t.name, t.topic_id, blob, offline)
        out.append(blob)
    _ENCODED[version] = new
    return out


def _missing(name: str | None) -> int:
    """The answer for a topic that does not exist, as Kafka gives it: UNKNOWN_TOPIC_ID for one
    asked for by id, INVALID_TOPIC_EXCEPTION when no topic can have that name, else
    UNKNOWN_TOPIC_OR_PARTITION."""
    if name is None:
        return UNKNOWN_TOPIC_ID
    try:
        validate_topic_name(name)
    except CoordinatorError:
        return INVALID_TOPIC_EXCEPTION
    return UNKNOWN_TOPIC_OR_PARTITION


async def handle(ctx, request) -> dict:
    state = ctx.state
    coord = state.coordinator
    topics_req = request.topics
    all_topics = topics_req is None or (ctx.api_version == 0 and len(topics_req) == 0)
    with_ops = getattr(request, "include_topic_authorized_operations", False)
    checked = ctx.restricted or with_ops
    out = []
    offline = offline_replicas(state.brokers_to_list())   # those listed: the restore's too
    if all_topics and checked:   # ACLs: only the topics the principal may DESCRIBE are listed
        for t in [*(t for t in coord.topics() if not t.internal), *listed_internal_topics(state)]:
            if not ctx.allowed(DESCRIBE, TOPIC, t.name, report=False):
                continue
            out.append(_topic_entry(t, ctx.operations(TOPIC, t.name) if with_ops else UNREQUESTED, offline))
    elif all_topics:  # encoded here (the fast encoder takes bytes): thousands of partitions add up
        out = _encoded_topics(ctx.api_version, coord.topics(), offline)
        for internal in listed_internal_topics(state):
            out.append(encode_metadata_topic(ctx.api_version, _topic_entry(internal, UNREQUESTED, offline)))
    else:
        allow_auto = getattr(request, "allow_auto_topic_creation", True) and state.config.auto_create_topics
        for rt in topics_req:
            name = rt.name
            t = lookup_topic(state, name) if name is not None else None
            if t is None and name is None and getattr(rt, "topic_id", None) is not None:
                t = lookup_topic_id(state, rt.topic_id)
            # as Kafka: a topic the principal may not DESCRIBE is refused whether it exists or not, and
            # auto-creation needs CREATE on the cluster or the topic
            if checked and ((t is not None or name is not None) and not ctx.allowed(DESCRIBE, TOPIC, t.name if t else name)
                            or t is None and name is not None and allow_auto and not (
                                ctx.allowed(CREATE, CLUSTER, CLUSTER_NAME, report=False) or ctx.allowed(CREATE, TOPIC, name))):
                out.append({"error_code": TOPIC_AUTHORIZATION_FAILED, "name": name,
                            "topic_id": (getattr(rt, "topic_id", None) if name is None else None) or ZERO_UUID,
                            "is_internal": False, "partitions": (), "topic_authorized_operations": UNREQUESTED})
                continue
            if t is None:
                code = _missing(name)
                if code == UNKNOWN_TOPIC_OR_PARTITION and allow_auto and name not in (OFFSETS_TOPIC, TXN_TOPIC):
                    code = await state.auto_create(name)
                    t = coord.topic(name) if code == NONE else None
                    if t is not None:
                        out.append(_topic_entry(t, ctx.operations(TOPIC, name) if with_ops else UNREQUESTED, offline))
                        continue
                    if code == NONE:   # made, and removed again at once: ask again
                        code = LEADER_NOT_AVAILABLE
                elif code == UNKNOWN_TOPIC_OR_PARTITION and state.restoring():
                    # the coordinator's journal was just replaced and the topics are being put
                    # back: a client told a topic is gone drops its partitions, and a producer its
                    # sequence state with them (librdkafka then resends a batch already written
                    # under a new epoch); "not available yet" keeps it waiting, as during a creation
                    code = LEADER_NOT_AVAILABLE
                # an id asked for comes back with its error (Java's errorsByTopicId() needs it)
                asked_id = getattr(rt, "topic_id", None) if name is None else None
                out.append({"error_code": code, "name": name, "topic_id": asked_id or ZERO_UUID,
                            "is_internal": False, "partitions": (), "topic_authorized_operations": UNREQUESTED})
                continue
            out.append(_topic_entry(t, ctx.operations(TOPIC, t.name) if with_ops else UNREQUESTED, offline))
    return {
        "throttle_time": 0,
        "brokers": broker_list(state, ctx.listener),
        "cluster_id": coord.public_cluster_id,
        "controller_id": state.node_id,
        "topics": out,
        "cluster_authorized_operations": ctx.operations(CLUSTER, CLUSTER_NAME)
        if getattr(request, "include_cluster_authorized_operations", False) else UNREQUESTED,
        "error_code": NONE,
    }
