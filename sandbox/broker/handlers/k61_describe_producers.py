"""DescribeProducers (61), v0: per partition, the idempotent producers the log's producer state
holds (producer id, epoch, last sequence, timestamp of its last batch), and the first offset of
the transaction each has open on the partition (current_txn_start_offset, -1 without one) and the
coordinator epoch of its last transaction marker (-1 before one). A partition this
broker does not host is NOT_LEADER_OR_FOLLOWER when the topic has it, else
UNKNOWN_TOPIC_OR_PARTITION, as Kafka's replica manager answers."""

from __future__ import annotations

from sandbox.coordinator.acls import READ, TOPIC
from sandbox.protocol.errors import TOPIC_AUTHORIZATION_FAILED
from sandbox.protocol.errors import KAFKA_STORAGE_ERROR, NONE, NOT_LEADER_OR_FOLLOWER, UNKNOWN_TOPIC_OR_PARTITION

API_KEY = 61
MIN_VERSION = 0
MAX_VERSION = 0


def _partition(state, topic: str, index: int) -> dict:
    log, code = state.opened_log(topic, index)
    out = {"partition_index": index, "error_code": NONE, "error_message": None, "active_producers": ()}
    if log is None and code == KAFKA_STORAGE_ERROR:   # a file of it held by another program (Windows)
        out["error_code"] = code
        return out
    if log is None:
        t = state.coordinator.topic(topic)
        known = t is not None and any(p.index == index for p in t.partitions)
        out["error_code"] = NOT_LEADER_OR_FOLLOWER if known else UNKNOWN_TOPIC_OR_PARTITION
        return out
    open_txns = {pid: first for pid, _epoch, first in log.housekeeping.open_transactions()}
    out["active_producers"] = [
        {"producer_id": pid, "producer_epoch": epoch, "last_sequence": seq, "last_timestamp": ts,
         "coordinator_epoch": coord_epoch, "current_txn_start_offset": open_txns.get(pid, -1)}
        for pid, epoch, seq, ts, coord_epoch in log.housekeeping.active_producers()]
    return out


def handle(ctx, request) -> dict:
    return {"throttle_time": 0, "topics": [
        {"name": t.name, "partitions": [_partition(ctx.state, t.name, i) for i in t.partition_indexes]}
        if not ctx.restricted or ctx.allowed(READ, TOPIC, t.name) else   # ACLs: READ on the topic
        {"name": t.name, "partitions": [{"partition_index": i, "error_code": TOPIC_AUTHORIZATION_FAILED,
                                         "error_message": None, "active_producers": ()} for i in t.partition_indexes]}
        for t in request.topics]}
