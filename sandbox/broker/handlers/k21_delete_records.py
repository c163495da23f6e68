"""DeleteRecords (21), v0-v2: advance a partition's log start offset (-1 = high watermark). On a
replicated partition it is answered, as Kafka answers it, once every replica on a live broker has
moved its own log start there (followers take their leader's from each fetch), within the
request's timeout (REQUEST_TIMED_OUT after it): a deletion acknowledged is never undone by a
failover to a replica that still had the records. A topic whose cleanup.policy lacks `delete`
(compacted topics, `__consumer_offsets` and `__transaction_state` among them) refuses it with
POLICY_VIOLATION, as Kafka's Partition.deleteRecordsOnLeader does."""

from __future__ import annotations

import asyncio

from sandbox.coordinator.acls import DELETE, TOPIC
from sandbox.protocol.errors import NONE, OFFSET_OUT_OF_RANGE, POLICY_VIOLATION, TOPIC_AUTHORIZATION_FAILED

API_KEY = 21
MIN_VERSION = 0
MAX_VERSION = 2


def _delete(state, topic: str, index: int, offset: int, timeout_s: float):
    """The partition's answer, or a coroutine giving it once its replicas have the new log start."""
    plog, code = state.led_log(topic, index)
    if plog is None:
        return {"partition_index": index, "low_watermark": -1, "error_code": code}
    if not plog.config.deletes:   # the records a compacted log keeps are its state (committed offsets...)
        return {"partition_index": index, "low_watermark": -1, "error_code": POLICY_VIOLATION}
    if offset == -1:
        offset = plog.high_watermark
    if offset < 0 or offset > plog.high_watermark:
        return {"partition_index": index, "low_watermark": -1, "error_code": OFFSET_OUT_OF_RANGE}
    low = plog.delete_records_before(offset)
    key = (topic, index)
    if state.replicas.replicated(key) and state.replicas.low_watermark(key) < low:
        return _replicated(state, key, index, low, timeout_s)
    return {"partition_index": index, "low_watermark": low, "error_code": NONE}


async def _replicated(state, key, index: int, low: int, timeout_s: float) -> dict:
    code = await state.replicas.wait_for_log_start(key, low, timeout_s)
    if code != NONE:
        return {"partition_index": index, "low_watermark": -1, "error_code": code}
    return {"partition_index": index, "low_watermark": state.replicas.low_watermark(key), "error_code": NONE}


def handle(ctx, request):
    timeout_s = max(request.timeout.total_seconds(), 0.0)
    topics = [
        {"name": t.name, "partitions": [_delete(ctx.state, t.name, p.partition_index, p.offset, timeout_s)
                                        for p in t.partitions]}
        if not ctx.restricted or ctx.allowed(DELETE, TOPIC, t.name) else   # ACLs: DELETE on the topic
        {"name": t.name, "partitions": [{"partition_index": p.partition_index, "low_watermark": -1,
                                         "error_code": TOPIC_AUTHORIZATION_FAILED} for p in t.partitions]}
        for t in request.topics]
    if any(asyncio.iscoroutine(p) for t in topics for p in t["partitions"]):
        return _all(topics)
    return {"throttle_time": 0, "topics": topics}


async def _all(topics: list[dict]) -> dict:
    """Every partition waits at once, each within the request's timeout."""
    parts = [t["partitions"] for t in topics]
    done = iter(await asyncio.gather(*(p if asyncio.iscoroutine(p) else _now(p) for ps in parts for p in ps)))
    for t, ps in zip(topics, parts):
        t["partitions"] = [next(done) for _ in ps]
    return {"throttle_time": 0, "topics": topics}


async def _now(answer: dict) -> dict:
    return answer
