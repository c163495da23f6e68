"""ConsumerGroupDescribe (69), v0-v1 (KIP-848): group and assignment epochs, the assignor, and
per member its subscription, current and target assignment. A classic group or an unknown id is
GROUP_ID_NOT_FOUND, as Kafka answers (admin clients then fall back to DescribeGroups)."""

from __future__ import annotations

from sandbox.coordinator.acls import DESCRIBE, GROUP, TOPIC
from sandbox.protocol.errors import GROUP_AUTHORIZATION_FAILED, TOPIC_AUTHORIZATION_FAILED
from sandbox.protocol.errors import NOT_COORDINATOR

API_KEY = 69
MIN_VERSION = 0
MAX_VERSION = 1


def handle(ctx, request) -> dict:
    state = ctx.state
    ids = {t.name: str(t.topic_id) for t in state.coordinator.topics()}
    out = []
    for gid in request.group_ids:
        if ctx.restricted and not ctx.allowed(DESCRIBE, GROUP, gid):   # ACLs: DESCRIBE on the group
            out.append({"error_code": GROUP_AUTHORIZATION_FAILED, "error_message": None, "group_id": gid,
                        "group_state": "", "group_epoch": 0, "assignment_epoch": 0, "assignor_name": "",
                        "members": [], "authorized_operations": -2147483648})
            continue
        if not state.is_group_coordinator(gid):
            out.append({"error_code": NOT_COORDINATOR, "error_message": None, "group_id": gid, "group_state": "",
                        "group_epoch": 0, "assignment_epoch": 0, "assignor_name": "", "members": [],
                        "authorized_operations": -2147483648})
            continue
        described = state.groups.describe_consumer_group(gid, ids)
        if ctx.restricted and not all(ctx.allowed(DESCRIBE, TOPIC, tp["topic_name"], report=False)
                                      for m in described["members"] for a in (m["assignment"], m["target_assignment"])
                                      for tp in a["topic_partitions"]):
            # as Kafka: a group whose members hold topics the principal may not DESCRIBE is not shown
            out.append({"error_code": TOPIC_AUTHORIZATION_FAILED, "error_message": "The group has described topic(s) "
                        "that the client is not authorized to describe.", "group_id": gid, "group_state": "",
                        "group_epoch": 0, "assignment_epoch": 0, "assignor_name": "", "members": [],
                        "authorized_operations": -2147483648})
            continue
        if getattr(request, "include_authorized_operations", False):
            described["authorized_operations"] = ctx.operations(GROUP, gid)
        out.append(described)
    return {"throttle_time": 0, "groups": out}
