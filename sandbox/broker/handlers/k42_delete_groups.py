"""DeleteGroups (42), v0-v2: removes empty groups and their committed offsets."""

from __future__ import annotations

from sandbox.protocol.errors import NOT_COORDINATOR

API_KEY = 42
MIN_VERSION = 0
MAX_VERSION = 2


def handle(ctx, request) -> dict:
    mine = [g for g in request.groups_names if ctx.state.is_group_coordinator(g)]
    results = ctx.state.groups.delete_groups(mine) if mine else []
    results += [(g, NOT_COORDINATOR) for g in request.groups_names if g not in mine]
    return {"throttle_time": 0, "results": [{"group_id": g, "error_code": c} for g, c in results]}
