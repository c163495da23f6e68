"""AlterConfigs (33), v0-v2: replaces a topic's whole dynamic config set (legacy semantics)."""

from __future__ import annotations

from sandbox.coordinator.acls import ALTER_CONFIGS
from sandbox.protocol.errors import NONE

from .access import config_refusal
from .configs import alter

API_KEY = 33
MIN_VERSION = 0
MAX_VERSION = 2


async def handle(ctx, request) -> dict:
    return {"throttle_time": 0, "responses": [
        await alter(ctx.admin, r.resource_type, r.resource_name,
                    {c.name: c.value for c in r.configs if c.value is not None},
                    [c.name for c in r.configs if c.value is None], False, request.validate_only)
        if (code := config_refusal(ctx, r.resource_type, r.resource_name, ALTER_CONFIGS)) == NONE else
        {"error_code": code, "error_message": None, "resource_type": r.resource_type, "resource_name": r.resource_name}
        for r in request.resources]}
