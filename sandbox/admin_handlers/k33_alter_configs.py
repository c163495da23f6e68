"""AlterConfigs (33), v0-v2: replaces a topic's whole dynamic config set (legacy semantics).
Refused per resource as Kafka's ConfigAdminManager refuses it (INVALID_REQUEST): a resource named
twice in the request (every entry of it), a config key named twice, a null value (Kafka 4's
legacy path deletes nothing by a null: what the new set lacks is what goes)."""

from __future__ import annotations

from sandbox.coordinator.acls import ALTER_CONFIGS
from sandbox.protocol.errors import INVALID_REQUEST, NONE

from .access import config_refusal
from .configs import DUPLICATED_RESOURCE_MESSAGE, alter, duplicated_resources

API_KEY = 33
MIN_VERSION = 0
MAX_VERSION = 2


def _malformed(r, duplicated) -> str | None:
    names = [c.name for c in r.configs]
    if (int(r.resource_type), r.resource_name) in duplicated:
        return DUPLICATED_RESOURCE_MESSAGE
    if len(names) != len(set(names)):
        return "Error due to duplicate config keys"
    nulls = [c.name for c in r.configs if c.value is None]
    return f"Null value not supported for : {', '.join(nulls)}" if nulls else None


async def handle(ctx, request) -> dict:
    duplicated = duplicated_resources(request.resources)
    out = []
    for r in request.resources:
        entry = {"error_code": NONE, "error_message": None, "resource_type": r.resource_type,
                 "resource_name": r.resource_name}
        if (why := _malformed(r, duplicated)) is not None:
            out.append({**entry, "error_code": INVALID_REQUEST, "error_message": why})
        elif (code := config_refusal(ctx, r.resource_type, r.resource_name, ALTER_CONFIGS)) != NONE:
            out.append({**entry, "error_code": code})
        else:
            out.append(await alter(ctx.admin, r.resource_type, r.resource_name, {c.name: c.value for c in r.configs},
                                   [], False, request.validate_only))
    return {"throttle_time": 0, "responses": out}
