"""IncrementalAlterConfigs (44), v0-v1: SET (0) and DELETE (1) per key; APPEND (2) and
SUBTRACT (3) on list values."""

from __future__ import annotations

from .configs import alter

API_KEY = 44
MIN_VERSION = 0
MAX_VERSION = 1
SET, DELETE, APPEND, SUBTRACT = 0, 1, 2, 3


def _ops(coord, name, configs) -> tuple[dict[str, str], list[str]]:
    set_: dict[str, str] = {}
    delete: list[str] = []
    current = {}
    if coord.topic(name) is not None:
        current = {k: v for k, (v, _d) in coord.describe_configs(name).items()}
    for c in configs:
        if c.config_operation == SET:
            set_[c.name] = c.value
        elif c.config_operation == DELETE:
            delete.append(c.name)
        else:
            items = [x for x in (current.get(c.name) or "").split(",") if x]
            vals = [x for x in (c.value or "").split(",") if x]
            if c.config_operation == APPEND:
                items += [v for v in vals if v not in items]
            else:
                items = [x for x in items if x not in vals]
            set_[c.name] = ",".join(items)
    return set_, delete


def handle(ctx, request) -> dict:
    out = []
    for r in request.resources:
        set_, delete = _ops(ctx.coordinator, r.resource_name, r.configs)
        out.append(alter(ctx.server, r.resource_type, r.resource_name, set_, delete, True,
                         request.validate_only))
    return {"throttle_time": 0, "responses": out}
