"""ListOffsets (2), v1-v10: earliest (-2), latest (-1), max timestamp (-3), earliest local (-4,
v8+: the log start offset, no tiered storage here), latest tiered (-5, v9+: -1, nothing is tiered),
or by timestamp. v10's timeout_ms only matters for remote storage, so it is ignored.
isolation_level 1 (read_committed, v2+) ends at the last stable offset instead of the high watermark:
latest is the LSO, and a lookup by time finds only offsets below it (Kafka's lastFetchableOffset)."""

from __future__ import annotations

from sandbox.log.batch import iter_batches

from ..records import first_record_at_or_after, record_with_timestamp
from sandbox.protocol.errors import NONE

API_KEY = 2
MIN_VERSION = 1
MAX_VERSION = 10

LATEST, EARLIEST, MAX_TIMESTAMP, EARLIEST_LOCAL, LATEST_TIERED = -1, -2, -3, -4, -5
READ_COMMITTED = 1


def _lookup(state, topic: str, index: int, ts: int, isolation_level: int) -> dict:
    out = {"partition_index": index, "error_code": NONE, "timestamp": -1, "offset": -1, "leader_epoch": -1}
    plog, code = state.led_log(topic, index)
    if plog is None:
        out["error_code"] = code
        return out
    out["leader_epoch"] = state.leaders.get((topic, index), (state.node_id, 0))[1]
    fetchable = plog.last_stable_offset if isolation_level == READ_COMMITTED else plog.high_watermark
    if ts == LATEST:
        out["offset"] = fetchable
    elif ts in (EARLIEST, EARLIEST_LOCAL):
        out["offset"] = plog.log_start_offset
    elif ts == LATEST_TIERED:
        out["leader_epoch"] = -1
    elif ts == MAX_TIMESTAMP:
        off, t = plog.offset_for_timestamp(MAX_TIMESTAMP) or (-1, -1)
        if off >= 0:
            exact = record_with_timestamp(plog.read(off, 1).tobytes(), t)
            off = off if exact is None else exact
        out["offset"], out["timestamp"] = off, t
    else:
        # the log finds the batch by its max timestamp; the exact record needs a look inside
        found = plog.offset_for_timestamp(ts)
        pos = max(found[0], plog.log_start_offset) if found else plog.log_end_offset
        while pos < plog.log_end_offset:
            chunk = plog.read(pos, 1 << 20).tobytes()
            exact = first_record_at_or_after(chunk, ts, plog.log_start_offset)
            if exact is not None:
                out["offset"], out["timestamp"] = exact
                break
            batches = list(iter_batches(chunk))
            if not batches:
                break
            pos = batches[-1][1].next_offset
    if ts == MAX_TIMESTAMP or ts >= 0:
        if out["offset"] >= fetchable:   # not readable at this isolation level yet
            out["offset"], out["timestamp"] = -1, -1
    return out


def handle(ctx, request) -> dict:
    iso = getattr(request, "isolation_level", 0)
    topics = [
        {"name": t.name, "partitions": [_lookup(ctx.state, t.name, p.partition_index, p.timestamp, iso)
                                        for p in t.partitions]}
        for t in request.topics
    ]
    return {"throttle_time": 0, "topics": topics}
