"""DeleteTopics (20), v1-v6: the coordinator removes the topic; brokers following the metadata
drop their logs (and their group offsets of it) when they see the removal. v6 names topics by
name or by topic id.

As Kafka's ControllerApis.deleteTopics answers: delete.topic.enable=false refuses the whole
request (INVALID_REQUEST below v3, TOPIC_DELETION_DISABLED from v3); then a row with neither a
name nor an id, or with both, a name or an id given twice, and a name whose id another row gives
are INVALID_REQUEST and nothing is deleted for them. ACLs: DELETE on the cluster may delete any
topic; otherwise a topic the principal may not DESCRIBE is TOPIC_AUTHORIZATION_FAILED whether it
exists or not, one it may describe but not DELETE is told missing if it is (by name), else
TOPIC_AUTHORIZATION_FAILED."""

from __future__ import annotations

import uuid

from sandbox.coordinator.acls import CLUSTER, CLUSTER_NAME, DELETE, DESCRIBE
from sandbox.coordinator.model import CoordinatorError
from sandbox.coordinator.rules import DUPLICATE_TOPIC_NAME, duplicated_names
from sandbox.protocol.errors import (
    INVALID_REQUEST, NONE, TOPIC_AUTHORIZATION_FAILED, TOPIC_DELETION_DISABLED, UNKNOWN_TOPIC_ID,
    UNKNOWN_TOPIC_OR_PARTITION,
)

from .access import topic_refused

API_KEY = 20
MIN_VERSION = 1
MAX_VERSION = 6
ZERO_UUID = uuid.UUID(int=0)


def _result(name, topic_id, code: int = NONE, message: str | None = None) -> dict:
    return {"name": name, "topic_id": topic_id or ZERO_UUID, "error_code": code, "error_message": message}


def _rows(rows: list[tuple]) -> tuple[list[str], list[uuid.UUID], list[dict]]:
    """(the names, the ids to delete, the INVALID_REQUEST results) of a request's (name, id)
    rows, each name and id given once (ControllerApis.deleteTopics' preamble)."""
    names: list[str] = []
    ids: list[uuid.UUID] = []
    out: list[dict] = []
    for name, topic_id in rows:
        if name is None and topic_id in (None, ZERO_UUID):
            out.append(_result(None, None, INVALID_REQUEST, "Neither topic name nor id were specified."))
        elif name is not None and topic_id not in (None, ZERO_UUID):
            out.append(_result(name, topic_id, INVALID_REQUEST, "You may not specify both topic name and topic id."))
        elif name is not None:
            names.append(name)
        else:
            ids.append(topic_id)
    twice_names, twice_ids = duplicated_names(names), duplicated_names(ids)
    for given, twice, key, message in ((names, twice_names, "name", DUPLICATE_TOPIC_NAME),
                                       (ids, twice_ids, "id", "Duplicate topic id.")):
        for value in dict.fromkeys(v for v in given if v in twice):
            out.append(_result(value if key == "name" else None, value if key == "id" else None,
                               INVALID_REQUEST, message))
    return ([n for n in dict.fromkeys(names) if n not in twice_names],
            [i for i in dict.fromkeys(ids) if i not in twice_ids], out)


async def handle(ctx, request) -> dict:
    coord = ctx.admin.coordinator
    rows = ([(t.name, t.topic_id) for t in request.topics] if ctx.api_version >= 6
            else [(name, None) for name in request.topic_names])
    if ctx.admin.server_configs().get("delete.topic.enable") == "false":
        # the whole request refused, as Kafka's controller refuses it
        code = INVALID_REQUEST if ctx.api_version < 3 else TOPIC_DELETION_DISABLED
        return {"throttle_time": 0, "responses": [
            _result(name, topic_id, code, "Topic deletion is disabled.") for name, topic_id in rows]}
    names, ids, out = _rows(rows)
    # ACLs: DELETE on the cluster may delete any topic (Kafka's hasClusterAuth)
    cluster = not getattr(ctx, "restricted", False) or ctx.allowed(DELETE, CLUSTER, CLUSTER_NAME, report=False)
    wanted: dict[uuid.UUID, str] = {}   # topic id -> name, of the topics to delete
    for topic_id in ids:
        t = coord.topic_by_id(topic_id)
        if t is None:
            out.append(_result(None, topic_id, UNKNOWN_TOPIC_ID, f"Topic id {topic_id} does not exist."))
        elif not cluster and topic_refused(ctx, DELETE, t.name):   # its name told only if describable
            out.append(_result(None if topic_refused(ctx, DESCRIBE, t.name) else t.name, topic_id,
                               TOPIC_AUTHORIZATION_FAILED))
        else:
            wanted[t.topic_id] = t.name
    for name in names:
        t = coord.topic(name)
        if not cluster and topic_refused(ctx, DESCRIBE, name):
            out.append(_result(name, None, TOPIC_AUTHORIZATION_FAILED))
        elif t is None:
            out.append(_result(name, None, UNKNOWN_TOPIC_OR_PARTITION, "This server does not host this topic-partition."))
        elif not cluster and topic_refused(ctx, DELETE, name):
            out.append(_result(name, None, TOPIC_AUTHORIZATION_FAILED))
        elif t.topic_id in wanted:
            out.append(_result(name, None, INVALID_REQUEST,
                               "The provided topic name maps to an ID that was already supplied."))
        else:
            wanted[t.topic_id] = name
    for topic_id, name in wanted.items():
        entry = _result(name, topic_id)
        try:
            await coord.delete_topic(name)
        except CoordinatorError as e:
            entry["error_code"], entry["error_message"] = e.error_code, e.message
        out.append(entry)
    return {"throttle_time": 0, "responses": sorted(out, key=lambda r: _position(rows, r))}


def _position(rows: list[tuple], result: dict) -> int:
    """Where the row a result answers stands in the request (results are answered in its order)."""
    for i, (name, topic_id) in enumerate(rows):
        if topic_id in (None, ZERO_UUID) and name is None:
            if result["name"] is None and result["topic_id"] == ZERO_UUID:
                return i
        elif topic_id not in (None, ZERO_UUID) and topic_id == result["topic_id"] or name is not None and name == result["name"]:
            return i
    return len(rows)
