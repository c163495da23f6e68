"""Record-level views of stored batches, for the rare paths that need them (ListOffsets by time,
and produce to a compacted topic, whose records must all have keys).

Produce to other topics and fetch never come here: they treat batches as opaque bytes.
"""

from __future__ import annotations

import struct

from sandbox.compression import decompress
from sandbox.log.batch import HEADER_SIZE, BatchHeader, iter_batches, iter_records, read_stored_records

def uncompressed(batches: bytes) -> bytes:
    """The same batches with compressed record payloads expanded (codec bits cleared)."""
    out = bytearray()
    mv = memoryview(batches)
    for pos, h in iter_batches(mv):
        if not h.compression:
            out += mv[pos : pos + h.size]
            continue
        records = decompress(h.compression, bytes(mv[pos + HEADER_SIZE : pos + h.size]))
        head = bytearray(mv[pos : pos + HEADER_SIZE])
        struct.pack_into(">i", head, 8, HEADER_SIZE - 12 + len(records))
        struct.pack_into(">h", head, 21, h.attributes & ~0x07)
        out += head + records
    return bytes(out)


def first_record_at_or_after(batches: bytes, ts_ms: int, min_offset: int) -> tuple[int, int] | None:
    """(offset, timestamp) of the first record with timestamp >= ts_ms and offset >= min_offset."""
    for off, ts, _k, _v, _h in iter_records(uncompressed(batches)):
        if off >= min_offset and ts >= ts_ms:
            return off, ts
    return None


def record_with_timestamp(batches: bytes, ts_ms: int) -> int | None:
    """Offset of the first record carrying exactly ts_ms (ListOffsets max-timestamp)."""
    for off, ts, _k, _v, _h in iter_records(uncompressed(batches)):
        if ts == ts_ms:
            return off
    return None


def first_keyless_record(batches, headers: list[BatchHeader]) -> int | None:
    """The index (inside its batch) of the first record without a key in already validated
    producer batches, else None. Control batches carry no user records and are skipped."""
    mv = memoryview(batches)
    pos = 0
    for h in headers:
        if not h.is_control:
            body = mv[pos + HEADER_SIZE : pos + h.size]
            if h.compression:
                body = decompress(h.compression, bytes(body))
            for i, rec in enumerate(read_stored_records(body, h.records_count)):
                if rec.key is None:
                    return i
        pos += h.size
    return None
