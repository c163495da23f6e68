"""Record-level views of stored batches, for the rare paths that need them (ListOffsets by time).

The produce and fetch paths never come here: they treat batches as opaque bytes.
"""

from __future__ import annotations

import struct

import cramjam

from sandbox.log.batch import HEADER_SIZE, iter_batches, iter_records

_XERIAL = b"\x82SNAPPY\x00"


def _snappy(data: bytes) -> bytes:
    if data[:8] == _XERIAL:  # Java clients: xerial framing, then length-prefixed raw blocks
        out = bytearray()
        pos = 16
        while pos + 4 <= len(data):
            (n,) = struct.unpack_from(">i", data, pos)
            pos += 4
            out += bytes(cramjam.snappy.decompress_raw(data[pos : pos + n]))
            pos += n
        return bytes(out)
    return bytes(cramjam.snappy.decompress_raw(data))


_CODECS = {
    1: lambda d: bytes(cramjam.gzip.decompress(d)),
    2: _snappy,
    3: lambda d: bytes(cramjam.lz4.decompress(d)),
    4: lambda d: bytes(cramjam.zstd.decompress(d)),
}


def decompress(codec: int, payload: bytes) -> bytes:
    """A batch's records compressed with Kafka codec `codec` (what the log cleaner is handed)."""
    return _CODECS[codec](payload)


def uncompressed(batches: bytes) -> bytes:
    """The same batches with compressed record payloads expanded (codec bits cleared)."""
    out = bytearray()
    mv = memoryview(batches)
    for pos, h in iter_batches(mv):
        if not h.compression:
            out += mv[pos : pos + h.size]
            continue
        records = _CODECS[h.compression](bytes(mv[pos + HEADER_SIZE : pos + h.size]))
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
