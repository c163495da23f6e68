"""The record batch codec the coordinator serves `__cluster_metadata` with: exact v2 bytes,
readable by the log's own batch reader, and strict about CRC, magic and compression."""
from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sandbox.log import batch as log_batch
from sandbox.protocol.records import RecordsError, decode_batches, encode_batch

values = st.lists(st.tuples(st.none() | st.binary(max_size=300),
                            st.none() | st.binary(max_size=300)), min_size=1, max_size=20)


@given(values, st.integers(0, 2**40), st.integers(0, 2**41))
def test_roundtrip_and_the_log_reads_it(records, base, ts):
    data = encode_batch(base, records, ts)
    got = decode_batches(data)
    assert [(r.offset, r.timestamp, r.key, r.value) for r in got] == [
        (base + i, ts, k, v) for i, (k, v) in enumerate(records)]
    (header,) = log_batch.validate_batches(data, 1 << 30)
    assert header.base_offset == base and header.records_count == len(records)
    assert [(o, k, v) for o, _t, k, v, _h in log_batch.iter_records(data)] == [
        (base + i, k, v) for i, (k, v) in enumerate(records)]


def test_reads_what_the_log_builds_and_skips_a_partial_tail():
    built = log_batch.build_batch([(b"k", b"v"), (None, b"w")], base_offset=7, timestamp_ms=5)
    ours = encode_batch(9, [b"x"], 5)
    got = decode_batches(built + ours + ours[:40])
    assert [(r.offset, r.key, r.value) for r in got] == [(7, b"k", b"v"), (8, None, b"w"),
                                                         (9, None, b"x")]


def test_rejects_bad_crc_magic_and_compression():
    data = bytearray(encode_batch(0, [b"value"]))
    data[-1] ^= 0xFF
    with pytest.raises(RecordsError, match="CRC"):
        decode_batches(bytes(data))
    data = bytearray(encode_batch(0, [b"value"]))
    data[16] = 1
    with pytest.raises(RecordsError, match="magic"):
        decode_batches(bytes(data))
    data = bytearray(encode_batch(0, [b"value"]))
    struct.pack_into(">h", data, 21, 1)  # gzip
    with pytest.raises(RecordsError, match="compressed"):
        decode_batches(bytes(data), check_crc=False)
    with pytest.raises(ValueError):
        encode_batch(0, [])
