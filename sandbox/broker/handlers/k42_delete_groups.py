"""DeleteGroups (42), v0-v2: removes empty groups and their committed offsets."""

from __future__ import annotations

API_KEY = 42
MIN_VERSION = 0
MAX_VERSION = 2


def handle(ctx, request) -> dict:
    results = ctx.state.groups.delete_groups(list(request.groups_names))
    return {"throttle_time": 0, "results": [{"group_id": g, "error_code": c} for g, c in results]}
