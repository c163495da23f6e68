"""Kafka record batch v2 (magic 2): header parsing, produce-path validation, and an uncompressed
batch builder/decoder used by tests, tools and the broker's internal records.
"""
from __future__ import annotations

import struct
import time
from typing import Iterator, NamedTuple

import crc32c

from .errors import CorruptRecordError, InvalidRecordError, RecordTooLargeError

HEADER_SIZE = 61
_HEADER = struct.Struct(">qiibIhiqqqhii")
assert _HEADER.size == HEADER_SIZE
LOG_OVERHEAD = 12  # baseOffset + batchLength: bytes not counted in batchLength
MIN_BATCH_LENGTH = HEADER_SIZE - LOG_OVERHEAD  # 49
CRC_START = 21

ATTR_CODEC_MASK = 0x07
ATTR_LOG_APPEND_TIME = 0x08
ATTR_TRANSACTIONAL = 0x10
ATTR_CONTROL = 0x20

_Q = struct.Struct(">q")
_I = struct.Struct(">i")
_U = struct.Struct(">I")
_H = struct.Struct(">h")


class BatchHeader(NamedTuple):
    base_offset: int
    batch_length: int
    leader_epoch: int
    magic: int
    crc: int
    attributes: int
    last_offset_delta: int
    base_timestamp: int
    max_timestamp: int
    producer_id: int
    producer_epoch: int
    base_sequence: int
    records_count: int

    @property
    def size(self) -> int:
        """Bytes the whole batch occupies (header included)."""
        return LOG_OVERHEAD + self.batch_length

    @property
    def last_offset(self) -> int:
        return self.base_offset + self.last_offset_delta

    @property
    def next_offset(self) -> int:
        return self.base_offset + self.last_offset_delta + 1

    @property
    def is_control(self) -> bool:
        return bool(self.attributes & ATTR_CONTROL)

    @property
    def is_transactional(self) -> bool:
        return bool(self.attributes & ATTR_TRANSACTIONAL)

    @property
    def compression(self) -> int:
        return self.attributes & ATTR_CODEC_MASK

    @property
    def is_log_append_time(self) -> bool:
        return bool(self.attributes & ATTR_LOG_APPEND_TIME)


def parse_header(buf, pos: int = 0) -> BatchHeader:
    """Parse the 61-byte header at buf[pos:]; struct.error if fewer bytes are available."""
    return BatchHeader._make(_HEADER.unpack_from(buf, pos))


def compute_crc(buf, pos: int, size: int) -> int:
    """CRC-32C of a batch's CRC-covered bytes (attributes to end)."""
    return crc32c.crc32c(memoryview(buf)[pos + CRC_START:pos + size])


def validate_batches(buf, max_message_bytes: int, *, replicated: bool = False) -> list[BatchHeader]:
    """Produce-path check of one or more complete batches back to back; per batch work only.
    replicated: a leader's batches a follower copies, which may hold no record (a producer's last
    batch that compaction emptied, kept as Kafka's cleaner keeps it).

    Raises CorruptRecordError (framing, CRC, unknown magic), InvalidRecordError (magic 0/1, no
    records), RecordTooLargeError (a batch larger than max_message_bytes).
    """
    mv = memoryview(buf)
    end = len(mv)
    if end == 0:
        raise CorruptRecordError("empty record set")
    pos = 0
    out: list[BatchHeader] = []
    while pos < end:
        if end - pos < LOG_OVERHEAD + 5:
            raise CorruptRecordError(f"trailing {end - pos} bytes at position {pos} are not a batch")
        batch_length = _I.unpack_from(mv, pos + 8)[0]
        size = LOG_OVERHEAD + batch_length
        if batch_length < 14:  # smaller than any message of any magic: garbage
            raise CorruptRecordError(f"batch length {batch_length} at position {pos} is too small")
        if size > max_message_bytes:
            raise RecordTooLargeError(f"batch of {size} bytes exceeds max.message.bytes={max_message_bytes}")
        if pos + size > end:
            raise CorruptRecordError(f"batch at position {pos} is truncated ({end - pos} of {size} bytes)")
        magic = mv[pos + 16]
        if magic in (0, 1):
            raise InvalidRecordError(f"record batch magic {magic} is not supported; only magic 2")
        if magic != 2:
            raise CorruptRecordError(f"bad magic byte {magic} at position {pos}")
        if batch_length < MIN_BATCH_LENGTH:
            raise CorruptRecordError(f"batch length {batch_length} at position {pos} is too small")
        h = BatchHeader._make(_HEADER.unpack_from(mv, pos))
        if crc32c.crc32c(mv[pos + CRC_START:pos + size]) != h.crc:
            raise CorruptRecordError(f"CRC mismatch in batch at position {pos}")
        if h.records_count < (0 if replicated else 1):
            raise InvalidRecordError(f"batch at position {pos} has {h.records_count} records")
        if h.last_offset_delta < 0:
            raise InvalidRecordError(f"batch at position {pos} has negative lastOffsetDelta")
        out.append(h)
        pos += size
    return out


