"""FindCoordinator (10), v0-v6: the broker owning a group (the leader of its `__consumer_offsets`
partition) or a transactional id (key type 1: the leader of its `__transaction_state` partition),
each topic made on first need, with its address on the listener the request came in through.
Share groups (key type 2, v6) are not enabled here, so they get INVALID_REQUEST as on a Kafka 4.0
broker without them."""

from __future__ import annotations

from sandbox.coordinator.acls import DESCRIBE, GROUP, TRANSACTIONAL_ID
from sandbox.protocol.errors import (
    COORDINATOR_NOT_AVAILABLE, GROUP_AUTHORIZATION_FAILED, INVALID_REQUEST, NONE,
    TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
)
from ..endpoints import broker_list, self_endpoint
from ..internal_topics import OFFSETS_TOPIC, TXN_TOPIC

API_KEY = 10
MIN_VERSION = 0
MAX_VERSION = 6
TRANSACTION = 1
SHARE = 2


def _owner(state, key: str, key_type: int) -> int:
    if key_type == TRANSACTION:
        owner = state.txns.store.coordinator_for(key)
        return -1 if owner is None else owner
    return state.group_coordinator_id(key)


def _denied(ctx, key: str, key_type: int) -> bool:
    return not ctx.allowed(DESCRIBE, TRANSACTIONAL_ID if key_type == TRANSACTION else GROUP, key, report=False)


def _locate(state, key: str, listener: str | None = None, key_type: int = 0, ctx=None) -> dict:
    if ctx is not None and ctx.restricted:   # ACLs: DESCRIBE on the group or transactional id
        if key_type == TRANSACTION and not ctx.allowed(DESCRIBE, TRANSACTIONAL_ID, key):
            return {"node_id": -1, "host": "", "port": -1, "error_code": TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
                    "error_message": None}
        if key_type != TRANSACTION and not ctx.allowed(DESCRIBE, GROUP, key):
            return {"node_id": -1, "host": "", "port": -1, "error_code": GROUP_AUTHORIZATION_FAILED,
                    "error_message": None}
    owner = _owner(state, key, key_type)
    what = "transactional id" if key_type == TRANSACTION else "group"
    if owner < 0:
        topic = TXN_TOPIC if key_type == TRANSACTION else OFFSETS_TOPIC
        why = (f"the partition of {topic} that holds this {what} has no leader"
               if state.coordinator.topic(topic) is not None else
               f"{topic} does not exist yet (being created, or put back after the metadata was lost)")
        return {"node_id": -1, "host": "", "port": -1, "error_code": COORDINATOR_NOT_AVAILABLE,
                "error_message": why}
    if owner == state.node_id and key_type != TRANSACTION and state.group_lease_lapsed(key):
        # the group's calls would be answered NOT_COORDINATOR here meanwhile (is_group_coordinator):
        # the client asks again after its backoff instead of going round between the two
        return {"node_id": -1, "host": "", "port": -1, "error_code": COORDINATOR_NOT_AVAILABLE,
                "error_message": "this broker's coordinator session may have lapsed; another broker "
                                 "may coordinate the group by now"}
    if owner == state.node_id:
        ep = self_endpoint(state, listener)
        return {"node_id": ep["node_id"], "host": ep["host"], "port": ep["port"], "error_code": NONE,
                "error_message": None}
    for b in broker_list(state, listener):
        if b["node_id"] == owner:
            return {"node_id": owner, "host": b["host"], "port": b["port"], "error_code": NONE,
                    "error_message": None}
    return {"node_id": -1, "host": "", "port": -1, "error_code": COORDINATOR_NOT_AVAILABLE,
            "error_message": f"broker {owner}, which coordinates this {what}, is not available"}


async def handle(ctx, request) -> dict:
    key_type = getattr(request, "key_type", 0)
    keys = request.coordinator_keys if ctx.api_version >= 4 else [request.key]
    if ctx.restricted and key_type != SHARE and all(_denied(ctx, k, key_type) for k in keys):
        pass   # refused below, before the internal topic is made (Kafka authorizes first)
    elif key_type == TRANSACTION:
        await ctx.state.txns.ensure_topic()
    elif key_type != SHARE:
        await ctx.state.offsets.ensure_topic()
    if ctx.api_version >= 4:
        if request.key_type == SHARE:
            return {"throttle_time": 0, "coordinators": [
                {"key": key, "node_id": -1, "host": "", "port": -1, "error_code": INVALID_REQUEST,
                 "error_message": "Share groups are not enabled on this broker."}
                for key in request.coordinator_keys]}
        return {"throttle_time": 0, "coordinators": [
            dict(_locate(ctx.state, key, ctx.listener, key_type, ctx), key=key) for key in request.coordinator_keys]}
    return dict(_locate(ctx.state, request.key, ctx.listener, key_type, ctx), throttle_time=0)
