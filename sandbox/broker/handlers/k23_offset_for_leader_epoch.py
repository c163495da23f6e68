"""OffsetForLeaderEpoch (23), v2-v4: end offset of a leader epoch, for truncation detection.

Acknowledged data is never truncated here, so the log end offset is the end of any epoch up
to the current one; a request for a future epoch gets UNKNOWN_LEADER_EPOCH.
"""

from __future__ import annotations

from sandbox.protocol.errors import FENCED_LEADER_EPOCH, NONE, UNKNOWN_LEADER_EPOCH

API_KEY = 23
MIN_VERSION = 2
MAX_VERSION = 4


def _one(state, topic: str, p) -> dict:
    out = {"error_code": NONE, "partition": p.partition, "leader_epoch": -1, "end_offset": -1}
    plog, code = state.led_log(topic, p.partition)
    if plog is None:
        out["error_code"] = code
        return out
    current = state.leaders[(topic, p.partition)][1]
    cle = getattr(p, "current_leader_epoch", -1)
    if cle > current:
        out["error_code"] = UNKNOWN_LEADER_EPOCH
    elif 0 <= cle < current:
        out["error_code"] = FENCED_LEADER_EPOCH
    elif p.leader_epoch > current:
        out["error_code"] = UNKNOWN_LEADER_EPOCH
    else:
        out["leader_epoch"] = p.leader_epoch
        out["end_offset"] = plog.log_end_offset
    return out


def handle(ctx, request) -> dict:
    return {"throttle_time": 0, "topics": [
        {"topic": t.topic, "partitions": [_one(ctx.state, t.topic, p) for p in t.partitions]}
        for t in request.topics]}
