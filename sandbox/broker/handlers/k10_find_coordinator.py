"""FindCoordinator (10), v0-v4: this broker coordinates every group (and would every txn id)."""

from __future__ import annotations

from .common import NONE, self_endpoint

API_KEY = 10
MIN_VERSION = 0
MAX_VERSION = 4


def handle(ctx, request) -> dict:
    ep = self_endpoint(ctx.state)
    base = {"throttle_time": 0, "error_code": NONE, "error_message": None,
            "node_id": ep["node_id"], "host": ep["host"], "port": ep["port"]}
    if ctx.api_version >= 4:
        base["coordinators"] = [
            {"key": key, "node_id": ep["node_id"], "host": ep["host"], "port": ep["port"],
             "error_code": NONE, "error_message": None}
            for key in request.coordinator_keys
        ]
    return base
