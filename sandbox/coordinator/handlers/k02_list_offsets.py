"""ListOffsets (2), v1-v7, of `__cluster_metadata` partition 0: latest (-1) is the metadata
offset (high watermark), earliest (-2) is 0 (older records come as a snapshot). Followers use it
to learn how far they must catch up after a write."""

from __future__ import annotations

from ..feed import METADATA_PARTITION, METADATA_TOPIC
from sandbox.protocol.errors import NONE, UNKNOWN_TOPIC_OR_PARTITION

API_KEY = 2
MIN_VERSION = 1
MAX_VERSION = 7
LATEST, EARLIEST = -1, -2


def handle(ctx, request) -> dict:
    hw = ctx.server.feed.high_watermark
    topics = []
    for t in request.topics:
        parts = []
        for p in t.partitions:
            entry = {"partition_index": p.partition_index, "error_code": NONE, "timestamp": -1,
                     "offset": -1, "leader_epoch": -1, "old_style_offsets": ()}
            if t.name != METADATA_TOPIC or p.partition_index != METADATA_PARTITION:
                entry["error_code"] = UNKNOWN_TOPIC_OR_PARTITION
            elif p.timestamp == EARLIEST:
                entry["offset"] = 0
            else:  # latest, or any timestamp: the records carry no useful time index
                entry["offset"] = hw
            parts.append(entry)
        topics.append({"name": t.name, "partitions": parts})
    return {"throttle_time": 0, "topics": topics}
