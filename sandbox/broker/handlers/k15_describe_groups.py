"""DescribeGroups (15), v0-v6: state, protocol and members with metadata and assignment. From v6
(KIP-1043) a group that does not exist is GROUP_ID_NOT_FOUND instead of a Dead group; so is a
KIP-848 consumer group ("is not a classic group"), which earlier versions see as Dead, as in Kafka."""

from __future__ import annotations

from sandbox.coordinator.acls import DESCRIBE, GROUP
from sandbox.protocol.errors import GROUP_AUTHORIZATION_FAILED, GROUP_ID_NOT_FOUND, NONE, NOT_COORDINATOR

API_KEY = 15
MIN_VERSION = 0
MAX_VERSION = 6


def handle(ctx, request) -> dict:
    out = []
    with_ops = getattr(request, "include_authorized_operations", False)
    for gid in request.groups:
        if ctx.restricted and not ctx.allowed(DESCRIBE, GROUP, gid):   # ACLs: DESCRIBE on the group
            out.append({"error_code": GROUP_AUTHORIZATION_FAILED, "group_id": gid, "group_state": "",
                        "protocol_type": "", "protocol_data": "", "members": [], "authorized_operations": -2147483648})
            continue
        if not ctx.state.is_group_coordinator(gid):
            out.append({"error_code": NOT_COORDINATOR, "group_id": gid, "group_state": "", "protocol_type": "",
                        "protocol_data": "", "members": [], "authorized_operations": -2147483648})
            continue
        d = ctx.state.groups.describe_group(gid)
        if ctx.api_version >= 6 and d.error_code == NONE and d.state == "Dead":
            kind = "is not a classic group" if gid in ctx.state.groups.consumer else "not found"
            out.append({"error_code": GROUP_ID_NOT_FOUND, "error_message": f"Group {gid} {kind}.",
                        "group_id": gid, "group_state": "Dead", "protocol_type": "", "protocol_data": "",
                        "members": [], "authorized_operations": -2147483648})
            continue
        out.append({
            "error_code": d.error_code, "group_id": gid, "group_state": d.state,
            "protocol_type": d.protocol_type or "", "protocol_data": d.protocol or "",
            "members": [{"member_id": m, "group_instance_id": i, "client_id": c, "client_host": h,
                         "member_metadata": md, "member_assignment": a}
                        for m, i, c, h, md, a in d.members],
            "authorized_operations": ctx.operations(GROUP, gid) if with_ops else -2147483648,
        })
    return {"throttle_time": 0, "groups": out}
