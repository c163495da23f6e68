"""ListOffsets (2), v1-v7: earliest (-2), latest (-1), max timestamp (-3), or by timestamp."""

from __future__ import annotations

from .common import NONE

API_KEY = 2
MIN_VERSION = 1
MAX_VERSION = 7

LATEST, EARLIEST, MAX_TIMESTAMP = -1, -2, -3


def _lookup(state, topic: str, index: int, ts: int, isolation_level: int) -> dict:
    out = {"partition_index": index, "error_code": NONE, "timestamp": -1, "offset": -1, "leader_epoch": -1}
    plog, code = state.led_log(topic, index)
    if plog is None:
        out["error_code"] = code
        return out
    out["leader_epoch"] = state.leaders[(topic, index)][1]
    if ts == LATEST:
        out["offset"] = plog.high_watermark
    elif ts == EARLIEST:
        out["offset"] = plog.log_start_offset
    elif ts == MAX_TIMESTAMP:
        off, t = plog.max_timestamp()
        out["offset"], out["timestamp"] = off, t
    else:
        found = plog.offset_for_timestamp(ts)
        if found is not None:
            off, t = found
            out["offset"], out["timestamp"] = max(off, plog.log_start_offset), t
    return out


def handle(ctx, request) -> dict:
    iso = getattr(request, "isolation_level", 0)
    topics = [
        {"name": t.name, "partitions": [_lookup(ctx.state, t.name, p.partition_index, p.timestamp, iso)
                                        for p in t.partitions]}
        for t in request.topics
    ]
    return {"throttle_time": 0, "topics": topics}
