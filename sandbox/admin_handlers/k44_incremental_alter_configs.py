"""IncrementalAlterConfigs (44), v0-v1: SET (0) and DELETE (1) per key; APPEND (2) and
SUBTRACT (3) on list values."""

from __future__ import annotations

from sandbox.coordinator.topic_configs import incremental_ops

from .configs import alter

API_KEY = 44
MIN_VERSION = 0
MAX_VERSION = 1


def _ops(coord, name, configs) -> tuple[dict[str, str], list[str]]:
    """(set, delete) for alter_configs, list operations applied to the current values."""
    current = {}
    if coord.topic(name) is not None:
        current = {k: v for k, (v, _d) in coord.describe_configs(name).items()}
    return incremental_ops(current, [(c.name, c.config_operation, c.value) for c in configs])


async def handle(ctx, request) -> dict:
    out = []
    for r in request.resources:
        set_, delete = _ops(ctx.admin.coordinator, r.resource_name, r.configs)
        out.append(await alter(ctx.admin, r.resource_type, r.resource_name, set_, delete, True,
                               request.validate_only))
    return {"throttle_time": 0, "responses": out}
