"""Record batch v2: header layout, builder/decoder round trip, produce-path validation."""
import struct

import crc32c
import pytest
from hypothesis import given, settings, HealthCheck, strategies as st

from sandbox.log import (
    HEADER_SIZE, CorruptRecordError, InvalidRecordError, RecordTooLargeError, build_batch, iter_records,
    parse_header, validate_batches,
)
from sandbox.log.batch import _read_varint, _write_varint, own_batch

from .logkit import batch


def test_header_fields_and_crc():
    b = build_batch([(b"k", b"v"), (None, b"w")], base_offset=5, timestamp_ms=1234, producer_id=7,
                    producer_epoch=2, base_sequence=9)
    h = parse_header(b)
    assert HEADER_SIZE == 61
    assert (h.base_offset, h.magic, h.last_offset_delta, h.records_count) == (5, 2, 1, 2)
    assert (h.base_timestamp, h.max_timestamp) == (1234, 1234)
    assert (h.producer_id, h.producer_epoch, h.base_sequence) == (7, 2, 9)
    assert h.size == len(b) == 12 + h.batch_length
    assert h.next_offset == 7
    assert h.crc == crc32c.crc32c(b[21:])
    assert not h.is_control and not h.is_transactional
    assert parse_header(build_batch([(b"a", b"b")], attributes=0x30)).is_control


def test_records_round_trip_with_headers_and_nulls():
    recs = [(b"k1", b"v1", [("h", b"x"), ("n", None)]), (None, None, []), (b"", b"v3" * 100, [])]
    got = list(iter_records(build_batch(recs, base_offset=10, timestamp_ms=99)))
    assert got == [(10, 99, b"k1", b"v1", [("h", b"x"), ("n", None)]), (11, 99, None, None, []),
                   (12, 99, b"", b"v3" * 100, [])]


@given(st.integers(min_value=-(2**63), max_value=2**63 - 1))
def test_varint_round_trip(n):
    out = bytearray()
    _write_varint(out, n)
    assert _read_varint(out, 0) == (n, len(out))


def test_known_varint_encodings():
    for n, enc in [(0, b"\x00"), (-1, b"\x01"), (1, b"\x02"), (63, b"\x7e"), (64, b"\x80\x01"), (-65, b"\x81\x01")]:
        out = bytearray()
        _write_varint(out, n)
        assert bytes(out) == enc


def test_validate_accepts_several_batches():
    buf = batch(2) + batch(3)
    hs = validate_batches(buf, 1 << 20)
    assert [h.records_count for h in hs] == [2, 3]


def test_validate_bad_crc():
    b = bytearray(batch(2))
    b[-1] ^= 0xFF
    with pytest.raises(CorruptRecordError, match="CRC"):
        validate_batches(bytes(b), 1 << 20)


def test_validate_base_offset_not_crc_covered():
    b = bytearray(batch(2))
    struct.pack_into(">q", b, 0, 12345)
    struct.pack_into(">i", b, 12, 7)
    validate_batches(bytes(b), 1 << 20)


@pytest.mark.parametrize("magic,exc", [(0, InvalidRecordError), (1, InvalidRecordError), (3, CorruptRecordError)])
def test_validate_bad_magic(magic, exc):
    b = bytearray(batch(1))
    b[16] = magic
    with pytest.raises(exc):
        validate_batches(bytes(b), 1 << 20)


def test_validate_too_large():
    b = batch(10)
    with pytest.raises(RecordTooLargeError):
        validate_batches(b, len(b) - 1)
    validate_batches(b, len(b))


@pytest.mark.parametrize("tail", [b"\x00", b"\x00" * 20, None])
def test_validate_trailing_partial(tail):
    full = batch(2)
    buf = full + (tail if tail is not None else full[:40])
    with pytest.raises(CorruptRecordError):
        validate_batches(buf, 1 << 20)


def test_validate_empty_and_zero_records():
    with pytest.raises(CorruptRecordError):
        validate_batches(b"", 1 << 20)
    b = bytearray(batch(1))
    struct.pack_into(">i", b, 57, 0)
    struct.pack_into(">I", b, 17, crc32c.crc32c(bytes(b[21:])))
    with pytest.raises(InvalidRecordError):
        validate_batches(bytes(b), 1 << 20)


def test_validate_accepts_memoryview():
    buf = batch(3)
    assert validate_batches(memoryview(buf), 1 << 20)[0].records_count == 3


def test_iter_records_rejects_compressed():
    b = bytearray(batch(1))
    struct.pack_into(">h", b, 21, 1)
    with pytest.raises(InvalidRecordError):
        list(iter_records(bytes(b)))


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.none() | st.binary(max_size=300), st.none() | st.binary(max_size=20000),
                          st.lists(st.tuples(st.text(max_size=5), st.none() | st.binary(max_size=40)), max_size=3)),
                min_size=1, max_size=40))
def test_built_records_read_back_and_pass_validation(records):
    b = build_batch(records, timestamp_ms=7)
    assert [(k, v, h) for _o, _t, k, v, h in iter_records(b)] == \
        [(k, v, [(n, hv) for n, hv in hs]) for k, v, hs in records]
    assert validate_batches(b, 1 << 30) == own_batch(build_batch(records, timestamp_ms=7, writable=True), 1 << 30)


def _reference_records(records) -> bytes:
    """The records section as the Kafka spec lays it out, written varint by varint (the builder
    takes its varints from a table)."""
    body = bytearray()
    for i, (key, value, hdrs) in enumerate(records):
        rec = bytearray(b"\x00")
        for n in (0, i):
            _write_varint(rec, n)
        for data in (key, value):
            _write_varint(rec, -1 if data is None else len(data))
            rec += data or b""
        _write_varint(rec, len(hdrs))
        for name, hv in hdrs:
            name = name.encode() if isinstance(name, str) else name
            _write_varint(rec, len(name))
            rec += name
            _write_varint(rec, -1 if hv is None else len(hv))
            rec += hv or b""
        _write_varint(body, len(rec))
        body += rec
    return bytes(body)


@pytest.mark.parametrize("n, size", [(1, 0), (3, 63), (2, 64), (1, 1023), (1, 1024), (1100, 5), (2, 9000)])
def test_built_records_are_the_reference_encoding_across_varint_widths(n, size):
    records = [(None if i % 4 == 0 else b"k" * (i % 70), b"v" * size if i % 5 else None,
                [] if i % 3 else [("h", b"x" * (i % 130)), (b"n" * 200, None)]) for i in range(n)]
    b = build_batch(records, timestamp_ms=9)
    assert b[HEADER_SIZE:] == _reference_records(records)
    assert parse_header(b).records_count == n


def test_own_batch_checks_only_size_and_framing():
    buf = build_batch([(b"k", b"v" * 100)], writable=True)
    assert isinstance(buf, bytearray) and own_batch(buf, 1 << 20)[0].records_count == 1
    with pytest.raises(RecordTooLargeError):
        own_batch(buf, 100)
    with pytest.raises(CorruptRecordError):
        own_batch(buf + b"\0", 1 << 20)
