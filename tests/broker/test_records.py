"""Record-level views of compressed batches (used by ListOffsets by timestamp)."""

from __future__ import annotations

import struct

import cramjam
import pytest

from sandbox.broker.records import first_record_at_or_after, record_with_timestamp, uncompressed
from sandbox.log.batch import HEADER_SIZE, build_batch, compute_crc, iter_records, validate_batches

COMPRESS = {
    1: lambda d: bytes(cramjam.gzip.compress(d)),
    2: lambda d: bytes(cramjam.snappy.compress_raw(d)),
    3: lambda d: bytes(cramjam.lz4.compress(d)),
    4: lambda d: bytes(cramjam.zstd.compress(d)),
}


def compressed_batch(codec: int, values: list[bytes], base_ts: int) -> bytes:
    plain = bytearray(build_batch([(b"k", v) for v in values], timestamp_ms=base_ts))
    body = COMPRESS[codec](bytes(plain[HEADER_SIZE:]))
    out = bytearray(plain[:HEADER_SIZE]) + body
    struct.pack_into(">i", out, 8, len(out) - 12)
    struct.pack_into(">h", out, 21, codec)
    struct.pack_into(">I", out, 17, compute_crc(out, 0, len(out)))
    validate_batches(bytes(out), 10**6)
    return bytes(out)


@pytest.mark.parametrize("codec", [1, 2, 3, 4])
def test_compressed_batches_expand_to_the_same_records(codec):
    values = [f"value-{i}".encode() * 5 for i in range(20)]
    batch = compressed_batch(codec, values, 1_000)
    assert [v for _o, _t, _k, v, _h in iter_records(uncompressed(batch))] == values
    assert record_with_timestamp(batch, 1_000) == 0


def test_xerial_framed_snappy_from_java_clients():
    plain = bytearray(build_batch([(b"k", b"java-" + bytes([65 + i])) for i in range(5)]))
    raw = bytes(cramjam.snappy.compress_raw(bytes(plain[HEADER_SIZE:])))
    body = b"\x82SNAPPY\x00" + struct.pack(">ii", 1, 1) + struct.pack(">i", len(raw)) + raw
    out = bytearray(plain[:HEADER_SIZE]) + body
    struct.pack_into(">i", out, 8, len(out) - 12)
    struct.pack_into(">h", out, 21, 2)
    values = [v for _o, _t, _k, v, _h in iter_records(uncompressed(bytes(out)))]
    assert values == [b"java-" + bytes([65 + i]) for i in range(5)]


def test_first_record_at_or_after_respects_start_offset():
    batch = build_batch([(b"k", b"a"), (b"k", b"b"), (b"k", b"c")], timestamp_ms=500)
    assert first_record_at_or_after(batch, 400, 0) == (0, 500)
    assert first_record_at_or_after(batch, 400, 2) == (2, 500)
    assert first_record_at_or_after(batch, 600, 0) is None
