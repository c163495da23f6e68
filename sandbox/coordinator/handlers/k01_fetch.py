"""Fetch (1), v4-v12, of `__cluster_metadata` partition 0 only: how brokers follow metadata
changes (KRaft style). Records are journal records as JSON; an offset the ring no longer holds
gets one snapshot record; a v12 cluster_id of another cluster gets INCONSISTENT_CLUSTER_ID.
Long-poll: waits up to max_wait for a change, never busy-loops."""

from __future__ import annotations

import time

from ..feed import METADATA_PARTITION, METADATA_TOPIC, OffsetOutOfRange
from sandbox.protocol.errors import (
    INCONSISTENT_CLUSTER_ID, NONE, OFFSET_OUT_OF_RANGE, UNKNOWN_TOPIC_OR_PARTITION,
)

API_KEY = 1
MIN_VERSION = 4
MAX_VERSION = 12


def _read_all(feed, request) -> tuple[list[dict], int]:
    budget = request.max_bytes if request.max_bytes > 0 else 52428800
    total = 0
    responses = []
    for t in request.topics:
        parts = []
        for p in t.partitions:
            entry = {"partition_index": p.partition, "error_code": NONE, "high_watermark": -1,
                     "last_stable_offset": -1, "log_start_offset": -1,
                     "aborted_transactions": None, "preferred_read_replica": -1, "records": b""}
            if t.topic != METADATA_TOPIC or p.partition != METADATA_PARTITION:
                entry["error_code"] = UNKNOWN_TOPIC_OR_PARTITION
                parts.append(entry)
                continue
            hw = feed.high_watermark
            entry["high_watermark"] = entry["last_stable_offset"] = hw
            entry["log_start_offset"] = 0
            try:
                data = feed.read(p.fetch_offset, max(1, min(p.partition_max_bytes,
                                                            budget - total)))
            except OffsetOutOfRange:
                entry["error_code"] = OFFSET_OUT_OF_RANGE
                data = b""
            entry["records"] = data
            total += len(data)
            parts.append(entry)
        responses.append({"topic": t.topic, "partitions": parts})
    return responses, total


def _waiting_offset(request) -> int | None:
    for t in request.topics:
        for p in t.partitions:
            if t.topic == METADATA_TOPIC and p.partition == METADATA_PARTITION:
                return p.fetch_offset
    return None


async def handle(ctx, request) -> dict:
    feed = ctx.server.feed
    cluster_id = getattr(request, "cluster_id", None)
    if cluster_id and cluster_id != ctx.coordinator.cluster_id:  # a follower of another history
        return {"throttle_time": 0, "error_code": INCONSISTENT_CLUSTER_ID, "session_id": 0,
                "responses": []}
    responses, total = _read_all(feed, request)
    offset = _waiting_offset(request)
    if offset is not None:   # a broker following the metadata: an observer of the quorum
        ctx.server.observers.fetched(getattr(request, "replica_id", -1), offset, feed.high_watermark,
                                     int(time.time() * 1000), same_history=cluster_id == ctx.coordinator.cluster_id)
    wait_s = request.max_wait.total_seconds()
    if total < max(request.min_bytes, 1) and wait_s > 0 and offset is not None \
            and offset == feed.high_watermark:
        deadline = time.monotonic() + wait_s
        while feed.high_watermark <= offset:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            await feed.wait_beyond(offset, remaining)
        responses, total = _read_all(feed, request)
    return {"throttle_time": 0, "error_code": NONE, "session_id": 0, "responses": responses}
