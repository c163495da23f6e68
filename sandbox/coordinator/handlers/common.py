"""Shared by the coordinator's handlers: broker/topic descriptions and the session check."""

from __future__ import annotations

from sandbox.protocol.errors import BROKER_ID_NOT_REGISTERED, NONE, STALE_BROKER_EPOCH

NO_CONTROLLER = -1


def broker_list(coordinator, include_fenced: bool = False) -> list[dict]:
    """Registered brokers with the address clients must use (unfenced ones unless asked)."""
    return [{"node_id": b.broker_id, "broker_id": b.broker_id, "host": b.host, "port": b.port,
             "rack": b.rack, "is_fenced": b.fenced}
            for b in coordinator.brokers() if include_fenced or not b.fenced]


def check_session(server, broker_id: int, epoch: int) -> int:
    """NONE if `broker_id` registered with THIS process at `epoch`, else the error code.
    Sessions are in memory, so after a coordinator restart every broker must re-register."""
    current = server.sessions.get(broker_id)
    if current is None:
        return BROKER_ID_NOT_REGISTERED
    if current != epoch:
        return STALE_BROKER_EPOCH
    return NONE
