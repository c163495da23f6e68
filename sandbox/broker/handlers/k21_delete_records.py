"""DeleteRecords (21), v0-v2: advance a partition's log start offset (-1 = high watermark)."""

from __future__ import annotations

from sandbox.coordinator.acls import DELETE, TOPIC
from sandbox.protocol.errors import NONE, OFFSET_OUT_OF_RANGE, TOPIC_AUTHORIZATION_FAILED

API_KEY = 21
MIN_VERSION = 0
MAX_VERSION = 2


def _delete(state, topic: str, index: int, offset: int) -> dict:
    plog, code = state.led_log(topic, index)
    if plog is None:
        return {"partition_index": index, "low_watermark": -1, "error_code": code}
    if offset == -1:
        offset = plog.high_watermark
    if offset < 0 or offset > plog.high_watermark:
        return {"partition_index": index, "low_watermark": -1, "error_code": OFFSET_OUT_OF_RANGE}
    low = plog.delete_records_before(offset)
    return {"partition_index": index, "low_watermark": low, "error_code": NONE}


def handle(ctx, request) -> dict:
    return {"throttle_time": 0, "topics": [
        {"name": t.name, "partitions": [_delete(ctx.state, t.name, p.partition_index, p.offset)
                                        for p in t.partitions]}
        if not ctx.restricted or ctx.allowed(DELETE, TOPIC, t.name) else   # ACLs: DELETE on the topic
        {"name": t.name, "partitions": [{"partition_index": p.partition_index, "low_watermark": -1,
                                         "error_code": TOPIC_AUTHORIZATION_FAILED} for p in t.partitions]}
        for t in request.topics]}
