"""ListPartitionReassignments (46), v0: the running reassignments (of the partitions asked, or
all with topics = None): each partition's replicas (the target followed by those being removed)
and the replicas being added and removed, as Kafka lists them."""

from __future__ import annotations

from sandbox.protocol.errors import NONE

API_KEY = 46
MIN_VERSION = 0
MAX_VERSION = 0


def handle(ctx, request) -> dict:
    asked = None
    if request.topics is not None:
        asked = {(t.name, int(i)) for t in request.topics for i in t.partition_indexes}
    topics = []
    for t in sorted(ctx.admin.coordinator.topics(), key=lambda t: t.name):
        parts = [{"partition_index": p.index, "replicas": list(p.replicas), "adding_replicas": list(p.adding),
                  "removing_replicas": list(p.removing)}
                 for p in t.partitions if p.reassigning and (asked is None or (t.name, p.index) in asked)]
        if parts:
            topics.append({"name": t.name, "partitions": parts})
    return {"throttle_time": 0, "error_code": NONE, "error_message": None, "topics": topics}
