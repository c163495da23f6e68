"""OffsetCommit (8), v2-v9 (v9 = v8 for classic groups): committed offsets per (group, topic, partition),
written to the group's `__consumer_offsets` partition and answered once its ISR has them.
Members of KIP-848 consumer groups commit with their member epoch (STALE_MEMBER_EPOCH, UNKNOWN_MEMBER_ID)."""

from __future__ import annotations

from sandbox.coordinator.acls import GROUP, READ, TOPIC
from sandbox.protocol.errors import (
    GROUP_AUTHORIZATION_FAILED, NONE, NOT_COORDINATOR, TOPIC_AUTHORIZATION_FAILED, UNKNOWN_TOPIC_OR_PARTITION,
)

API_KEY = 8
MIN_VERSION = 2
MAX_VERSION = 9


def _all(request, code: int) -> dict:
    return {"throttle_time": 0, "topics": [
        {"name": t.name, "partitions": [{"partition_index": p.partition_index, "error_code": code}
                                        for p in t.partitions]} for t in request.topics]}


async def handle(ctx, request) -> dict:
    state = ctx.state
    denied_topics: set[str] = set()
    if ctx.restricted:   # ACLs: READ on the group, then READ on each topic
        if not ctx.allowed(READ, GROUP, request.group_id):
            return _all(request, GROUP_AUTHORIZATION_FAILED)
        denied_topics = {t.name for t in request.topics if not ctx.allowed(READ, TOPIC, t.name)}
    await state.offsets.ensure_topic()
    if not state.is_group_coordinator(request.group_id):
        return _all(request, NOT_COORDINATOR)
    entries = []
    unknown = []
    for t in request.topics:
        for p in t.partitions:
            if t.name in denied_topics:
                unknown.append((t.name, p.partition_index, TOPIC_AUTHORIZATION_FAILED))
                continue
            if state.leader_of(t.name, p.partition_index) is None:
                unknown.append((t.name, p.partition_index, UNKNOWN_TOPIC_OR_PARTITION))
                continue
            entries.append((t.name, p.partition_index, p.committed_offset,
                            getattr(p, "committed_leader_epoch", -1), p.committed_metadata))
    results = state.groups.commit_offsets(
        request.group_id, request.generation_id_or_member_epoch, request.member_id,
        getattr(request, "group_instance_id", None), entries, api_version=ctx.api_version,
    ) if entries else []
    if any(code == NONE for _t, _p, code in results):
        code = await state.offsets.replicated(request.group_id, state.config.offsets_commit_timeout_ms / 1000)
        if code != NONE:
            results = [(t, p, code if c == NONE else c) for t, p, c in results]
    by_topic: dict[str, list[dict]] = {}
    for topic, part, code in results:
        by_topic.setdefault(topic, []).append({"partition_index": part, "error_code": code})
    for topic, part, code in unknown:
        by_topic.setdefault(topic, []).append({"partition_index": part, "error_code": code})
    return {"throttle_time": 0,
            "topics": [{"name": n, "partitions": ps} for n, ps in by_topic.items()]}
