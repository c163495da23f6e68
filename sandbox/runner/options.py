"""The stack's topic defaults and [broker] settings from sandbox.toml as command-line options, the same for native
processes (stack.py) and containers (docker_plan.py): the coordinator decides with them, and the
brokers show them in DescribeConfigs."""

from __future__ import annotations

from sandbox import server_properties
from sandbox.config import SandboxConfig


def coordinator_defaults(cfg: SandboxConfig) -> list[str]:
    """Replication factor, min.insync.replicas and num.partitions of topics that name none."""
    return ["--default-replication-factor", str(cfg.replication), "--min-insync-replicas", str(cfg.min_insync_replicas),
            "--default-partitions", str(cfg.partitions), *server_properties.coordinator_options(cfg.broker)]


def broker_defaults(cfg: SandboxConfig) -> list[str]:
    """The same defaults as broker settings, then sandbox.toml's [broker] settings."""
    return server_properties.as_options({"num.partitions": cfg.partitions, "default.replication.factor": cfg.replication,
                                         "min.insync.replicas": cfg.min_insync_replicas,
                                         **server_properties.for_broker(cfg.broker)})
