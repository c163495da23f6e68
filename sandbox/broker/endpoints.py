"""Broker descriptions the handlers and the admin view share: every broker's address on a
listener, and this broker's own."""

from __future__ import annotations


def broker_list(state, listener: str | None = None, include_fenced: bool = False) -> list[dict]:
    """Every registered broker, with the address clients must use: the one it advertises on
    `listener` (the listener the request came in through), else its primary address. Fenced
    brokers only when asked (DescribeCluster v2)."""
    out = []
    # a broker lists the ones registered before a journal restore too (BrokerState.brokers_to_list);
    # the coordinator (state = its server) lists what it has
    listed = state.brokers_to_list() if hasattr(state, "brokers_to_list") else state.coordinator.brokers()
    for b in listed:
        fenced = bool(getattr(b, "fenced", False))
        if fenced and not include_fenced:
            continue
        host, port = b.address(listener) if listener is not None else (b.host, b.port)
        out.append({"node_id": b.broker_id, "broker_id": b.broker_id, "host": host, "port": port, "rack": b.rack,
                    "is_fenced": fenced})
    return out


def self_endpoint(state, listener: str | None = None) -> dict:
    """This broker's own address on `listener` (its primary address if it has no such listener)."""
    own = state.config.listener(listener) if listener is not None else None
    host, port = own.advertised if own is not None else state.config.advertised
    return {"node_id": state.node_id, "host": host, "port": port}
