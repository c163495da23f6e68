"""DeleteTopics (20), v1-v6: the coordinator removes the topic; brokers drop the logs. v6 names
topics by name or by topic id."""

from __future__ import annotations

import uuid

from sandbox.coordinator import CoordinatorError

from ..state import maybe_await
from sandbox.protocol.errors import NONE, UNKNOWN_TOPIC_ID

API_KEY = 20
ZERO_UUID = uuid.UUID(int=0)
MIN_VERSION = 1
MAX_VERSION = 6


async def handle(ctx, request) -> dict:
    state = ctx.state
    out = []
    wanted = ([(t.name, t.topic_id) for t in request.topics] if ctx.api_version >= 6
              else [(name, None) for name in request.topic_names])
    for name, topic_id in wanted:
        entry = {"name": name, "topic_id": topic_id or ZERO_UUID, "error_code": NONE, "error_message": None}
        if name is None:
            t = state.coordinator.topic_by_id(topic_id) if topic_id not in (None, ZERO_UUID) else None
            if t is None:
                entry["error_code"] = UNKNOWN_TOPIC_ID
                entry["error_message"] = f"Topic id {topic_id} does not exist."
                out.append(entry)
                continue
            name = entry["name"] = t.name
        elif (t := state.coordinator.topic(name)) is not None:
            entry["topic_id"] = t.topic_id
        try:
            await maybe_await(state.coordinator.delete_topic(name))
        except CoordinatorError as e:
            entry["error_code"], entry["error_message"] = e.error_code, e.message
        out.append(entry)
    return {"throttle_time": 0, "responses": out}
