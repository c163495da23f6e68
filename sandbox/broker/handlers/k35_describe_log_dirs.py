"""DescribeLogDirs (35), v1-v4: the broker's one log dir (its data dir) with each partition's size
on disk, and (v4) the disk's total and usable bytes. topics=None asks for every partition. A v4
request with this sandbox's asking tag (sandbox.protocol.log_dirs: another broker putting back a
topic the metadata lost) also gets each folder's topic id and when its partition.metadata was
written, and the broker's clock when it answered."""

from __future__ import annotations

from sandbox.coordinator.acls import CLUSTER, CLUSTER_NAME, DESCRIBE
from sandbox.protocol.errors import CLUSTER_AUTHORIZATION_FAILED as _CLUSTER_DENIED
import os
import shutil
import time

from sandbox.partition_metadata import folder_topic_id
from sandbox.protocol.errors import NONE

API_KEY = 35
MIN_VERSION = 1
MAX_VERSION = 4


def handle(ctx, request) -> dict:
    state = ctx.state
    if ctx.restricted and not ctx.allowed(DESCRIBE, CLUSTER, CLUSTER_NAME):   # ACLs: DESCRIBE on the cluster
        return {"throttle_time": 0, "error_code": _CLUSTER_DENIED, "results": []}
    wanted = None if request.topics is None else {(t.topic, p) for t in request.topics for p in t.partitions}
    folder_ids = getattr(request, "folder_ids", False)
    topics: dict[str, list[dict]] = {}
    for (topic, index), plog in sorted(state.partitions.items()):
        if wanted is None or (topic, index) in wanted:
            part = {"partition_index": index, "partition_size": _size(plog), "offset_lag": 0,
                    "is_future_key": False}
            if folder_ids and (written := folder_topic_id(plog.directory)) is not None:
                part["topic_id"], part["metadata_written_ms"] = written[0], int(written[1] * 1000)
            topics.setdefault(topic, []).append(part)
    try:
        usage = shutil.disk_usage(state.config.data_dir)
        total, usable = usage.total, usage.free
    except OSError:
        total = usable = -1
    clock = {"now_ms": int(time.time() * 1000)} if folder_ids else {}   # the clock files are written by
    return {"throttle_time": 0, "error_code": NONE, **clock, "results": [{
        "error_code": NONE, "log_dir": str(state.config.data_dir), "total_bytes": total, "usable_bytes": usable,
        "topics": [{"name": name, "partitions": parts} for name, parts in topics.items()]}]}


def _size(plog) -> int:
    """The partition's bytes; for a log not opened yet whose open a held file refuses (Windows),
    the sum of its segment files, read from the folder."""
    try:
        return plog.size_bytes
    except PermissionError:
        try:
            with os.scandir(plog.directory) as entries:
                return sum(e.stat().st_size for e in entries if e.name.endswith(".log"))
        except OSError:
            return 0