def own_batch(buf, max_message_bytes: int) -> list[BatchHeader]:
    """validate_batches for one batch this process just made with build_batch(writable=True):
    its framing and CRC are known good, so only its size is checked (it was recomputing the CRC of
    every state record and marker the broker writes)."""
    h = parse_header(buf, 0)
    if h.size != len(buf):
        raise CorruptRecordError(f"a built batch of {len(buf)} bytes says it holds {h.size}")
    if h.size > max_message_bytes:
        raise RecordTooLargeError(f"batch of {h.size} bytes exceeds max.message.bytes={max_message_bytes}")
    return [h]


def iter_batches(buf, pos: int = 0) -> Iterator[tuple[int, BatchHeader]]:
    """Yield (position, header) for each complete batch in buf; stops at a partial tail."""
    end = len(buf)
    while end - pos >= HEADER_SIZE:
        h = parse_header(buf, pos)
        if h.batch_length < MIN_BATCH_LENGTH or pos + h.size > end:
            return
        yield pos, h
        pos += h.size


# ---------------------------------------------------------------- varints and records

def _zigzag(n: int) -> int:
    return (n << 1) ^ (n >> 63)


def _write_varint(out: bytearray, n: int) -> None:
    v = _zigzag(n) & 0xFFFFFFFFFFFFFFFF
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)


def _read_varint(buf, pos: int) -> tuple[int, int]:
    shift = 0
    v = 0
    while True:
        if pos >= len(buf):
            raise CorruptRecordError("truncated varint")
        b = buf[pos]
        pos += 1
        v |= (b & 0x7F) << shift
        if not b & 0x80:
            break
        shift += 7
        if shift > 63:
            raise CorruptRecordError("varint too long")
    return (v >> 1) ^ -(v & 1), pos


def _varint_bytes(n: int) -> bytes:
    out = bytearray()
    _write_varint(out, n)
    return bytes(out)


_NULL = _varint_bytes(-1)
_SMALL_VARINTS = [_varint_bytes(n) for n in range(-1, 1 << 10)]   # index n + 1


def _varint(n: int) -> bytes:
    """The zigzag varint of n; from a table for -1 .. 1023 (the lengths and offset deltas of
    the small records the broker writes itself)."""
    return _SMALL_VARINTS[n + 1] if -1 <= n < (1 << 10) else _varint_bytes(n)


def _write_bytes(out: bytearray, data) -> None:
    if data is None:
        _write_varint(out, -1)
    else:
        _write_varint(out, len(data))
        out += data


def _read_bytes(buf, pos: int):
    n, pos = _read_varint(buf, pos)
    if n < 0:
        return None, pos
    if pos + n > len(buf):
        raise CorruptRecordError("record field runs past the batch")
    return bytes(buf[pos:pos + n]), pos + n


