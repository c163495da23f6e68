"""DeleteTopics (20), v1-v5: the coordinator removes the topic; brokers following the metadata
drop their logs (and their group offsets of it) when they see the removal."""

from __future__ import annotations

from ..model import CoordinatorError
from sandbox.protocol.errors import NONE

API_KEY = 20
MIN_VERSION = 1
MAX_VERSION = 5


def handle(ctx, request) -> dict:
    out = []
    for name in request.topic_names:
        entry = {"name": name, "error_code": NONE, "error_message": None}
        try:
            ctx.coordinator.delete_topic(name)
        except CoordinatorError as e:
            entry["error_code"], entry["error_message"] = e.error_code, e.message
        out.append(entry)
    return {"throttle_time": 0, "responses": out}
