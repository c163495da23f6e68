"""ListGroups (16), v0-v4: every group this broker coordinates, optionally filtered by state."""

from __future__ import annotations

from .common import NONE

API_KEY = 16
MIN_VERSION = 0
MAX_VERSION = 4


def handle(ctx, request) -> dict:
    states = list(getattr(request, "states_filter", ()) or ()) or None
    groups = ctx.state.groups.list_groups(states)
    return {"throttle_time": 0, "error_code": NONE,
            "groups": [{"group_id": g, "protocol_type": pt or "", "group_state": s} for g, pt, s in groups]}
