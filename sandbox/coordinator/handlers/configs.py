"""Shared logic of the config APIs (DescribeConfigs, AlterConfigs, IncrementalAlterConfigs),
with the same semantics as the broker's: topic configs are the coordinator's to change."""

from __future__ import annotations

from ..model import CoordinatorError
from .common import INVALID_REQUEST, NONE, UNKNOWN_TOPIC_OR_PARTITION

TOPIC, BROKER = 2, 4
SOURCE_DYNAMIC_TOPIC, SOURCE_STATIC_BROKER, SOURCE_DEFAULT = 1, 4, 5
# config_type (DescribeConfigs v3+): 1 BOOLEAN, 2 STRING, 3 INT, 5 LONG, 6 DOUBLE, 7 LIST
_TYPES = {"cleanup.policy": 7, "compression.type": 2, "message.timestamp.type": 2,
          "preallocate": 1, "unclean.leader.election.enable": 1, "min.insync.replicas": 3,
          "message.downconversion.enable": 1, "remote.storage.enable": 1,
          "min.cleanable.dirty.ratio": 6, "max.message.bytes": 3, "segment.bytes": 3,
          "segment.index.bytes": 3, "index.interval.bytes": 3}


def server_configs(server) -> dict[str, str]:
    """The coordinator's own (read-only) settings, shown for a BROKER resource."""
    return {
        "process.roles": "controller",
        "broker.session.timeout.ms": str(server.session_timeout_ms),
        "num.partitions": str(server.default_partitions),
        "metadata.log.dir": str(server.data_dir),
    }


def describe(server, resource_type: int, name: str, keys) -> dict:
    coord = server.coordinator
    entry = {"error_code": NONE, "error_message": None, "resource_type": resource_type,
             "resource_name": name, "configs": []}
    if resource_type == TOPIC:
        if coord.topic(name) is None:
            entry["error_code"] = UNKNOWN_TOPIC_OR_PARTITION
            entry["error_message"] = f"topic {name!r} does not exist"
            return entry
        items = [(k, v, SOURCE_DEFAULT if d else SOURCE_DYNAMIC_TOPIC)
                 for k, (v, d) in coord.describe_configs(name).items()]
    elif resource_type == BROKER:
        items = [(k, v, SOURCE_STATIC_BROKER) for k, v in server_configs(server).items()]
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
            "is_default": source == SOURCE_DEFAULT, "config_source": source,
            "is_sensitive": False, "synonyms": [],
            "config_type": _TYPES.get(k, 5 if k.endswith((".ms", ".bytes", ".messages")) else 2),
            "documentation": None,
        })
    return entry


def alter(server, resource_type: int, name: str, set_: dict, delete: list, incremental: bool,
          validate_only: bool) -> dict:
    entry = {"error_code": NONE, "error_message": None, "resource_type": resource_type,
             "resource_name": name}
    if resource_type != TOPIC:
        entry["error_code"] = INVALID_REQUEST
        entry["error_message"] = "only topic configs can be altered"
        return entry
    try:
        server.coordinator.alter_configs(name, set_, delete, incremental=incremental,
                                         validate_only=validate_only)
    except CoordinatorError as e:
        entry["error_code"], entry["error_message"] = e.error_code, e.message
    return entry
