"""AlterPartitionReassignments (45), v0: replicas cannot move between brokers yet (that comes with
replication), so a reassignment to the partition's current replicas completes at once, a
cancellation finds none in progress (NO_REASSIGNMENT_IN_PROGRESS), and any other replica set is
refused with INVALID_REPLICA_ASSIGNMENT and a sentence saying why."""

from __future__ import annotations

from sandbox.protocol.errors import (
    INVALID_REPLICA_ASSIGNMENT, NONE, NO_REASSIGNMENT_IN_PROGRESS, UNKNOWN_TOPIC_OR_PARTITION,
)

API_KEY = 45
MIN_VERSION = 0
MAX_VERSION = 0


def _one(coord, registered: set[int], topic: str, index: int, replicas) -> tuple[int, str | None]:
    t = coord.topic(topic)
    part = next((p for p in t.partitions if p.index == index), None) if t is not None else None
    if part is None:
        return UNKNOWN_TOPIC_OR_PARTITION, "The partition does not exist."
    if replicas is None:
        return NO_REASSIGNMENT_IN_PROGRESS, f"No ongoing reassignment for {topic}-{index}."
    replicas = list(replicas)
    if not replicas or len(set(replicas)) != len(replicas):
        return INVALID_REPLICA_ASSIGNMENT, "The replica list must be non-empty and hold each broker once."
    missing = [r for r in replicas if r not in registered]
    if missing:
        return INVALID_REPLICA_ASSIGNMENT, f"Broker(s) {missing} are not registered."
    if set(replicas) == set(part.replicas) and replicas[0] == part.replicas[0]:
        return NONE, None
    return INVALID_REPLICA_ASSIGNMENT, (f"{topic}-{index} stays on brokers {list(part.replicas)}: this "
                                        "sandbox cannot move replicas between brokers yet.")


def handle(ctx, request) -> dict:
    coord = ctx.state.coordinator
    registered = {b.broker_id for b in coord.brokers()}
    responses = []
    for t in request.topics:
        parts = []
        for p in t.partitions:
            code, message = _one(coord, registered, t.name, p.partition_index, p.replicas)
            parts.append({"partition_index": p.partition_index, "error_code": code, "error_message": message})
        responses.append({"name": t.name, "partitions": parts})
    return {"throttle_time": 0, "error_code": NONE, "error_message": None, "responses": responses}
