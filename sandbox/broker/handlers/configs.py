"""Shared logic of the config APIs (DescribeConfigs, AlterConfigs, IncrementalAlterConfigs)."""

from __future__ import annotations

from sandbox.coordinator import CoordinatorError
from sandbox.coordinator.topic_configs import RESOURCE_TOPIC, describe_resource

from ..state import maybe_await
from sandbox.protocol.errors import INVALID_REQUEST, NONE

TOPIC = RESOURCE_TOPIC


def _address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def broker_configs(state) -> dict[str, str]:
    """The broker's settings under Kafka's names, as `kafka-configs --describe --broker` shows them
    (static: they come from the command line and cannot be altered while it runs)."""
    c = state.config
    lc = c.log
    endpoints = c.endpoints()
    never = str(2**63 - 1)
    out = {
        "broker.id": str(c.node_id), "node.id": str(c.node_id),
        "process.roles": "broker" if c.coordinator else "broker,controller",
        "listeners": ",".join(f"{lst.name}://{_address(lst.host, lst.port)}" for lst in endpoints),
        "advertised.listeners": ",".join(f"{lst.name}://{_address(*lst.advertised)}" for lst in endpoints),
        "listener.security.protocol.map": ",".join(f"{lst.name}:PLAINTEXT" for lst in endpoints),
        "inter.broker.listener.name": endpoints[0].name,
        "auto.create.topics.enable": str(c.auto_create_topics).lower(),
        "delete.topic.enable": "true",
        "num.partitions": str(c.num_partitions),
        "default.replication.factor": str(c.default_replication_factor),
        "min.insync.replicas": "1",
        "offsets.topic.replication.factor": "1",
        "transaction.state.log.replication.factor": "1",
        "unclean.leader.election.enable": "false",
        "socket.request.max.bytes": str(c.max_request_bytes),
        "message.max.bytes": str(c.message_max_bytes),
        "group.initial.rebalance.delay.ms": str(c.group_initial_rebalance_delay_ms),
        "log.dirs": str(c.data_dir),
        "log.segment.bytes": str(lc.segment_bytes),
        "log.roll.ms": str(lc.segment_ms),
        "log.retention.ms": str(lc.retention_ms),
        "log.retention.bytes": str(lc.retention_bytes),
        "log.index.interval.bytes": str(lc.index_interval_bytes),
        "log.flush.interval.messages": never if lc.flush_messages is None else str(lc.flush_messages),
        "log.flush.interval.ms": never if lc.flush_ms is None else str(lc.flush_ms),
        "log.message.timestamp.type": lc.message_timestamp_type,
        "log.cleanup.policy": lc.cleanup_policy,
        "log.cleaner.delete.retention.ms": str(lc.delete_retention_ms),
        "log.retention.check.interval.ms": str(c.retention_check_interval_ms),
        "log.cleaner.backoff.ms": str(c.cleaner_backoff_ms),
        "compression.type": "producer",
    }
    if c.coordinator:
        out["controller.quorum.bootstrap.servers"] = c.coordinator
    return out


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
