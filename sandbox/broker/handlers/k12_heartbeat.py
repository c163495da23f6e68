"""Heartbeat (12), v0-v4: keeps a member alive; REBALANCE_IN_PROGRESS tells it to rejoin."""

from __future__ import annotations

from sandbox.coordinator.acls import GROUP, READ
from sandbox.protocol.errors import GROUP_AUTHORIZATION_FAILED
from sandbox.protocol.errors import NOT_COORDINATOR

API_KEY = 12
MIN_VERSION = 0
MAX_VERSION = 4


def handle(ctx, request) -> dict:
    if ctx.restricted and not ctx.allowed(READ, GROUP, request.group_id):   # ACLs: READ on the group
        return {"throttle_time": 0, "error_code": GROUP_AUTHORIZATION_FAILED}
    if not ctx.state.is_group_coordinator(request.group_id):
        return {"throttle_time": 0, "error_code": NOT_COORDINATOR}
    code = ctx.state.groups.heartbeat(
        request.group_id, request.generation_id, request.member_id,
        getattr(request, "group_instance_id", None),
    )
    return {"throttle_time": 0, "error_code": code}
