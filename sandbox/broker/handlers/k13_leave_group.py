"""LeaveGroup (13), v0-v5: one member (v0-v2) or a batch of members (v3+) leave."""

from __future__ import annotations

from sandbox.coordinator.acls import GROUP, READ
from sandbox.protocol.errors import GROUP_AUTHORIZATION_FAILED
from sandbox.protocol.errors import NONE, NOT_COORDINATOR

API_KEY = 13
MIN_VERSION = 0
MAX_VERSION = 5


def handle(ctx, request) -> dict:
    if ctx.restricted and not ctx.allowed(READ, GROUP, request.group_id):   # ACLs: READ on the group
        return {"throttle_time": 0, "error_code": GROUP_AUTHORIZATION_FAILED, "members": []}
    if not ctx.state.is_group_coordinator(request.group_id):
        return {"throttle_time": 0, "error_code": NOT_COORDINATOR, "members": []}
    if ctx.api_version >= 3:
        members = [(m.member_id, m.group_instance_id) for m in request.members]
    else:
        members = [(request.member_id, None)]
    code, results = ctx.state.groups.leave_group(request.group_id, members)
    if ctx.api_version < 3 and code == NONE and results:
        code = results[0][2]   # no per-member results before v3: the one member's error, as Kafka folds it
    return {"throttle_time": 0, "error_code": code,
            "members": [{"member_id": m, "group_instance_id": i, "error_code": c} for m, i, c in results]}
