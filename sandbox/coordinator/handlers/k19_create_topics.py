"""CreateTopics (19), v2-v7: placement across the unfenced brokers; validate_only supported.
Same semantics as the broker's handler (which forwards here in a multi-broker cluster): a name
asked for twice is created for neither and answered once, INVALID_REQUEST "Duplicate topic name."
(Kafka's ControllerApis)."""

from __future__ import annotations

import uuid

from ..model import CoordinatorError
from ..rules import DUPLICATE_TOPIC_NAME, duplicated_names
from sandbox.protocol.errors import INVALID_REQUEST, NONE

API_KEY = 19
MIN_VERSION = 2
MAX_VERSION = 7
ZERO_UUID = uuid.UUID(int=0)


def handle(ctx, request) -> dict:
    coord = ctx.coordinator
    out = []
    duplicated = duplicated_names(t.name for t in request.topics)
    answered: set[str] = set()
    for t in request.topics:
        configs = {c.name: c.value for c in t.configs}
        assignments = {a.partition_index: list(a.broker_ids) for a in t.assignments} or None
        entry = {"name": t.name, "topic_id": ZERO_UUID, "error_code": NONE,
                 "error_message": None, "topic_config_error_code": NONE, "num_partitions": -1,
                 "replication_factor": -1, "configs": None}
        if t.name in duplicated:   # one answer for the name, nothing created (ControllerApis)
            if t.name not in answered:
                answered.add(t.name)
                out.append({**entry, "error_code": INVALID_REQUEST, "error_message": DUPLICATE_TOPIC_NAME})
            continue
        try:
            info = coord.create_topic(t.name, t.num_partitions, t.replication_factor, configs,
                                      assignments=assignments,
                                      validate_only=request.validate_only)
        except CoordinatorError as e:
            entry["error_code"], entry["error_message"] = e.error_code, e.message
        else:
            entry["topic_id"] = ZERO_UUID if request.validate_only else info.topic_id
            entry["num_partitions"] = len(info.partitions)
            entry["replication_factor"] = info.replication_factor if info.partitions else -1
            described = coord.describe_configs(t.name) if not request.validate_only else {}
            entry["configs"] = [
                {"name": k, "value": v, "read_only": False,
                 "config_source": 5 if is_default else 1, "is_sensitive": False}
                for k, (v, is_default) in sorted(described.items())]
        out.append(entry)
    return {"throttle_time": 0, "topics": out}
