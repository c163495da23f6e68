"""DeleteTopics (20), v1-v5: the coordinator removes the topic; brokers drop the logs."""

from __future__ import annotations

from sandbox.coordinator import CoordinatorError

from ..state import maybe_await
from .common import NONE

API_KEY = 20
MIN_VERSION = 1
MAX_VERSION = 5


async def handle(ctx, request) -> dict:
    state = ctx.state
    out = []
    for name in request.topic_names:
        entry = {"name": name, "error_code": NONE, "error_message": None}
        try:
            await maybe_await(state.coordinator.delete_topic(name))
        except CoordinatorError as e:
            entry["error_code"], entry["error_message"] = e.error_code, e.message
        out.append(entry)
    return {"throttle_time": 0, "responses": out}
