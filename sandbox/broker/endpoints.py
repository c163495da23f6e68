"""Broker descriptions the handlers and the admin view share: every broker's address on a
listener, and this broker's own."""

from __future__ import annotations

from sandbox.protocol.errors import FENCED_LEADER_EPOCH, NOT_LEADER_OR_FOLLOWER


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


# KIP-951: a partition refused because this broker does not lead it (any more) names the leader the
# metadata gives, and the response carries that broker's address on the request's listener, so the
# client moves to it without a metadata round trip first (librdkafka 2.4+, Java 3.7+)
HINTED_ERRORS = frozenset({NOT_LEADER_OR_FOLLOWER, FENCED_LEADER_EPOCH})


def add_leader_hints(state, listener: str | None, body: dict, topics_key: str, parts_key: str,
                     index_key: str) -> dict:
    """Fill `current_leader` on the hinted errors of a Produce (v10+) or Fetch (v16+) response
    body, and `node_endpoints` with those leaders' addresses; the body, changed in place."""
    leaders = set()
    for t in body.get(topics_key) or ():
        name = t.get("name", t.get("topic"))
        for p in t[parts_key]:
            if int(p.get("error_code", 0)) not in HINTED_ERRORS:
                continue
            leader, epoch = state.leaders.get((name, p[index_key]), (-1, -1))
            if leader >= 0 and leader != state.node_id:
                p["current_leader"] = {"leader_id": leader, "leader_epoch": epoch}
                leaders.add(leader)
    if leaders:
        body["node_endpoints"] = [e for e in broker_list(state, listener) if e["node_id"] in leaders]
    return body
