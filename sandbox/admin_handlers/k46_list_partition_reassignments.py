"""ListPartitionReassignments (46), v0: the running reassignments (of the partitions asked, or
all with topics = None): each partition's replicas (the target followed by those being removed)
and the replicas being added and removed, as Kafka lists them."""

from __future__ import annotations

from sandbox.coordinator.acls import DESCRIBE

from .access import cluster_refusal
from sandbox.coordinator.reassign import ongoing
from sandbox.protocol.errors import NONE

API_KEY = 46
MIN_VERSION = 0
MAX_VERSION = 0


def handle(ctx, request) -> dict:
    if (refused := cluster_refusal(ctx, DESCRIBE)) != NONE:   # ACLs: DESCRIBE on the cluster
        return {"throttle_time": 0, "error_code": refused, "error_message": None, "topics": []}
    asked = None
    if request.topics is not None:
        asked = {(t.name, int(i)) for t in request.topics for i in t.partition_indexes}
    topics = [{"name": name, "partitions": [
        {"partition_index": p.index, "replicas": list(p.replicas), "adding_replicas": list(p.adding),
         "removing_replicas": list(p.removing)} for p in parts]}
        for name, parts in ongoing(ctx.admin.coordinator.topics(), asked).items()]
    return {"throttle_time": 0, "error_code": NONE, "error_message": None, "topics": topics}