def build_batch(
    records,
    *,
    base_offset: int = 0,
    timestamp_ms: int | None = None,
    producer_id: int = -1,
    producer_epoch: int = -1,
    base_sequence: int = -1,
    attributes: int = 0,
    headers=None,
    leader_epoch: int = -1,
    writable: bool = False,
) -> bytes | bytearray:
    """Build one uncompressed v2 batch (a bytearray with `writable`, to append in place with own_batch's header).

    records: list of (key, value) or (key, value, headers); headers (optional) is a list with one
    header list per record. A header list is [(name: str|bytes, value: bytes|None), ...].
    Every record gets timestamp_ms (default: now).
    """
    if not records:
        raise ValueError("a batch needs at least one record")
    if attributes & ATTR_CODEC_MASK:
        raise ValueError("build_batch only builds uncompressed batches")
    ts = int(time.time() * 1000) if timestamp_ms is None else int(timestamp_ms)
    buf = bytearray(HEADER_SIZE)
    for i, r in enumerate(records):
        key, value = r[0], r[1]
        hdrs = r[2] if len(r) > 2 else (headers[i] if headers is not None else None)
        # attributes 0, timestampDelta 0, offsetDelta, key, value, headers
        rec = [b"\x00\x00", _varint(i), _NULL if key is None else _varint(len(key)), key or b"",
               _NULL if value is None else _varint(len(value)), value or b""]
        if hdrs:
            rec.append(_varint(len(hdrs)))
            for name, hval in hdrs:
                name = name.encode() if isinstance(name, str) else name
                rec += (_varint(len(name)), name, _NULL if hval is None else _varint(len(hval)), hval or b"")
        else:
            rec.append(b"\x00")
        data = b"".join(rec)
        buf += _varint(len(data))
        buf += data
    n = len(records)
    _HEADER.pack_into(buf, 0, base_offset, len(buf) - LOG_OVERHEAD, leader_epoch, 2, 0, attributes,
                      n - 1, ts, ts, producer_id, producer_epoch, base_sequence, n)
    _U.pack_into(buf, 17, compute_crc(buf, 0, len(buf)))
    return buf if writable else bytes(buf)


def iter_records(batch_bytes) -> Iterator[tuple[int, int, bytes | None, bytes | None, list]]:
    """Yield (offset, timestamp, key, value, headers) of every record in one or more UNCOMPRESSED
    batches. headers is a list of (name: str, value: bytes|None)."""
    mv = memoryview(batch_bytes)
    for pos, h in iter_batches(mv):
        if h.compression:
            raise InvalidRecordError(f"batch at offset {h.base_offset} is compressed (codec {h.compression})")
        p = pos + HEADER_SIZE
        end = pos + h.size
        for _ in range(h.records_count):
            length, p = _read_varint(mv, p)
            rec_end = p + length
            if rec_end > end:
                raise CorruptRecordError("record runs past the batch")
            p += 1  # attributes
            ts_delta, p = _read_varint(mv, p)
            off_delta, p = _read_varint(mv, p)
            key, p = _read_bytes(mv, p)
            value, p = _read_bytes(mv, p)
            nh, p = _read_varint(mv, p)
            hdrs = []
            for _ in range(nh):
                name, p = _read_bytes(mv, p)
                hval, p = _read_bytes(mv, p)
                hdrs.append((name.decode() if name is not None else "", hval))
            p = rec_end
            ts = h.max_timestamp if h.is_log_append_time else h.base_timestamp + ts_delta
            yield h.base_offset + off_delta, ts, key, value, hdrs


class StoredRecord(NamedTuple):
    """One record of a stored batch, with the deltas that place it inside its batch."""
    offset_delta: int
    timestamp_delta: int
    key: bytes | None
    value: bytes | None
    headers: bytes          # the record's header section as stored (count + headers), copied as is


def read_stored_records(records_bytes, count: int) -> list[StoredRecord]:
    """The `count` records of an uncompressed batch body (the bytes after the 61-byte header)."""
    mv = memoryview(records_bytes)
    out: list[StoredRecord] = []
    p = 0
    for _ in range(count):
        length, p = _read_varint(mv, p)
        end = p + length
        if end > len(mv):
            raise CorruptRecordError("record runs past the batch")
        q = p + 1  # attributes
        ts_delta, q = _read_varint(mv, q)
        off_delta, q = _read_varint(mv, q)
        key, q = _read_bytes(mv, q)
        value, q = _read_bytes(mv, q)
        out.append(StoredRecord(off_delta, ts_delta, key, value, bytes(mv[q:end])))
        p = end
    return out


