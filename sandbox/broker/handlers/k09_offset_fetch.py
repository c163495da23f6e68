"""OffsetFetch (9), v1-v9: committed offsets; unknown group or partition gives -1, not an error.
v8+ asks for several groups at once; v9's member id and epoch are checked for KIP-848 consumer
groups (UNKNOWN_MEMBER_ID, STALE_MEMBER_EPOCH as the group's error), as Kafka 4.0 does.
v7+ require_stable (KIP-447): a partition with a transactional commit not yet completed answers
UNSTABLE_OFFSET_COMMIT (the client retries until the transaction ends)."""

from __future__ import annotations

from sandbox.coordinator.acls import DESCRIBE, GROUP, TOPIC
from sandbox.protocol.errors import (
    GROUP_AUTHORIZATION_FAILED, NONE, NOT_COORDINATOR, TOPIC_AUTHORIZATION_FAILED, UNSTABLE_OFFSET_COMMIT,
)

API_KEY = 9
MIN_VERSION = 1
MAX_VERSION = 9


def _group(ctx, group_id: str, topics, member: tuple[str | None, int] | None = None,
           require_stable: bool = False) -> tuple[list[dict], int]:
    """(topics with their committed offsets, group error code) for one group. With ACLs: DESCRIBE
    on the group, and on each topic (a topic not allowed is left out of an all-topics answer and
    refused TOPIC_AUTHORIZATION_FAILED when named), as Kafka answers."""
    state = ctx.state
    groups = state.groups
    restricted = ctx.restricted
    if restricted and not ctx.allowed(DESCRIBE, GROUP, group_id):
        return [], GROUP_AUTHORIZATION_FAILED
    if not state.is_group_coordinator(group_id):
        return [], NOT_COORDINATOR
    if member is not None and group_id in groups.consumer:
        code = groups.consumer.machine.fetch_check(group_id, *member)
        if code:
            return [], code
    if topics is None:
        found = groups.fetch_offsets(group_id, None)
        wanted: dict[str, list[int]] = {}
        for (topic, part) in found:
            if not restricted or ctx.allowed(DESCRIBE, TOPIC, topic, report=False):
                wanted.setdefault(topic, []).append(part)
    else:
        wanted = {t.name: list(t.partition_indexes) for t in topics}
        found = groups.fetch_offsets(group_id, [(n, p) for n, ps in wanted.items() for p in ps])
    out = []
    for name, parts in wanted.items():
        entries = []
        if restricted and topics is not None and not ctx.allowed(DESCRIBE, TOPIC, name):
            out.append({"name": name, "partitions": [
                {"partition_index": p, "committed_offset": -1, "committed_leader_epoch": -1, "metadata": "",
                 "error_code": TOPIC_AUTHORIZATION_FAILED} for p in sorted(parts)]})
            continue
        for p in sorted(parts):
            off, epoch, meta = found.get((name, p), (-1, -1, ""))
            code = NONE
            if require_stable and state.offsets.txn_pending(group_id, name, p):
                off, epoch, meta, code = -1, -1, "", UNSTABLE_OFFSET_COMMIT
            entries.append({"partition_index": p, "committed_offset": off, "committed_leader_epoch": epoch,
                            "metadata": meta if meta is not None else "", "error_code": code})
        out.append({"name": name, "partitions": entries})
    return out, NONE


def handle(ctx, request) -> dict:
    stable = bool(getattr(request, "require_stable", False))
    if ctx.api_version >= 8:
        groups = []
        for g in request.groups:
            member = (getattr(g, "member_id", None), getattr(g, "member_epoch", -1)) if ctx.api_version >= 9 else None
            topics, code = _group(ctx, g.group_id, g.topics, member, stable)
            groups.append({"group_id": g.group_id, "topics": topics, "error_code": code})
        return {"throttle_time": 0, "groups": groups}
    topics, code = _group(ctx, request.group_id, request.topics, require_stable=stable)
    return {"throttle_time": 0, "topics": topics, "error_code": code}
