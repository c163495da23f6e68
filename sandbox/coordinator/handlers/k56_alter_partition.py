"""AlterPartition (56), v2-v3: a partition leader shrinks or expands its ISR. Taken only from the
current leader at the current leader and partition epochs, to live replicas (see isr.py); the
answer carries the partition as it is afterwards so the leader can retry from there."""

from __future__ import annotations

from sandbox.protocol.errors import NONE, UNKNOWN_TOPIC_ID

from .common import check_session

API_KEY = 56
MIN_VERSION = 2
MAX_VERSION = 3


def _new_isr(p) -> list[int]:
    if hasattr(p, "new_isr_with_epochs"):
        return [int(b.broker_id) for b in p.new_isr_with_epochs]
    return [int(b) for b in p.new_isr]


def handle(ctx, request) -> dict:
    coord = ctx.coordinator
    out = {"throttle_time": 0, "error_code": NONE, "topics": []}
    code = check_session(ctx.server, request.broker_id, request.broker_epoch)
    if code != NONE:
        out["error_code"] = code
        return out
    # every change of the request judged in turn and written with one journal append
    results = iter(coord.alter_partitions(request.broker_id, [
        (t.topic_id, p.partition_index, p.leader_epoch, p.partition_epoch, _new_isr(p))
        for t in request.topics if t.topic_id is not None for p in t.partitions]))
    for t in request.topics:
        parts = []
        for p in t.partitions:
            err, after = (UNKNOWN_TOPIC_ID, None) if t.topic_id is None else next(results)
            entry = {"partition_index": p.partition_index, "error_code": err, "leader_id": -1,
                     "leader_epoch": -1, "isr": (), "leader_recovery_state": 0, "partition_epoch": -1}
            if after is not None:
                entry.update(leader_id=after.leader, leader_epoch=after.leader_epoch,
                             isr=tuple(after.isr), partition_epoch=after.partition_epoch)
            parts.append(entry)
        out["topics"].append({"topic_id": t.topic_id, "partitions": parts})
    return out
