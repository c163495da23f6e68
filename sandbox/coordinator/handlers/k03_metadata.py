"""Metadata (3), v0-v13: unfenced brokers, cluster id, no controller (-1), topics with ids,
partitions, leaders, replicas and ISR. topics=None (v1+) or [] (v0) means all topics; internal
topics are listed only when asked for by name. The coordinator never auto-creates topics."""

from __future__ import annotations

import uuid

from sandbox.protocol.errors import (
    LEADER_NOT_AVAILABLE, NONE, UNKNOWN_AUTHORIZED_OPERATIONS, UNKNOWN_TOPIC_OR_PARTITION,
)
from ..model import OfflineReplicas, offline_replicas
from .common import NO_CONTROLLER, broker_list

API_KEY = 3
MIN_VERSION = 0
MAX_VERSION = 13
ZERO_UUID = uuid.UUID(int=0)


def topic_entry(t, offline: OfflineReplicas) -> dict:
    parts = [{
        "error_code": NONE if p.leader >= 0 else LEADER_NOT_AVAILABLE,
        "partition_index": p.index, "leader_id": p.leader, "leader_epoch": p.leader_epoch,
        "replica_nodes": tuple(p.replicas), "isr_nodes": tuple(p.isr),
        "offline_replicas": offline.of(t.topic_id, p),
    } for p in t.partitions]
    return {"error_code": NONE, "name": t.name, "topic_id": t.topic_id,
            "is_internal": t.internal, "partitions": parts,
            "topic_authorized_operations": UNKNOWN_AUTHORIZED_OPERATIONS}


def handle(ctx, request) -> dict:
    coord = ctx.coordinator
    offline = offline_replicas(coord.brokers())
    wanted = request.topics
    if wanted is None or (ctx.api_version == 0 and len(wanted) == 0):
        out = [topic_entry(t, offline) for t in coord.topics() if not t.internal]
    else:
        out = []
        for rt in wanted:
            t = coord.topic(rt.name) if rt.name is not None else None
            if t is None and rt.name is None and getattr(rt, "topic_id", None) is not None:
                t = coord.topic_by_id(rt.topic_id)
            if t is None:
                out.append({"error_code": UNKNOWN_TOPIC_OR_PARTITION, "name": rt.name,
                            "topic_id": getattr(rt, "topic_id", None) or ZERO_UUID,
                            "is_internal": False, "partitions": (),
                            "topic_authorized_operations": UNKNOWN_AUTHORIZED_OPERATIONS})
            else:
                out.append(topic_entry(t, offline))
    return {"throttle_time": 0, "brokers": broker_list(coord), "cluster_id": coord.public_cluster_id,
            "controller_id": NO_CONTROLLER, "topics": out,
            "cluster_authorized_operations": UNKNOWN_AUTHORIZED_OPERATIONS, "error_code": NONE}
