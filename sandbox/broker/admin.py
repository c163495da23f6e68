"""The broker as the shared admin handlers (sandbox/admin_handlers) see it: its settings under
Kafka's names, its coordinator, itself as the controller, brokers on the request's listener."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sandbox.coordinator.api import TopicAdmin

from .endpoints import broker_list


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
        "listener.security.protocol.map": ",".join(f"{lst.name}:{'SASL_PLAINTEXT' if lst.sasl else 'PLAINTEXT'}"
                                                   for lst in endpoints),
        "authorizer.class.name": c.authorizer_class_name,
        "super.users": ";".join(c.super_users),
        "allow.everyone.if.no.acl.found": str(c.allow_everyone_if_no_acl_found).lower(),
        "inter.broker.listener.name": endpoints[0].name,
        "auto.create.topics.enable": str(c.auto_create_topics).lower(),
        "delete.topic.enable": str(c.delete_topic_enable).lower(),
        "num.partitions": str(c.num_partitions),
        "default.replication.factor": str(c.default_replication_factor),
        "min.insync.replicas": str(c.min_insync_replicas),
        "offsets.topic.replication.factor": str(c.offsets_topic_replication_factor),
        "offsets.topic.num.partitions": str(c.offsets_topic_num_partitions),
        "offsets.commit.timeout.ms": str(c.offsets_commit_timeout_ms),
        "offsets.retention.minutes": str(c.offsets_retention_minutes),
        "offsets.retention.check.interval.ms": str(c.offsets_retention_check_interval_ms),
        "transaction.state.log.replication.factor": "1",
        "unclean.leader.election.enable": "false",
        "socket.request.max.bytes": str(c.max_request_bytes),
        "message.max.bytes": str(c.message_max_bytes),
        "group.initial.rebalance.delay.ms": str(c.group_initial_rebalance_delay_ms),
        "group.min.session.timeout.ms": str(c.group_min_session_timeout_ms),
        "group.max.session.timeout.ms": str(c.group_max_session_timeout_ms),
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


@dataclass(frozen=True, slots=True)
class BrokerAdmin:
    """AdminHost for a request that came in through `listener` (see sandbox/admin_handlers)."""

    state: Any
    listener: str | None
    alter_refusal: str = "only topic, group and broker configs can be altered on this broker"

    @property
    def coordinator(self) -> TopicAdmin:
        return self.state.coordinator

    @property
    def controller_id(self) -> int:
        return self.state.node_id

    @property
    def broker_id(self) -> int:
        return self.state.node_id

    def server_configs(self) -> dict[str, str]:
        return broker_configs(self.state)

    def broker_list(self, include_fenced: bool) -> list[dict]:
        return broker_list(self.state, self.listener, include_fenced=include_fenced)
