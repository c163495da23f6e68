"""SyncGroup (14), v0-v5: the leader's assignment is handed to every member."""

from __future__ import annotations

from sandbox.coordinator.acls import GROUP, READ
from sandbox.protocol.errors import GROUP_AUTHORIZATION_FAILED
from sandbox.protocol.errors import NOT_COORDINATOR

API_KEY = 14
MIN_VERSION = 0
MAX_VERSION = 5


async def handle(ctx, request) -> dict:
    if ctx.restricted and not ctx.allowed(READ, GROUP, request.group_id):   # ACLs: READ on the group
        return {"throttle_time": 0, "error_code": GROUP_AUTHORIZATION_FAILED, "protocol_type": None,
                "protocol_name": None, "assignment": b""}
    if not ctx.state.is_group_coordinator(request.group_id):
        return {"throttle_time": 0, "error_code": NOT_COORDINATOR, "protocol_type": None,
                "protocol_name": None, "assignment": b""}
    res = await ctx.state.groups.sync_group(
        request.group_id, request.generation_id, request.member_id,
        getattr(request, "group_instance_id", None), getattr(request, "protocol_type", None),
        getattr(request, "protocol_name", None),
        {a.member_id: a.assignment for a in request.assignments}, peer=ctx.peer,
    )
    return {"throttle_time": 0, "error_code": res.error_code, "protocol_type": res.protocol_type,
            "protocol_name": res.protocol_name, "assignment": res.assignment or b""}
