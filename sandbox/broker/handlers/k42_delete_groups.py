"""DeleteGroups (42), v0-v2: removes empty groups and their committed offsets (tombstones in
`__consumer_offsets`, answered once the ISR has them)."""

from __future__ import annotations

from sandbox.coordinator.acls import DELETE, GROUP
from sandbox.protocol.errors import GROUP_AUTHORIZATION_FAILED
from sandbox.protocol.errors import NONE, NOT_COORDINATOR

API_KEY = 42
MIN_VERSION = 0
MAX_VERSION = 2


async def handle(ctx, request) -> dict:
    state = ctx.state
    # ACLs: DELETE on each group
    denied = [g for g in request.groups_names if ctx.restricted and not ctx.allowed(DELETE, GROUP, g)]
    mine = [g for g in request.groups_names if g not in denied and state.is_group_coordinator(g)]
    results = state.groups.delete_groups(mine) if mine else []
    timeout = state.config.offsets_commit_timeout_ms / 1000
    results = [(g, (await state.offsets.replicated(g, timeout)) if c == NONE else c) for g, c in results]
    results += [(g, GROUP_AUTHORIZATION_FAILED if g in denied else NOT_COORDINATOR)
                for g in request.groups_names if g not in mine]
    return {"throttle_time": 0, "results": [{"group_id": g, "error_code": c} for g, c in results]}
