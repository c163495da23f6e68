"""CreateTopics (19), v2-v7: carried out by the coordinator; validate_only supported.

As Kafka's ControllerApis answers: a name asked for twice in one request is created for neither
and answered once, INVALID_REQUEST "Duplicate topic name."; a config with a null value is
INVALID_CONFIG. A topic made (or, validate_only, that would be made) is answered with its
effective configs as DescribeConfigs describes them: its own, else this broker's static and
dynamic defaults, else Kafka's, each with its source."""

from __future__ import annotations

import uuid

from sandbox.coordinator import CoordinatorError

from sandbox.admin_handlers.configs import describe
from sandbox.coordinator.acls import CLUSTER, CLUSTER_NAME, CREATE, DESCRIBE_CONFIGS, TOPIC
from sandbox.coordinator.rules import DUPLICATE_TOPIC_NAME, duplicated_names
from sandbox.coordinator.topic_configs import RESOURCE_TOPIC
from sandbox.protocol.errors import INVALID_CONFIG, INVALID_REQUEST, NONE, TOPIC_AUTHORIZATION_FAILED

API_KEY = 19
MIN_VERSION = 2
MAX_VERSION = 7
ZERO_UUID = uuid.UUID(int=0)


def _refusal(name: str, code: int, message: str) -> dict:
    return {"name": name, "topic_id": ZERO_UUID, "error_code": code, "error_message": message,
            "topic_config_error_code": NONE, "num_partitions": -1, "replication_factor": -1, "configs": None}


async def handle(ctx, request) -> dict:
    state = ctx.state
    coord = state.coordinator
    out = []
    duplicated = duplicated_names(t.name for t in request.topics)
    answered: set[str] = set()
    # ACLs: CREATE on the cluster or on the topic; its configs are shown with DESCRIBE_CONFIGS
    restricted = ctx.restricted
    any_topic = not restricted or ctx.allowed(CREATE, CLUSTER, CLUSTER_NAME, report=False)
    for t in request.topics:
        if t.name in duplicated:   # one answer for the name, nothing created (ControllerApis)
            if t.name not in answered:
                answered.add(t.name)
                out.append(_refusal(t.name, INVALID_REQUEST, DUPLICATE_TOPIC_NAME))
            continue
        if not (any_topic or ctx.allowed(CREATE, TOPIC, t.name)):
            out.append(_refusal(t.name, TOPIC_AUTHORIZATION_FAILED, "Authorization failed."))
            continue
        nulls = [c.name for c in t.configs if c.value is None]
        if nulls:   # Kafka's controller refuses them before anything is made
            out.append(_refusal(t.name, INVALID_CONFIG, f"Null value not supported for topic configs: {','.join(nulls)}"))
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
            if restricted and not ctx.allowed(DESCRIBE_CONFIGS, TOPIC, t.name):
                entry["topic_config_error_code"], entry["configs"] = TOPIC_AUTHORIZATION_FAILED, []
            else:
                described = describe(ctx.admin, RESOURCE_TOPIC, t.name, None, set_configs=info.configs)
                entry["configs"] = [{"name": c["name"], "value": c["value"], "read_only": c["read_only"],
                                     "config_source": c["config_source"], "is_sensitive": c["is_sensitive"]}
                                    for c in described["configs"]]
        if entry["topic_id"] is None:
            entry["topic_id"] = ZERO_UUID
        out.append(entry)
    return {"throttle_time": 0, "topics": out}
