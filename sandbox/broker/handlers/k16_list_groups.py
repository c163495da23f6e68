"""ListGroups (16), v0-v5: every group this broker coordinates, optionally filtered by state and
(v5) by type; every group here is a classic one."""

from __future__ import annotations

from .common import NONE

API_KEY = 16
MIN_VERSION = 0
MAX_VERSION = 5


def handle(ctx, request) -> dict:
    states = list(getattr(request, "states_filter", ()) or ()) or None
    types = {t.lower() for t in (getattr(request, "types_filter", ()) or ())}
    groups = ctx.state.groups.list_groups(states) if not types or "classic" in types else []
    return {"throttle_time": 0, "error_code": NONE,
            "groups": [{"group_id": g, "protocol_type": pt or "", "group_state": s, "group_type": "classic"}
                       for g, pt, s in groups]}
