"""UnregisterBroker (64), v0: controlled shutdown; the broker is fenced now (its partitions get
other leaders) instead of after its session times out. The registration itself is kept."""

from __future__ import annotations

from ..model import CoordinatorError
from sandbox.protocol.errors import NONE

API_KEY = 64
MIN_VERSION = 0
MAX_VERSION = 0


def handle(ctx, request) -> dict:
    out = {"throttle_time": 0, "error_code": NONE, "error_message": None}
    try:
        ctx.coordinator.unregister_broker(request.broker_id)
    except CoordinatorError as e:
        out["error_code"], out["error_message"] = e.error_code, e.message
    ctx.server.sessions.pop(request.broker_id, None)
    return out
