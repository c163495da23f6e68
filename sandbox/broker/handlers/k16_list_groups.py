"""ListGroups (16), v0-v5: every group this broker coordinates, optionally filtered by state and
(v5) by type: "classic" groups (JoinGroup/SyncGroup) and KIP-848 "consumer" groups."""

from __future__ import annotations

from sandbox.coordinator.acls import CLUSTER, CLUSTER_NAME, DESCRIBE, GROUP
from sandbox.protocol.errors import NONE

API_KEY = 16
MIN_VERSION = 0
MAX_VERSION = 5


def handle(ctx, request) -> dict:
    states = list(getattr(request, "states_filter", ()) or ()) or None
    types = {t.lower() for t in (getattr(request, "types_filter", ()) or ())}
    consumer = ctx.state.groups.consumer
    rows = []
    # ACLs: every group with DESCRIBE on the cluster, else those the principal may DESCRIBE
    check = ctx.restricted and not ctx.allowed(DESCRIBE, CLUSTER, CLUSTER_NAME, report=False)
    for g, pt, s in ctx.state.groups.list_groups(states):
        kind = "consumer" if g in consumer else "classic"
        if (not types or kind in types) and not (check and not ctx.allowed(DESCRIBE, GROUP, g, report=False)):
            rows.append({"group_id": g, "protocol_type": pt or "", "group_state": s, "group_type": kind})
    return {"throttle_time": 0, "error_code": NONE, "groups": rows}
