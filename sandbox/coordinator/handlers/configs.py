"""The coordinator as the shared admin handlers (sandbox/admin_handlers) see it: its own
read-only settings, its Coordinator behind the typed async API, no controller among the brokers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..local import AsyncCoordinator
from .common import NO_CONTROLLER, broker_list


def server_configs(server) -> dict[str, str]:
    """The coordinator's own (read-only) settings, shown for a BROKER resource."""
    return {
        "delete.topic.enable": "true",
        **server.config.settings,
        "process.roles": "controller",
        "broker.session.timeout.ms": str(server.session_timeout_ms),
        "num.partitions": str(server.default_partitions),
        "default.replication.factor": str(server.config.default_replication_factor),
        "min.insync.replicas": str(server.config.min_insync_replicas),
        "metadata.log.dir": str(server.data_dir),
    }


@dataclass(frozen=True, slots=True)
class CoordinatorAdmin:
    """AdminHost for a request to the coordinator service `server`."""

    server: Any
    controller_id: int = NO_CONTROLLER
    broker_id: int | None = None   # no broker: a BROKER resource may name any (it keeps them all)
    alter_refusal: str = "only topic, group and broker configs can be altered"

    @property
    def coordinator(self) -> AsyncCoordinator:
        return AsyncCoordinator(self.server.coordinator)

    def server_configs(self) -> dict[str, str]:
        return server_configs(self.server)

    def broker_list(self, include_fenced: bool) -> list[dict]:
        return broker_list(self.server.coordinator, include_fenced)
