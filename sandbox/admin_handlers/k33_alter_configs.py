"""AlterConfigs (33), v0-v2: replaces a topic's whole dynamic config set (legacy semantics)."""

from __future__ import annotations

from .configs import alter

API_KEY = 33
MIN_VERSION = 0
MAX_VERSION = 2


async def handle(ctx, request) -> dict:
    return {"throttle_time": 0, "responses": [
        await alter(ctx.admin, r.resource_type, r.resource_name,
                    {c.name: c.value for c in r.configs if c.value is not None},
                    [c.name for c in r.configs if c.value is None], False, request.validate_only)
        for r in request.resources]}
