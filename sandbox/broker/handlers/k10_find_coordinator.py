"""FindCoordinator (10), v0-v6: the broker owning a group (the leader of its `__consumer_offsets`
partition, the topic made on first need), with its address on the listener the request came in through. Share groups (key type 2, v6) are
not enabled here, so they get INVALID_REQUEST as on a Kafka 4.0 broker without them."""

from __future__ import annotations

from sandbox.protocol.errors import COORDINATOR_NOT_AVAILABLE, INVALID_REQUEST, NONE
from ..endpoints import broker_list, self_endpoint

API_KEY = 10
MIN_VERSION = 0
MAX_VERSION = 6
SHARE = 2


def _locate(state, key: str, listener: str | None = None) -> dict:
    owner = state.group_coordinator_id(key)
    if owner < 0:
        return {"node_id": -1, "host": "", "port": -1, "error_code": COORDINATOR_NOT_AVAILABLE,
                "error_message": "the partition of __consumer_offsets that holds this group has no leader"}
    if owner == state.node_id:
        ep = self_endpoint(state, listener)
        return {"node_id": ep["node_id"], "host": ep["host"], "port": ep["port"], "error_code": NONE,
                "error_message": None}
    for b in broker_list(state, listener):
        if b["node_id"] == owner:
            return {"node_id": owner, "host": b["host"], "port": b["port"], "error_code": NONE,
                    "error_message": None}
    return {"node_id": -1, "host": "", "port": -1, "error_code": COORDINATOR_NOT_AVAILABLE,
            "error_message": f"broker {owner}, which coordinates this group, is not available"}


async def handle(ctx, request) -> dict:
    await ctx.state.offsets.ensure_topic()
    if ctx.api_version >= 4:
        if request.key_type == SHARE:
            return {"throttle_time": 0, "coordinators": [
                {"key": key, "node_id": -1, "host": "", "port": -1, "error_code": INVALID_REQUEST,
                 "error_message": "Share groups are not enabled on this broker."}
                for key in request.coordinator_keys]}
        return {"throttle_time": 0, "coordinators": [
            dict(_locate(ctx.state, key, ctx.listener), key=key) for key in request.coordinator_keys]}
    return dict(_locate(ctx.state, request.key, ctx.listener), throttle_time=0)
