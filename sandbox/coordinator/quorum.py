"""The coordinator as KRaft's DescribeQuorum (55) shows it: a quorum of one voter (the coordinator,
always its leader, at epoch 1: it never holds an election) whose high watermark is the metadata
offset; observers are the brokers that follow `__cluster_metadata` (their fetch offsets)."""

from __future__ import annotations

import uuid

from .feed import METADATA_PARTITION, METADATA_TOPIC
from sandbox.protocol.errors import NONE, UNKNOWN_TOPIC_OR_PARTITION

LEADER_EPOCH = 1
COORDINATOR_NODE_ID = 0          # a separate coordinator's voter id (brokers count from 1)
CONTROLLER_LISTENER = "CONTROLLER"
OBSERVER_SESSION_TIMEOUT_MS = 300_000   # Kafka forgets an observer silent for this long
NO_DIRECTORY_ID = uuid.UUID(int=0)


class Observers:
    """Brokers seen fetching the metadata: broker id -> (fetch offset, last fetch, last caught up)."""

    def __init__(self) -> None:
        self._seen: dict[int, tuple[int, int, int]] = {}

    def fetched(self, replica_id: int, offset: int, high_watermark: int, now_ms: int, *,
                same_history: bool = True) -> None:
        """A broker's fetch of the metadata from `offset`. It has caught up when it asks exactly
        from the end with this journal's history id: one asking past the end holds records this
        journal no longer has (cut as a torn tail), and one asking without the id is reloading."""
        if replica_id < 0:
            return
        caught_up = now_ms if offset == high_watermark and same_history else self._seen.get(replica_id, (0, 0, -1))[2]
        self._seen[replica_id] = (offset, now_ms, caught_up)

    def states(self, now_ms: int) -> list[dict]:
        for rid in [r for r, (_, last, _) in self._seen.items() if now_ms - last > OBSERVER_SESSION_TIMEOUT_MS]:
            del self._seen[rid]
        return [_replica(rid, offset, last, caught) for rid, (offset, last, caught) in sorted(self._seen.items())]


def _replica(replica_id: int, log_end_offset: int, last_fetch: int, caught_up: int) -> dict:
    return {"replica_id": replica_id, "replica_directory_id": NO_DIRECTORY_ID, "log_end_offset": log_end_offset,
            "last_fetch_timestamp": last_fetch, "last_caught_up_timestamp": caught_up}


def describe_quorum(request, *, voter_id: int, high_watermark: int, endpoint: tuple[str, str, int],
                    observers: list[dict], now_ms: int) -> dict:
    """The DescribeQuorum response: `__cluster_metadata` partition 0 is described, any other
    partition asked for gets UNKNOWN_TOPIC_OR_PARTITION."""
    topics = []
    for t in request.topics:
        parts = []
        for p in t.partitions:
            if t.topic_name != METADATA_TOPIC or p.partition_index != METADATA_PARTITION:
                parts.append({"partition_index": p.partition_index, "error_code": UNKNOWN_TOPIC_OR_PARTITION,
                              "error_message": "This server only knows the __cluster_metadata-0 partition",
                              "leader_id": -1, "leader_epoch": -1, "high_watermark": -1,
                              "current_voters": (), "observers": ()})
                continue
            parts.append({"partition_index": p.partition_index, "error_code": NONE, "error_message": None,
                          "leader_id": voter_id, "leader_epoch": LEADER_EPOCH, "high_watermark": high_watermark,
                          "current_voters": [_replica(voter_id, high_watermark, now_ms, now_ms)],
                          "observers": observers})
        topics.append({"topic_name": t.topic_name, "partitions": parts})
    name, host, port = endpoint
    return {"error_code": NONE, "error_message": None, "topics": topics,
            "nodes": [{"node_id": voter_id, "listeners": [{"name": name, "host": host, "port": port}]}]}
