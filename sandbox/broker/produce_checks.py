"""What Produce checks of a partition's records before appending them, as Kafka does: the shape of
the request's records (ProduceRequest.validateRecords), a client's batches (LogValidator), record
timestamps against message.timestamp.before/after.max.ms, and keys on compacted topics. Each
refusal is that partition's answer (partition_error), never the whole request's."""

from __future__ import annotations

import weakref

from sandbox.compression import decompress
from sandbox.coordinator.broker_configs import effective as effective_broker_configs
from sandbox.log.batch import HEADER_SIZE, read_stored_records
from sandbox.protocol.errors import CORRUPT_MESSAGE, INVALID_RECORD, INVALID_TIMESTAMP, UNSUPPORTED_COMPRESSION_TYPE

ZSTD = 4   # the largest compression codec id (1 gzip, 2 snappy, 3 lz4, 4 zstd)


def partition_error(index: int, code: int, message: str | None = None, record_errors=()) -> dict:
    return {"index": index, "error_code": code, "base_offset": -1, "log_append_time": -1,
            "log_start_offset": -1, "record_errors": record_errors, "error_message": message}


def batches_error(index: int, version: int, headers) -> dict | None:
    """The partition's refusal of a client's validated batches, else None: nothing is written."""
    if version >= 3:   # ProduceRequest.validateRecords
        if len(headers) != 1:
            # a second batch was never written: one a retry repeated answered the first's offsets
            # as a duplicate and dropped the rest, acknowledged
            return partition_error(index, INVALID_RECORD, f"Produce requests with version {version} are only "
                                                          f"allowed to contain exactly one record batch per partition")
        if version < 7 and headers[0].compression == ZSTD:
            return partition_error(index, UNSUPPORTED_COMPRESSION_TYPE, f"Produce requests with version {version} "
                                                                        f"are not allowed to use ZStandard compression")
    for h in headers:
        if h.compression > ZSTD:   # CompressionType.forId refuses it: never stored for readers to fail on
            return partition_error(index, CORRUPT_MESSAGE, f"Unknown compression type id: {h.compression}")
        if h.is_control:   # markers are written by transaction coordinators only (WriteTxnMarkers)
            return partition_error(index, INVALID_RECORD, "Clients are not allowed to write control records")
        if h.is_transactional and h.producer_id < 0:
            return partition_error(index, INVALID_RECORD, "a transactional batch needs a producer id")
        # Kafka's LogValidator.validateBatch for a client's batch (a follower's copy may be
        # compacted, so these are not checked in validate_batches)
        if h.producer_id >= 0 and h.base_sequence < 0:
            return partition_error(index, INVALID_RECORD, f"Invalid sequence number {h.base_sequence} in record "
                                                          f"batch with producerId {h.producer_id}")
        if h.records_count != h.last_offset_delta + 1:
            return partition_error(index, INVALID_RECORD, f"Inconsistent batch offset range [0, "
                                                          f"{h.last_offset_delta}] and count of records {h.records_count}")
    return None


def keyless_error(topic: str, index: int, record: int) -> dict:
    why = f"Compacted topic cannot accept message without key in topic partition {topic}-{index}."
    return partition_error(index, INVALID_RECORD, "One or more records have been rejected due to 1 record errors "
                  f"in total, and only showing the first three errors at most: [{why}]",
                  [{"batch_index": record, "batch_index_error_message": why}])


LONG_MAX = 2**63 - 1
# per coordinator view: topic -> (metadata offset, (message.timestamp.before.max.ms,
# .after.max.ms)), recomputed once the metadata (a topic config, a dynamic setting) changed
_TIMESTAMP_BOUNDS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def timestamp_bounds(state, topic: str) -> tuple[int, int]:
    """A topic's message.timestamp.before.max.ms and .after.max.ms: its own, else this broker's
    dynamic log.message.timestamp.* setting, else Kafka 4's defaults (no bound, one hour)."""
    coord = state.coordinator
    offset = coord.metadata_offset
    cache = _TIMESTAMP_BOUNDS.setdefault(coord, {})
    hit = cache.get(topic)
    if hit is not None and hit[0] == offset:
        return hit[1]
    t = coord.topic(topic)
    own = t.configs if t is not None else {}
    dynamic = effective_broker_configs(coord.broker_configs(), state.node_id)

    def one(key: str, default: int) -> int:
        value = own.get(key) or dynamic.get("log." + key, (None, 0))[0]
        return int(value) if value is not None else default

    bounds = (one("message.timestamp.before.max.ms", LONG_MAX), one("message.timestamp.after.max.ms", 3_600_000))
    cache[topic] = (offset, bounds)
    return bounds


def timestamp_error(state, topic: str, index: int, records, headers) -> dict | None:
    """Kafka's LogValidator for a CreateTime topic: INVALID_TIMESTAMP, with a record error per
    record whose timestamp is more than message.timestamp.before.max.ms behind the broker's clock
    or .after.max.ms ahead of it (records without a timestamp pass). The records are looked at
    only when a batch header's range may hold one out of bounds."""
    before, after = timestamp_bounds(state, topic)
    now = int(state.clock() * 1000)
    low, high = (now - before if before < LONG_MAX else None), now + after
    if all(h.max_timestamp <= high and (low is None or h.base_timestamp == -1) for h in headers):
        return None
    errors, mv, pos = [], memoryview(records), 0
    for h in headers:
        body = mv[pos + HEADER_SIZE:pos + h.size]
        pos += h.size
        if h.base_timestamp == -1:
            continue
        if h.compression:
            body = decompress(h.compression, bytes(body))
        for i, rec in enumerate(read_stored_records(body, h.records_count)):
            ts = h.base_timestamp + rec.timestamp_delta
            if ts > high or low is not None and ts < low:
                errors.append({"batch_index": i, "batch_index_error_message": (
                    f"Timestamp {ts} of message with offset {i} is out of range. The timestamp should be "
                    f"within [{low if low is not None else -LONG_MAX - 1}, {high}]")})
    if not errors:
        return None
    shown = ", ".join(e["batch_index_error_message"] for e in errors[:3])
    return partition_error(index, INVALID_TIMESTAMP, f"One or more records have been rejected due to {len(errors)} record "
                  f"errors in total, and only showing the first three errors at most: [{shown}]", errors)
