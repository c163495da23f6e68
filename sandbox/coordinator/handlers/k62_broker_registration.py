"""BrokerRegistration (62), v0-v4: a broker announces id, its listeners (the first one is its
primary address), rack and incarnation; the answer is its broker epoch. An empty cluster_id
means "whichever cluster"."""

from __future__ import annotations

from ..model import CoordinatorError
from sandbox.protocol.errors import INCONSISTENT_CLUSTER_ID, INVALID_REQUEST, NONE

API_KEY = 62
MIN_VERSION = 0
MAX_VERSION = 4


def handle(ctx, request) -> dict:
    coord = ctx.coordinator
    out = {"throttle_time": 0, "error_code": NONE, "broker_epoch": -1}
    if request.cluster_id and request.cluster_id != coord.cluster_id:
        out["error_code"] = INCONSISTENT_CLUSTER_ID
        return out
    if not request.listeners:
        out["error_code"] = INVALID_REQUEST
        return out
    primary = request.listeners[0]
    listeners = [(str(lst.name), str(lst.host), int(lst.port)) for lst in request.listeners]
    try:
        epoch = coord.register_broker(request.broker_id, primary.host, int(primary.port),
                                      request.rack, request.incarnation_id, listeners=listeners)
    except CoordinatorError as e:
        out["error_code"] = e.error_code
        return out
    ctx.server.sessions[request.broker_id] = epoch
    ctx.server.session_peers[request.broker_id] = ctx.peer
    out["broker_epoch"] = epoch
    return out
