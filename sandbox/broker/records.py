"""Record-level views of stored batches, for the rare paths that need them (ListOffsets by time).

The produce and fetch paths never come here: they treat batches as opaque bytes.
"""

from __future__ import annotations

import struct

from sandbox.compression import decompress
from sandbox.log.batch import HEADER_SIZE, iter_batches, iter_records

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
