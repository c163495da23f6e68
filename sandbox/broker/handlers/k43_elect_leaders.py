"""ElectLeaders (43), v0-v2: every partition here is led by its first (preferred) replica whenever
that broker is alive, so an election is never needed; answered as Kafka answers then. A fenced
preferred leader gives ELIGIBLE_LEADERS_NOT_AVAILABLE. topic_partitions=None means all
partitions, and then (as in Kafka) only partitions whose election was not a no-op are listed."""

from __future__ import annotations

from sandbox.protocol.errors import (
    ELECTION_NOT_NEEDED, ELIGIBLE_LEADERS_NOT_AVAILABLE, NONE, UNKNOWN_TOPIC_OR_PARTITION,
)

API_KEY = 43
MIN_VERSION = 0
MAX_VERSION = 2
NOT_NEEDED = "Leader election not needed for topic partition."


def _result(coord, topic: str, index: int) -> tuple[int, str | None]:
    t = coord.topic(topic)
    part = next((p for p in t.partitions if p.index == index), None) if t is not None else None
    if part is None:
        return UNKNOWN_TOPIC_OR_PARTITION, "The partition does not exist."
    if part.leader >= 0 and part.leader == part.replicas[0]:
        return ELECTION_NOT_NEEDED, NOT_NEEDED
    return ELIGIBLE_LEADERS_NOT_AVAILABLE, (f"The preferred leader of {topic}-{index} (broker "
                                            f"{part.replicas[0]}) is not available.")


def handle(ctx, request) -> dict:
    coord = ctx.state.coordinator
    asked = request.topic_partitions
    if asked is None:
        pairs = [(t.name, p.index) for t in coord.topics() if not t.internal for p in t.partitions]
    else:
        pairs = [(t.topic, p) for t in asked for p in t.partitions]
    by_topic: dict[str, list[dict]] = {}
    for topic, index in pairs:
        code, message = _result(coord, topic, index)
        if asked is None and code == ELECTION_NOT_NEEDED:
            continue
        by_topic.setdefault(topic, []).append({"partition_id": index, "error_code": code, "error_message": message})
    return {"throttle_time": 0, "error_code": NONE, "replica_election_results": [
        {"topic": topic, "partition_result": parts} for topic, parts in by_topic.items()]}
