"""CreatePartitions (37), v0-v3: grow a topic's partition count (never shrink). A topic named
twice in one request is changed for neither entry and answered once, INVALID_REQUEST
"Duplicate topic name.", as Kafka's ControllerApis answers it."""

from __future__ import annotations

from sandbox.coordinator.acls import ALTER
from sandbox.protocol.errors import TOPIC_AUTHORIZATION_FAILED

from .access import topic_refused
from sandbox.coordinator.model import CoordinatorError
from sandbox.coordinator.rules import DUPLICATE_TOPIC_NAME, duplicated_names
from sandbox.protocol.errors import INVALID_REQUEST, NONE

API_KEY = 37
MIN_VERSION = 0
MAX_VERSION = 3


async def handle(ctx, request) -> dict:
    out = []
    names = [t.name for t in request.topics]
    duplicated = duplicated_names(names)
    for name in dict.fromkeys(n for n in names if n in duplicated):   # one answer each, nothing changed
        out.append({"name": name, "error_code": INVALID_REQUEST, "error_message": DUPLICATE_TOPIC_NAME})
    for t in request.topics:
        if t.name in duplicated:
            continue
        entry = {"name": t.name, "error_code": NONE, "error_message": None}
        assignments = [list(a.broker_ids) for a in t.assignments] if t.assignments else None
        if topic_refused(ctx, ALTER, t.name):   # ACLs: ALTER on the topic
            entry["error_code"] = TOPIC_AUTHORIZATION_FAILED
            out.append(entry)
            continue
        try:
            await ctx.admin.coordinator.create_partitions(t.name, t.count, assignments=assignments,
                                                          validate_only=request.validate_only)
        except CoordinatorError as e:
            entry["error_code"], entry["error_message"] = e.error_code, e.message
        out.append(entry)
    return {"throttle_time": 0, "results": out}
