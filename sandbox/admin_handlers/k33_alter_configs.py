"""AlterConfigs (33), v0-v2: replaces a topic's whole dynamic config set (legacy semantics).
Refused per resource as Kafka's ConfigAdminManager refuses it (INVALID_REQUEST): a resource named
twice in the request (every entry of it), a config key named twice, a null value (Kafka 4's
legacy path deletes nothing by a null: what the new set lacks is what goes), a BROKER resource
naming another broker than this one."""

from __future__ import annotations

from sandbox.coordinator.acls import ALTER_CONFIGS
from sandbox.protocol.errors import INVALID_REQUEST, NONE

from .access import config_refusal
from .configs import DUPLICATED_RESOURCE_MESSAGE, alter, broker_name_refusal, duplicated_resources

API_KEY = 33
MIN_VERSION = 0
MAX_VERSION = 2


def _malformed(ctx, r, duplicated) -> tuple[int, str] | None:
    names = [c.name for c in r.configs]
    if (int(r.resource_type), r.resource_name) in duplicated:
        return INVALID_REQUEST, DUPLICATED_RESOURCE_MESSAGE
    if len(names) != len(set(names)):
        return INVALID_REQUEST, "Error due to duplicate config keys"
    nulls = [c.name for c in r.configs if c.value is None]
    if nulls:
        return INVALID_REQUEST, f"Null value not supported for : {', '.join(nulls)}"
    refused = broker_name_refusal(ctx.admin, int(r.resource_type), r.resource_name, describing=False)
    return None if refused is None else (refused["error_code"], refused["error_message"])


async def handle(ctx, request) -> dict:
    duplicated = duplicated_resources(request.resources)
    out = []
    for r in request.resources:
        entry = {"error_code": NONE, "error_message": None, "resource_type": r.resource_type,
                 "resource_name": r.resource_name}
        if (why := _malformed(ctx, r, duplicated)) is not None:
            out.append({**entry, "error_code": why[0], "error_message": why[1]})
        elif (code := config_refusal(ctx, r.resource_type, r.resource_name, ALTER_CONFIGS)) != NONE:
            out.append({**entry, "error_code": code})
        else:
            out.append(await alter(ctx.admin, r.resource_type, r.resource_name, {c.name: c.value for c in r.configs},
                                   [], False, request.validate_only))
    return {"throttle_time": 0, "responses": out}
