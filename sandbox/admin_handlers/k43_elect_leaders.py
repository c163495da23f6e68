"""ElectLeaders (43), v0-v2: preferred (type 0) moves each partition's leadership back to its
first replica where that broker is alive and in sync; unclean (type 1, v1+) gives a leaderless
partition any live replica. Decided by the coordinator (elections.py). topic_partitions=None
means every partition, and then (as in Kafka) only partitions whose election was not a no-op
are listed."""

from __future__ import annotations

from sandbox.coordinator.acls import ALTER

from .access import cluster_refusal
from sandbox.coordinator.model import CoordinatorError
from sandbox.protocol.errors import ELECTION_NOT_NEEDED, NONE

API_KEY = 43
MIN_VERSION = 0
MAX_VERSION = 2


async def handle(ctx, request) -> dict:
    if (refused := cluster_refusal(ctx, ALTER)) != NONE:   # ACLs: ALTER on the cluster; each partition refused
        return {"throttle_time": 0, "error_code": refused, "replica_election_results": [
            {"topic": t.topic, "partition_result": [{"partition_id": int(p), "error_code": refused, "error_message": None}
                                                    for p in t.partitions]} for t in request.topic_partitions or ()]}
    coord = ctx.admin.coordinator
    asked = request.topic_partitions
    if asked is None:
        pairs = [(t.name, p.index) for t in coord.topics() if not t.internal for p in t.partitions]
    else:
        pairs = [(t.topic, int(p)) for t in asked for p in t.partitions]
    election_type = int(getattr(request, "election_type", 0))
    try:
        results = await coord.elect_leaders(election_type, pairs)
    except CoordinatorError as e:
        return {"throttle_time": 0, "error_code": e.error_code, "replica_election_results": []}
    by_topic: dict[str, list[dict]] = {}
    for (topic, index), (code, message) in results.items():
        if asked is None and code == ELECTION_NOT_NEEDED:
            continue
        by_topic.setdefault(topic, []).append({"partition_id": index, "error_code": code, "error_message": message})
    return {"throttle_time": 0, "error_code": NONE, "replica_election_results": [
        {"topic": topic, "partition_result": parts} for topic, parts in by_topic.items()]}
