"""JoinGroup (11), v0-v9: classic group membership; waits until the rebalance completes."""

from __future__ import annotations

from sandbox.coordinator.acls import GROUP, READ
from sandbox.protocol.errors import GROUP_AUTHORIZATION_FAILED
from sandbox.protocol.errors import NOT_COORDINATOR

API_KEY = 11
MIN_VERSION = 0
MAX_VERSION = 9


async def handle(ctx, request) -> dict:
    denied = ctx.restricted and not ctx.allowed(READ, GROUP, request.group_id)   # ACLs: READ on the group
    if denied or not ctx.state.is_group_coordinator(request.group_id):
        return {"throttle_time": 0, "error_code": GROUP_AUTHORIZATION_FAILED if denied else NOT_COORDINATOR, "generation_id": -1,
                "protocol_type": None, "protocol_name": "", "leader": "", "member_id": "" if denied else request.member_id,
                "members": []}
    session_ms = int(request.session_timeout.total_seconds() * 1000)
    rebalance = getattr(request, "rebalance_timeout", None)
    rebalance_ms = int(rebalance.total_seconds() * 1000) if rebalance is not None else session_ms
    res = await ctx.state.groups.join_group(
        request.group_id, request.member_id, getattr(request, "group_instance_id", None),
        request.protocol_type, [(p.name, p.metadata) for p in request.protocols],
        session_ms, rebalance_ms, ctx.client_id or "", ctx.peer.rsplit(":", 1)[0],
        require_known_member_id=ctx.api_version >= 4, reason=getattr(request, "reason", None),
        peer=ctx.peer, topics=ctx.state.coordinator.topics, supports_skip=ctx.api_version >= 9,
    )
    return {
        "throttle_time": 0, "error_code": res.error_code, "generation_id": res.generation_id,
        "protocol_type": res.protocol_type, "protocol_name": res.protocol_name or "",
        "leader": res.leader or "", "skip_assignment": res.skip_assignment, "member_id": res.member_id or "",
        "members": [{"member_id": m, "group_instance_id": i, "metadata": md} for m, i, md in res.members],
    }
