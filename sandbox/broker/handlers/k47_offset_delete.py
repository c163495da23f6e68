"""OffsetDelete (47), v0 (KIP-496): deletes a group's committed offsets for some partitions.
Unknown topics or partitions get UNKNOWN_TOPIC_OR_PARTITION; an unknown group GROUP_ID_NOT_FOUND;
partitions of topics a consumer group with members subscribes to GROUP_SUBSCRIBED_TO_TOPIC."""

from __future__ import annotations

from sandbox.coordinator.acls import DELETE, GROUP, READ, TOPIC
from sandbox.protocol.errors import GROUP_AUTHORIZATION_FAILED, TOPIC_AUTHORIZATION_FAILED
from sandbox.protocol.errors import NONE, NOT_COORDINATOR, UNKNOWN_TOPIC_OR_PARTITION

API_KEY = 47
MIN_VERSION = 0
MAX_VERSION = 0


async def handle(ctx, request) -> dict:
    state = ctx.state
    denied: set[str] = set()
    if ctx.restricted:   # ACLs: DELETE on the group, READ on each topic
        if not ctx.allowed(DELETE, GROUP, request.group_id):
            return {"throttle_time": 0, "error_code": GROUP_AUTHORIZATION_FAILED, "topics": []}
        denied = {t.name for t in request.topics if not ctx.allowed(READ, TOPIC, t.name)}
    if not state.is_group_coordinator(request.group_id):
        return {"throttle_time": 0, "error_code": NOT_COORDINATOR, "topics": []}
    known, unknown = [], []
    for t in request.topics:
        for p in t.partitions:
            if t.name in denied:
                continue
            (known if state.leader_of(t.name, p.partition_index) is not None else unknown).append(
                (t.name, p.partition_index))
    code, results = state.groups.delete_offsets(request.group_id, known)
    if code:
        return {"throttle_time": 0, "error_code": code, "topics": []}
    written = await state.offsets.replicated(request.group_id, state.config.offsets_commit_timeout_ms / 1000)
    if written != NONE:   # the tombstones did not reach the ISR
        results = [(t, p, written if c == NONE else c) for t, p, c in results]
    by_topic: dict[str, list[dict]] = {}
    refused = [(t.name, p.partition_index, TOPIC_AUTHORIZATION_FAILED) for t in request.topics if t.name in denied
               for p in t.partitions]
    for topic, part, err in refused + [(t, p, UNKNOWN_TOPIC_OR_PARTITION) for t, p in unknown] + results:
        by_topic.setdefault(topic, []).append({"partition_index": part, "error_code": err})
    return {"throttle_time": 0, "error_code": code,
            "topics": [{"name": n, "partitions": ps} for n, ps in by_topic.items()]}
