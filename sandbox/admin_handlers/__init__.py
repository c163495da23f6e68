"""Admin request handlers both servers answer alike (the broker and the coordinator): one module
per API key (kNN_name.py), found by each server's handlers/__init__ next to its own.

Both servers' registries discover this package next to their own (protocol/registry.py).
A handler reaches its server only through `ctx.admin`, an AdminHost: the coordinator as the typed
TopicAdmin (coordinator/api.py) and the few things the two servers answer differently.
"""

from __future__ import annotations

from typing import Protocol

from sandbox.coordinator.api import TopicAdmin


class AdminHost(Protocol):
    """What a shared admin handler needs from the server answering it."""

    @property
    def coordinator(self) -> TopicAdmin: ...

    @property
    def controller_id(self) -> int:
        """The controller DescribeCluster names (-1 when it is no broker)."""
        ...

    @property
    def broker_id(self) -> int | None:
        """The only broker id a BROKER resource may name here besides "" (the cluster-wide
        default), as Kafka's ConfigHelper and ConfigAdminManager check it on a broker; None on
        the coordinator, which is no broker and keeps every broker's dynamic settings."""
        ...

    @property
    def alter_refusal(self) -> str:
        """Why a config change of anything but a topic is refused."""
        ...

    def server_configs(self) -> dict[str, str]:
        """The server's own read-only settings, shown for a BROKER resource."""
        ...

    def broker_list(self, include_fenced: bool) -> list[dict]:
        """The registered brokers as DescribeCluster lists them (unfenced ones unless asked)."""
        ...
