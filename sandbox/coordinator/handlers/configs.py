"""Shared logic of the config APIs (DescribeConfigs, AlterConfigs, IncrementalAlterConfigs),
with the same semantics as the broker's: topic configs are the coordinator's to change."""

from __future__ import annotations

from ..model import CoordinatorError
from ..topic_configs import RESOURCE_TOPIC, describe_resource
from sandbox.protocol.errors import INVALID_REQUEST, NONE

TOPIC = RESOURCE_TOPIC


def server_configs(server) -> dict[str, str]:
    """The coordinator's own (read-only) settings, shown for a BROKER resource."""
    return {
        "process.roles": "controller",
        "broker.session.timeout.ms": str(server.session_timeout_ms),
        "num.partitions": str(server.default_partitions),
        "metadata.log.dir": str(server.data_dir),
    }


def describe(server, resource_type: int, name: str, keys) -> dict:
    known = server.coordinator.topic(name) is not None
    return describe_resource(resource_type, name, keys,
                             topic_configs=server.coordinator.describe_configs(name) if known else None,
                             server_configs=server_configs(server))


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
