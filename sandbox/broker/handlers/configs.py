"""Shared logic of the config APIs (DescribeConfigs, AlterConfigs, IncrementalAlterConfigs)."""

from __future__ import annotations

from sandbox.coordinator import CoordinatorError

from ..state import maybe_await
from .common import INVALID_REQUEST, NONE, UNKNOWN_TOPIC_OR_PARTITION

TOPIC, BROKER = 2, 4
SOURCE_DYNAMIC_TOPIC, SOURCE_STATIC_BROKER, SOURCE_DEFAULT = 1, 4, 5
# config_type (DescribeConfigs v3+): 1 BOOLEAN, 2 STRING, 3 INT, 5 LONG, 7 LIST
_TYPES = {"cleanup.policy": 7, "compression.type": 2, "message.timestamp.type": 2,
          "preallocate": 1, "unclean.leader.election.enable": 1, "min.insync.replicas": 3,
          "message.downconversion.enable": 1, "remote.storage.enable": 1,
          "min.cleanable.dirty.ratio": 6, "max.message.bytes": 3, "segment.bytes": 3,
          "segment.index.bytes": 3, "index.interval.bytes": 3}


def broker_configs(state) -> dict[str, str]:
    c = state.config
    return {
        "broker.id": str(c.node_id), "node.id": str(c.node_id),
        "auto.create.topics.enable": str(c.auto_create_topics).lower(),
        "num.partitions": str(c.num_partitions),
        "default.replication.factor": str(c.default_replication_factor),
        "socket.request.max.bytes": str(c.max_request_bytes),
        "message.max.bytes": str(c.message_max_bytes),
        "group.initial.rebalance.delay.ms": str(c.group_initial_rebalance_delay_ms),
        "log.dirs": str(c.data_dir),
        "log.retention.check.interval.ms": str(c.retention_check_interval_ms),
    }


def describe(state, resource_type: int, name: str, keys, version: int) -> dict:
    entry = {"error_code": NONE, "error_message": None, "resource_type": resource_type,
             "resource_name": name, "configs": []}
    if resource_type == TOPIC:
        if state.coordinator.topic(name) is None:
            entry["error_code"] = UNKNOWN_TOPIC_OR_PARTITION
            entry["error_message"] = f"topic {name!r} does not exist"
            return entry
        items = [(k, v, SOURCE_DEFAULT if d else SOURCE_DYNAMIC_TOPIC)
                 for k, (v, d) in state.coordinator.describe_configs(name).items()]
    elif resource_type == BROKER:
        items = [(k, v, SOURCE_STATIC_BROKER) for k, v in broker_configs(state).items()]
    else:
        entry["error_code"] = INVALID_REQUEST
        entry["error_message"] = f"resource type {resource_type} is not supported"
        return entry
    wanted = set(keys) if keys else None
    for k, v, source in sorted(items):
        if wanted is not None and k not in wanted:
            continue
        entry["configs"].append({
            "name": k, "value": v, "read_only": resource_type == BROKER,
            "is_default": source == SOURCE_DEFAULT, "config_source": source, "is_sensitive": False,
            "synonyms": [], "config_type": _TYPES.get(k, 5 if k.endswith((".ms", ".bytes", ".messages")) else 2),
            "documentation": None,
        })
    return entry


async def alter(state, resource_type: int, name: str, set_: dict, delete: list, incremental: bool,
          validate_only: bool) -> dict:
    entry = {"error_code": NONE, "error_message": None, "resource_type": resource_type, "resource_name": name}
    if resource_type != TOPIC:
        entry["error_code"] = INVALID_REQUEST
        entry["error_message"] = "only topic configs can be altered on this broker"
        return entry
    try:
        await maybe_await(state.coordinator.alter_configs(name, set_, delete, incremental=incremental,
                                                          validate_only=validate_only))
    except CoordinatorError as e:
        entry["error_code"], entry["error_message"] = e.error_code, e.message
    return entry
