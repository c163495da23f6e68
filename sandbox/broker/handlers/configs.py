"""Shared logic of the config APIs (DescribeConfigs, AlterConfigs, IncrementalAlterConfigs)."""

from __future__ import annotations

from sandbox.coordinator import CoordinatorError
from sandbox.coordinator.topic_configs import RESOURCE_TOPIC, describe_resource

from ..state import maybe_await
from .common import INVALID_REQUEST, NONE

TOPIC = RESOURCE_TOPIC


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
        "log.cleaner.backoff.ms": str(c.cleaner_backoff_ms),
    }


def describe(state, resource_type: int, name: str, keys, version: int) -> dict:
    known = state.coordinator.topic(name) is not None
    return describe_resource(resource_type, name, keys,
                             topic_configs=state.coordinator.describe_configs(name) if known else None,
                             server_configs=broker_configs(state))


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
