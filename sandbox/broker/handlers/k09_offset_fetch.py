"""OffsetFetch (9), v1-v7: committed offsets; unknown group or partition gives -1, not an error."""

from __future__ import annotations

from .common import NONE, NOT_COORDINATOR

API_KEY = 9
MIN_VERSION = 1
MAX_VERSION = 7


def handle(ctx, request) -> dict:
    groups = ctx.state.groups
    if not ctx.state.is_group_coordinator(request.group_id):
        return {"throttle_time": 0, "topics": [], "error_code": NOT_COORDINATOR}
    if request.topics is None:
        found = groups.fetch_offsets(request.group_id, None)
        wanted: dict[str, list[int]] = {}
        for (topic, part) in found:
            wanted.setdefault(topic, []).append(part)
    else:
        wanted = {t.name: list(t.partition_indexes) for t in request.topics}
        found = groups.fetch_offsets(request.group_id, [(n, p) for n, ps in wanted.items() for p in ps])
    topics = []
    for name, parts in wanted.items():
        out = []
        for p in sorted(parts):
            off, epoch, meta = found.get((name, p), (-1, -1, ""))
            out.append({"partition_index": p, "committed_offset": off, "committed_leader_epoch": epoch,
                        "metadata": meta if meta is not None else "", "error_code": NONE})
        topics.append({"name": name, "partitions": out})
    return {"throttle_time": 0, "topics": topics, "error_code": NONE}