def rebuild_batch(header: BatchHeader, records: list[StoredRecord]) -> bytes:
    """An uncompressed batch holding `records` (a subset of the batch `header` describes) at their
    original offsets and timestamps: base offset, last offset delta, producer fields and
    timestamps are kept, so readers see the same offsets with gaps where records were removed
    (what Kafka's log cleaner writes)."""
    body = bytearray()
    rec = bytearray()
    for r in records:
        rec.clear()
        rec.append(0)
        _write_varint(rec, r.timestamp_delta)
        _write_varint(rec, r.offset_delta)
        _write_bytes(rec, r.key)
        _write_bytes(rec, r.value)
        rec += r.headers
        _write_varint(body, len(rec))
        body += rec
    buf = bytearray(HEADER_SIZE) + body
    max_ts = header.max_timestamp   # LogAppendTime: the broker's time, whatever the records carry
    if not header.attributes & ATTR_LOG_APPEND_TIME and records:
        max_ts = header.base_timestamp + max(r.timestamp_delta for r in records)
    _HEADER.pack_into(buf, 0, header.base_offset, len(buf) - LOG_OVERHEAD, header.leader_epoch, 2, 0,
                      header.attributes & ~ATTR_CODEC_MASK, header.last_offset_delta, header.base_timestamp,
                      max_ts, header.producer_id, header.producer_epoch, header.base_sequence,
                      len(records))
    _U.pack_into(buf, 17, compute_crc(buf, 0, len(buf)))
    return bytes(buf)


# ---------------------------------------------------------------- transaction markers

CONTROL_ABORT = 0
CONTROL_COMMIT = 1
_CONTROL_KEY = struct.Struct(">hh")      # version 0, type (0 abort, 1 commit)
_CONTROL_VALUE = struct.Struct(">hi")    # version 0, coordinator epoch


def build_control_batch(producer_id: int, producer_epoch: int, commit: bool, coordinator_epoch: int,
                        timestamp_ms: int | None = None, writable: bool = False) -> bytes | bytearray:
    """A transaction marker as Kafka writes it: one control record in a transactional control
    batch (no sequence), its key the marker type, its value the coordinator's epoch."""
    return build_batch([(_CONTROL_KEY.pack(0, CONTROL_COMMIT if commit else CONTROL_ABORT),
                         _CONTROL_VALUE.pack(0, coordinator_epoch))],
                       timestamp_ms=timestamp_ms, producer_id=producer_id, producer_epoch=producer_epoch,
                       base_sequence=-1, attributes=ATTR_TRANSACTIONAL | ATTR_CONTROL, writable=writable)


def control_type(buf, pos: int, header: BatchHeader) -> int:
    """CONTROL_COMMIT or CONTROL_ABORT of the control batch at buf[pos:] (its first record's
    key), -1 if it is not one or cannot be read. buf may hold just the header and first record."""
    return control_record(buf, pos, header)[0]


def control_record(buf, pos: int, header: BatchHeader) -> tuple[int, int]:
    """(marker type, coordinator epoch) of the control batch at buf[pos:]; (-1, -1) if it is not
    a marker or cannot be read (the epoch is -1 when the value is missing)."""
    if not header.is_control or header.compression or header.records_count < 1:
        return -1, -1
    try:
        p = pos + HEADER_SIZE
        _length, p = _read_varint(buf, p)
        p += 1                                 # record attributes
        _ts, p = _read_varint(buf, p)
        _delta, p = _read_varint(buf, p)
        klen, p = _read_varint(buf, p)
        if klen < 4:
            return -1, -1
        _version, kind = _CONTROL_KEY.unpack_from(buf, p)
        if kind not in (CONTROL_ABORT, CONTROL_COMMIT):
            return -1, -1
        vlen, p = _read_varint(buf, p + klen)
        epoch = _CONTROL_VALUE.unpack_from(buf, p)[1] if vlen >= _CONTROL_VALUE.size else -1
    except (struct.error, IndexError, ValueError, CorruptRecordError):
        return -1, -1
    return kind, epoch
