"""IncrementalAlterConfigs (44), v0-v1: SET (0) and DELETE (1) per key; APPEND (2) and
SUBTRACT (3) on list values. A resource named twice in one request is refused for every entry of
it (INVALID_REQUEST), as Kafka's ConfigAdminManager refuses it, and so is a BROKER resource
naming another broker than this one; a DELETE of a key the resource does
not set changes nothing and succeeds (Kafka checks only the configs a change leaves)."""

from __future__ import annotations

from sandbox.coordinator.acls import ALTER_CONFIGS
from sandbox.protocol.errors import INVALID_REQUEST, NONE

from .access import config_refusal
from sandbox.coordinator.model import CoordinatorError
from sandbox.coordinator.topic_configs import incremental_ops

from .configs import DUPLICATED_RESOURCE_MESSAGE, alter, broker_name_refusal, current, duplicated_resources

API_KEY = 44
MIN_VERSION = 0
MAX_VERSION = 1


async def handle(ctx, request) -> dict:
    out = []
    duplicated = duplicated_resources(request.resources)
    for r in request.resources:
        if (int(r.resource_type), r.resource_name) in duplicated:   # every entry of it refused, none applied
            out.append({"error_code": INVALID_REQUEST, "error_message": DUPLICATED_RESOURCE_MESSAGE,
                        "resource_type": r.resource_type, "resource_name": r.resource_name})
            continue
        # another broker's resource: refused before the ACLs, as Kafka's broker preprocesses it
        refused = broker_name_refusal(ctx.admin, int(r.resource_type), r.resource_name, describing=False)
        if refused is not None:
            out.append({**refused, "resource_type": r.resource_type, "resource_name": r.resource_name})
            continue
        code = config_refusal(ctx, r.resource_type, r.resource_name, ALTER_CONFIGS)   # ACLs
        if code != NONE:
            out.append({"error_code": code, "error_message": None, "resource_type": r.resource_type,
                        "resource_name": r.resource_name})
            continue
        try:
            set_, delete = incremental_ops(current(ctx.admin, r.resource_type, r.resource_name),
                                           [(c.name, c.config_operation, c.value) for c in r.configs],
                                           r.resource_type)
        except CoordinatorError as e:
            out.append({"error_code": e.error_code, "error_message": e.message,
                        "resource_type": r.resource_type, "resource_name": r.resource_name})
            continue
        out.append(await alter(ctx.admin, r.resource_type, r.resource_name, set_, delete, True,
                               request.validate_only))
    return {"throttle_time": 0, "responses": out}
