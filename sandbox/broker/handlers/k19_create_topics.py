"""CreateTopics (19), v2-v7: carried out by the coordinator; validate_only supported."""

from __future__ import annotations

import uuid

from sandbox.coordinator import CoordinatorError

from sandbox.coordinator.acls import CLUSTER, CLUSTER_NAME, CREATE, DESCRIBE_CONFIGS, TOPIC
from sandbox.protocol.errors import NONE, TOPIC_AUTHORIZATION_FAILED

API_KEY = 19
MIN_VERSION = 2
MAX_VERSION = 7
ZERO_UUID = uuid.UUID(int=0)


async def handle(ctx, request) -> dict:
    state = ctx.state
    coord = state.coordinator
    out = []
    # ACLs: CREATE on the cluster or on the topic; its configs are shown with DESCRIBE_CONFIGS
    restricted = ctx.restricted
    any_topic = not restricted or ctx.allowed(CREATE, CLUSTER, CLUSTER_NAME, report=False)
    for t in request.topics:
        if not (any_topic or ctx.allowed(CREATE, TOPIC, t.name)):
            out.append({"name": t.name, "topic_id": ZERO_UUID, "error_code": TOPIC_AUTHORIZATION_FAILED,
                        "error_message": "Authorization failed.", "topic_config_error_code": NONE,
                        "num_partitions": -1, "replication_factor": -1, "configs": None})
            continue
        configs = {c.name: c.value for c in t.configs}
        assignments = {a.partition_index: list(a.broker_ids) for a in t.assignments} or None
        entry = {"name": t.name, "topic_id": None, "error_code": NONE, "error_message": None,
                 "topic_config_error_code": NONE, "num_partitions": -1, "replication_factor": -1, "configs": None}
        try:
            info = await coord.create_topic(t.name, t.num_partitions, t.replication_factor, configs,
                                            assignments=assignments, validate_only=request.validate_only)
        except CoordinatorError as e:
            entry["error_code"], entry["error_message"] = e.error_code, e.message
        else:
            entry["topic_id"] = info.topic_id
            entry["num_partitions"] = len(info.partitions)
            entry["replication_factor"] = len(info.partitions[0].replicas) if info.partitions else -1
            described = coord.describe_configs(t.name) if not request.validate_only else {}
            if restricted and not ctx.allowed(DESCRIBE_CONFIGS, TOPIC, t.name):
                entry["topic_config_error_code"], described = TOPIC_AUTHORIZATION_FAILED, {}
            entry["configs"] = [
                {"name": k, "value": v, "read_only": False, "config_source": 5 if is_default else 1,
                 "is_sensitive": False}
                for k, (v, is_default) in sorted(described.items())
            ]
        if entry["topic_id"] is None:
            entry["topic_id"] = ZERO_UUID
        out.append(entry)
    return {"throttle_time": 0, "topics": out}
