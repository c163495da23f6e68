"""DeleteTopics (20), v1-v6: the coordinator removes the topic; brokers following the metadata
drop their logs (and their group offsets of it) when they see the removal. v6 names topics by
name or by topic id."""

from __future__ import annotations

from sandbox.coordinator.acls import DELETE, DESCRIBE
from sandbox.protocol.errors import TOPIC_AUTHORIZATION_FAILED

from .access import topic_refused
import uuid

from sandbox.coordinator.model import CoordinatorError
from sandbox.protocol.errors import NONE, TOPIC_DELETION_DISABLED, UNKNOWN_TOPIC_ID

API_KEY = 20
MIN_VERSION = 1
MAX_VERSION = 6
ZERO_UUID = uuid.UUID(int=0)


async def handle(ctx, request) -> dict:
    coord = ctx.admin.coordinator
    # delete.topic.enable=false: every deletion refused, as Kafka refuses it
    disabled = ctx.admin.server_configs().get("delete.topic.enable") == "false"
    out = []
    wanted = ([(t.name, t.topic_id) for t in request.topics] if ctx.api_version >= 6
              else [(name, None) for name in request.topic_names])
    for name, topic_id in wanted:
        entry = {"name": name, "topic_id": topic_id or ZERO_UUID, "error_code": NONE, "error_message": None}
        if name is None:
            t = coord.topic_by_id(topic_id) if topic_id not in (None, ZERO_UUID) else None
            if t is None:
                entry["error_code"] = UNKNOWN_TOPIC_ID
                entry["error_message"] = f"Topic id {topic_id} does not exist."
                out.append(entry)
                continue
            if topic_refused(ctx, DESCRIBE, t.name):   # ACLs, before anything about the topic is told
                entry["error_code"] = TOPIC_AUTHORIZATION_FAILED
                out.append(entry)
                continue
            name = entry["name"] = t.name
        elif topic_refused(ctx, DELETE, name):   # ACLs: DELETE on the topic (id not told)
            entry["error_code"] = TOPIC_AUTHORIZATION_FAILED
            out.append(entry)
            continue
        elif (t := coord.topic(name)) is not None:
            entry["topic_id"] = t.topic_id
        if topic_refused(ctx, DELETE, name):   # ACLs: DELETE on the topic
            entry["error_code"] = TOPIC_AUTHORIZATION_FAILED
            out.append(entry)
            continue
        if disabled:
            entry["error_code"] = TOPIC_DELETION_DISABLED
            entry["error_message"] = "Topic deletion is disabled (delete.topic.enable=false)."
            out.append(entry)
            continue
        try:
            await coord.delete_topic(name)
        except CoordinatorError as e:
            entry["error_code"], entry["error_message"] = e.error_code, e.message
        out.append(entry)
    return {"throttle_time": 0, "responses": out}
