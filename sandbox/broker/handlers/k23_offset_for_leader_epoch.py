"""OffsetForLeaderEpoch (23), v2-v4: end offset of a leader epoch, for truncation detection.

The answer comes from the partition's leader-epoch cache: the largest epoch <= the one asked
for and where it ended here (the start of the next epoch, or the log end for the latest). A
follower cuts its log there before it fetches (KIP-101/KIP-279); a request for a future epoch
gets UNKNOWN_LEADER_EPOCH.
"""

from __future__ import annotations

from sandbox.coordinator.acls import CLUSTER, CLUSTER_ACTION, CLUSTER_NAME, DESCRIBE, TOPIC
from sandbox.protocol.errors import NONE, TOPIC_AUTHORIZATION_FAILED

API_KEY = 23
MIN_VERSION = 2
MAX_VERSION = 4


def _one(state, topic: str, p) -> dict:
    out = {"error_code": NONE, "partition": p.partition, "leader_epoch": -1, "end_offset": -1}
    plog, code = state.led_log(topic, p.partition)
    if plog is None:
        out["error_code"] = code
        return out
    fenced = state.leader_epoch_error(topic, p.partition, getattr(p, "current_leader_epoch", -1))
    if fenced != NONE:
        out["error_code"] = fenced
    elif plog.replica.latest_epoch < 0:   # no batch and no leadership recorded: nothing can diverge
        out["leader_epoch"], out["end_offset"] = p.leader_epoch, plog.log_end_offset
    else:
        out["leader_epoch"], out["end_offset"] = plog.replica.end_offset_for_epoch(p.leader_epoch)
    return out


def _allowed(ctx, request, topic: str) -> bool:
    """ACLs, as Kafka: CLUSTER_ACTION on the cluster, or DESCRIBE on the topic, whoever asks."""
    return not ctx.restricted or ctx.allowed(CLUSTER_ACTION, CLUSTER, CLUSTER_NAME, report=False) or \
        ctx.allowed(DESCRIBE, TOPIC, topic)


def handle(ctx, request) -> dict:
    return {"throttle_time": 0, "topics": [
        {"topic": t.topic, "partitions": [_one(ctx.state, t.topic, p) for p in t.partitions]}
        if _allowed(ctx, request, t.topic) else
        {"topic": t.topic, "partitions": [{"error_code": TOPIC_AUTHORIZATION_FAILED, "partition": p.partition,
                                           "leader_epoch": -1, "end_offset": -1} for p in t.partitions]}
        for t in request.topics]}
