"""ListOffsets (2), v1-v10: earliest (-2), latest (-1), max timestamp (-3), earliest local (-4,
v8+: the log start offset, no tiered storage here), latest tiered (-5, v9+: -1, nothing is tiered),
or by timestamp. v10's timeout_ms only matters for remote storage, so it is ignored.
isolation_level 1 (read_committed, v2+) ends at the last stable offset instead of the high watermark:
latest is the LSO, and a lookup by time finds only offsets below it (Kafka's lastFetchableOffset).
A request from a broker or a debugging tool (replica_id >= 0 or -2) ignores the isolation level and
ends at the log end, as Kafka's does; with -2 (Kafka's DEBUGGING_REPLICA_ID) any replica answers, not
only the leader, latest giving its log end and the newest leader epoch its log holds (the
supervisor asks every replica this way after a destroyed coordinator journal, to choose leaders).
A v4+ current_leader_epoch older than the partition's gets FENCED_LEADER_EPOCH, a newer one
UNKNOWN_LEADER_EPOCH (KIP-320), as Kafka's does: a client resetting its position on a stale leader's
answer would land on an offset the new leader may have cut off. While a new leader's high
watermark is still below the start of its epoch (its followers have not fetched yet, so it is
the one it had as a follower), a consumer's latest, and a lookup by time that finds nothing
below it, get OFFSET_NOT_AVAILABLE (retriable), as Kafka's Partition.fetchOffsetForTimestamp
answers: the old high watermark would send a consumer to an offset before committed records,
and "no record" would make it reset.
The leader_epoch answered (v4+) is the epoch of what was found, as Kafka's
UnifiedLog.fetchOffsetByTimestamp gives it: for a lookup by time and for max timestamp the
partition leader epoch of the batch holding the offset, for earliest (and earliest local) the epoch
that wrote the log start offset (-1 if the epoch history starts later), for latest the partition's
current leader epoch (Partition.fetchOffsetForTimestamp); -1 with no offset found."""

from __future__ import annotations

from sandbox.log.batch import iter_batches

from ..records import first_record_at_or_after, record_with_timestamp
from sandbox.coordinator.acls import DESCRIBE, TOPIC
from sandbox.protocol.errors import (
    KAFKA_STORAGE_ERROR, LEADER_NOT_AVAILABLE, NONE, OFFSET_NOT_AVAILABLE, TOPIC_AUTHORIZATION_FAILED,
)

API_KEY = 2
MIN_VERSION = 1
MAX_VERSION = 10

LATEST, EARLIEST, MAX_TIMESTAMP, EARLIEST_LOCAL, LATEST_TIERED = -1, -2, -3, -4, -5
READ_COMMITTED = 1
CONSUMER_REPLICA_ID, DEBUGGING_REPLICA_ID = -1, -2


def _denied(index: int) -> dict:
    return {"partition_index": index, "error_code": TOPIC_AUTHORIZATION_FAILED, "timestamp": -1, "offset": -1,
            "leader_epoch": -1}


def _lookup(state, topic: str, index: int, ts: int, isolation_level: int,
            replica_id: int = CONSUMER_REPLICA_ID, current_leader_epoch: int = -1, version: int = MAX_VERSION) -> dict:
    out = {"partition_index": index, "error_code": NONE, "timestamp": -1, "offset": -1, "leader_epoch": -1}
    if replica_id == DEBUGGING_REPLICA_ID:   # any replica, leader or not
        plog, code = state.opened_log(topic, index)
        if plog is None and code == KAFKA_STORAGE_ERROR:
            # held here, its end unreadable now (a file held by another program): a copy that
            # ends nowhere, as a broker putting back a lost topic counts its own (disk_folders.py)
            return out
    else:
        plog, code = state.led_log(topic, index)
    if plog is not None:
        code = state.leader_epoch_error(topic, index, current_leader_epoch)
        if code != NONE:
            plog = None
    if plog is None:
        out["error_code"] = code
        return out
    current_epoch = state.leaders.get((topic, index), (state.node_id, 0))[1]
    if replica_id != CONSUMER_REPLICA_ID:
        fetchable, lagging = plog.log_end_offset, False
    else:
        fetchable = plog.last_stable_offset if isolation_level == READ_COMMITTED else plog.high_watermark
        lagging = state.replicas.epoch_start((topic, index)) > plog.high_watermark
    # Kafka answers OFFSET_NOT_AVAILABLE from v5 only; older clients do not know it (retriable
    # LEADER_NOT_AVAILABLE for them, as Kafka's KafkaApis maps it)
    not_yet = OFFSET_NOT_AVAILABLE if version >= 5 else LEADER_NOT_AVAILABLE
    if ts == LATEST and lagging:
        return {**out, "error_code": not_yet}
    if ts == LATEST:
        out["offset"] = fetchable
        out["leader_epoch"] = plog.replica.latest_epoch if replica_id == DEBUGGING_REPLICA_ID else current_epoch
    elif ts in (EARLIEST, EARLIEST_LOCAL):
        out["offset"] = plog.log_start_offset
        out["leader_epoch"] = plog.replica.epoch_for_offset(plog.log_start_offset)
    elif ts == LATEST_TIERED:
        pass   # nothing is tiered: offset and epoch -1
    elif ts == MAX_TIMESTAMP:
        off, t = plog.offset_for_timestamp(MAX_TIMESTAMP) or (-1, -1)
        if off >= 0:
            chunk = plog.read(off, 1).tobytes()
            exact = record_with_timestamp(chunk, t)
            off = off if exact is None else exact
            out["leader_epoch"] = _batch_epoch(chunk, off)
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
                out["leader_epoch"] = _batch_epoch(chunk, exact[0])
                break
            batches = list(iter_batches(chunk))
            if not batches:
                break
            pos = batches[-1][1].next_offset
    if ts == MAX_TIMESTAMP or ts >= 0:
        if out["offset"] >= fetchable:   # not readable at this isolation level yet
            if lagging:   # perhaps below the high watermark the followers will soon let it reach
                return {**out, "error_code": not_yet, "offset": -1, "timestamp": -1, "leader_epoch": -1}
            out["offset"], out["timestamp"], out["leader_epoch"] = -1, -1, -1
    return out


def _batch_epoch(chunk: bytes, offset: int) -> int:
    """The partition leader epoch of the batch in `chunk` holding `offset` (-1 if none), as
    Kafka answers a lookup by time with the found batch's."""
    for _pos, h in iter_batches(chunk):
        if h.base_offset <= offset <= h.last_offset:
            return h.leader_epoch if h.leader_epoch >= 0 else -1
    return -1


def handle(ctx, request) -> dict:
    iso = getattr(request, "isolation_level", 0)
    rid = int(request.replica_id)
    topics = [
        {"name": t.name, "partitions": [_lookup(ctx.state, t.name, p.partition_index, p.timestamp, iso, rid,
                                                getattr(p, "current_leader_epoch", -1), ctx.api_version)
                                        for p in t.partitions]}
        if not ctx.restricted or ctx.allowed(DESCRIBE, TOPIC, t.name) else   # ACLs: DESCRIBE on the topic
        {"name": t.name, "partitions": [_denied(p.partition_index) for p in t.partitions]}
        for t in request.topics
    ]
    return {"throttle_time": 0, "topics": topics}
