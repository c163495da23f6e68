"""What the config APIs share (DescribeConfigs, AlterConfigs, IncrementalAlterConfigs): topic
configs are the coordinator's to change, the server's own settings are read-only."""

from __future__ import annotations

from sandbox.coordinator.model import CoordinatorError
from sandbox.coordinator.topic_configs import RESOURCE_TOPIC, describe_resource
from sandbox.protocol.errors import INVALID_REQUEST, NONE

from . import AdminHost


def describe(admin: AdminHost, resource_type: int, name: str, keys) -> dict:
    coord = admin.coordinator
    known = coord.topic(name) is not None
    return describe_resource(resource_type, name, keys,
                             topic_configs=coord.describe_configs(name) if known else None,
                             server_configs=admin.server_configs())


async def alter(admin: AdminHost, resource_type: int, name: str, set_: dict, delete: list, incremental: bool,
                validate_only: bool) -> dict:
    entry = {"error_code": NONE, "error_message": None, "resource_type": resource_type, "resource_name": name}
    if resource_type != RESOURCE_TOPIC:
        entry["error_code"] = INVALID_REQUEST
        entry["error_message"] = admin.alter_refusal
        return entry
    try:
        await admin.coordinator.alter_configs(name, set_, delete, incremental=incremental, validate_only=validate_only)
    except CoordinatorError as e:
        entry["error_code"], entry["error_message"] = e.error_code, e.message
    return entry
