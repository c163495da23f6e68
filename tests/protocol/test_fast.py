"""The hand-rolled Produce/Fetch codecs must be byte-identical to kio's generic codec."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sandbox.broker.handlers import k00_produce, k01_fetch
from sandbox.protocol import DecodeError, RequestHeader, build, decode_request, encode_request
from sandbox.protocol import decode_response, encode_response, request_class, response_class
from sandbox.protocol.fast import (
    FETCH_RESPONSE_VERSIONS,
    PRODUCE_REQUEST_VERSIONS,
    PRODUCE_RESPONSE_VERSIONS,
    decode_produce_request,
    encode_fetch_response,
    encode_produce_response,
    join_parts,
)

i16 = st.integers(-(2**15), 2**15 - 1)
i32 = st.integers(-(2**31), 2**31 - 1)
i64 = st.integers(-(2**63), 2**63 - 1)
names = st.text(min_size=0, max_size=12)
opt_names = st.none() | names
errors = st.sampled_from([0, 1, 2, 3, 6, 10, 18, 35, 45, 87])


def test_fast_ranges_cover_the_handlers():
    assert PRODUCE_REQUEST_VERSIONS[0] <= k00_produce.MIN_VERSION
    assert k00_produce.MAX_VERSION <= PRODUCE_REQUEST_VERSIONS[1]
    assert PRODUCE_RESPONSE_VERSIONS[0] <= k00_produce.MIN_VERSION
    assert k00_produce.MAX_VERSION <= PRODUCE_RESPONSE_VERSIONS[1]
    assert FETCH_RESPONSE_VERSIONS[0] <= k01_fetch.MIN_VERSION
    assert k01_fetch.MAX_VERSION <= FETCH_RESPONSE_VERSIONS[1]


# ---------------------------------------------------------------- Produce response

produce_partition = st.fixed_dictionaries({
    "index": i32, "error_code": errors, "base_offset": i64,
    "log_append_time": st.integers(-1, 2**41), "log_start_offset": i64,
    "record_errors": st.lists(st.fixed_dictionaries(
        {"batch_index": i32, "batch_index_error_message": opt_names}), max_size=3),
    "error_message": opt_names,
})
produce_body = st.fixed_dictionaries({
    "responses": st.lists(st.fixed_dictionaries({
        "name": names, "partition_responses": st.lists(produce_partition, max_size=4)}), max_size=4),
    "throttle_time": st.integers(0, 2**31 - 1),
})


@settings(max_examples=300, deadline=None)
@given(version=st.integers(*PRODUCE_RESPONSE_VERSIONS), corr=i32, body=produce_body)
def test_produce_response_matches_kio(version, corr, body):
    expected = encode_response(corr, build(response_class(0, version), body))
    assert encode_produce_response(corr, version, body) == expected


def test_produce_response_of_the_handler_error_shape():
    body = {"responses": [{"name": "t", "partition_responses": [k00_produce._error(3, 6, "x")]}],
            "throttle_time": 0}
    for v in range(3, 12):
        assert encode_produce_response(7, v, body) == encode_response(7, build(response_class(0, v), body))


# ---------------------------------------------------------------- Fetch response

class Slices:
    """Stands in for the log's file slices: len() and readinto(), no buffer protocol."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def __len__(self) -> int:
        return len(self.data)

    def readinto(self, view) -> int:
        view[:] = self.data
        return len(self.data)


records_st = st.none() | st.binary(max_size=64) | st.integers(4000, 9000).map(lambda n: bytes([n % 251]) * n)
fetch_partition = st.fixed_dictionaries({
    "partition_index": i32, "error_code": errors, "high_watermark": i64, "last_stable_offset": i64,
    "log_start_offset": i64, "preferred_read_replica": i32, "records": records_st,
    "aborted_transactions": st.none() | st.lists(st.fixed_dictionaries(
        {"producer_id": i64, "first_offset": i64}), max_size=3),
})
fetch_body = st.fixed_dictionaries({
    "throttle_time": st.integers(0, 2**31 - 1), "error_code": errors, "session_id": i32,
    "responses": st.lists(st.fixed_dictionaries({
        "topic": names, "topic_id": st.uuids(), "partitions": st.lists(fetch_partition, max_size=4)}),
        max_size=3),
})


@settings(max_examples=300, deadline=None)
@given(version=st.integers(*FETCH_RESPONSE_VERSIONS), corr=i32, body=fetch_body, lazy=st.booleans())
def test_fetch_response_matches_kio(version, corr, body, lazy):
    expected = encode_response(corr, build(response_class(1, version), body))
    if lazy:
        for t in body["responses"]:
            for p in t["partitions"]:
                if p["records"]:
                    p["records"] = Slices(p["records"])
    parts = encode_fetch_response(corr, version, body)
    assert bytes(join_parts(parts)) == expected
    assert b"".join(bytes(p.data) if isinstance(p, Slices) else bytes(p) for p in parts) == expected


def test_fetch_response_of_the_handler_shape():
    entry = {"partition_index": 0, "error_code": 0, "high_watermark": 5, "last_stable_offset": 5,
             "log_start_offset": 0, "aborted_transactions": None, "preferred_read_replica": -1,
             "records": b"x" * 10000}
    body = {"throttle_time": 0, "error_code": 0, "session_id": 0,
            "responses": [{"topic": "t", "topic_id": uuid.uuid4(),
                           "partitions": [entry, dict(entry, records=b"")]}]}
    for v in range(4, 18):
        want = encode_response(9, build(response_class(1, v), body))
        assert bytes(join_parts(encode_fetch_response(9, v, body))) == want


# ---------------------------------------------------------------- Produce request

produce_request = st.fixed_dictionaries({
    "transactional_id": opt_names, "acks": i16, "timeout": st.integers(0, 2**31 - 1),
    "topic_data": st.lists(st.fixed_dictionaries({
        "name": names, "partition_data": st.lists(st.fixed_dictionaries({
            "index": i32, "records": st.none() | st.binary(max_size=200)}), max_size=3)}), max_size=3),
})


def _as_plain(req) -> tuple:
    return (req.transactional_id, int(req.acks), req.timeout,
            tuple((t.name, tuple((int(p.index), None if p.records is None else bytes(p.records))
                                 for p in t.partition_data)) for t in req.topic_data))


@settings(max_examples=300, deadline=None)
@given(version=st.integers(*PRODUCE_REQUEST_VERSIONS), corr=i32, client=opt_names, data=produce_request)
def test_produce_request_matches_kio(version, corr, client, data):
    cls = request_class(0, version)
    frame = encode_request(RequestHeader(0, version, corr, client), build(cls, data))[4:]
    h1, r1 = decode_request(frame)
    h2, r2 = decode_produce_request(frame)
    assert h1 == h2
    assert _as_plain(r1) == _as_plain(r2)


@settings(max_examples=500, deadline=None)
@given(version=st.integers(*PRODUCE_REQUEST_VERSIONS), data=produce_request, cut=st.integers(0, 400),
       flips=st.lists(st.tuples(st.integers(0, 400), st.integers(0, 255)), max_size=4))
def test_produce_request_garbage_only_raises_decode_error(version, data, cut, flips):
    frame = bytearray(encode_request(RequestHeader(0, version, 1, "c"), build(request_class(0, version), data))[4:])
    for i, b in flips:
        if 8 <= i < len(frame):
            frame[i] = b
    frame = bytes(frame[:max(cut, 8)])
    try:
        _h1, r1 = decode_request(frame)
    except DecodeError:
        r1 = None
    try:
        _h2, r2 = decode_produce_request(frame)
    except DecodeError:
        r2 = None
    if r1 is not None and r2 is None and _null_array(r1):
        return   # kio reads a null where Produce allows no null (Kafka refuses it too): refusing is right
    assert (r1 is None) == (r2 is None)
    if r1 is not None:
        assert _as_plain(r1) == _as_plain(r2)


def _null_array(request) -> bool:
    """A Produce request holding a null array, which its schema does not allow."""
    return request.topic_data is None or any(t.partition_data is None for t in request.topic_data)


def test_a_null_partition_array_is_refused():
    # the example hypothesis found: a flipped byte makes the second topic's partition array null
    data = {"transactional_id": None, "acks": 0, "timeout": 0,
            "topic_data": [{"name": "a", "partition_data": []}, {"name": "b", "partition_data": []}]}
    frame = bytearray(encode_request(RequestHeader(0, 9, 1, "c"), build(request_class(0, 9), data))[4:])
    assert frame[-3:] == b"\x01\x00\x00"   # b's compact partition array (empty), b's and the request's tags
    frame[-3] = 0                            # length 0 in a compact array: null
    _h, r1 = decode_request(bytes(frame))
    assert r1.topic_data[1].partition_data is None
    with pytest.raises(DecodeError):
        decode_produce_request(bytes(frame))


def test_produce_request_records_are_views_not_copies():
    data = {"transactional_id": None, "acks": 1, "timeout": 100,
            "topic_data": [{"name": "t", "partition_data": [{"index": 0, "records": b"abc" * 100}]}]}
    frame = encode_request(RequestHeader(0, 9, 1, None), build(request_class(0, 9), data))[4:]
    _h, req = decode_produce_request(frame)
    rec = req.topic_data[0].partition_data[0].records
    assert isinstance(rec, memoryview) and rec.obj is frame and bytes(rec) == b"abc" * 100


@pytest.mark.parametrize("frame", [b"", b"\x00\x00\x00\x03\x00\x00\x00\x01", b"\x00\x01\x00\x05\x00\x00\x00\x01\xff\xff"])
def test_produce_request_refuses_short_or_foreign_frames(frame):
    with pytest.raises(DecodeError):
        decode_produce_request(frame)


def test_fetch_aborted_transactions_round_trip_through_kio_every_version():
    """A read_committed reply's aborted transactions, encoded by the fast path, decoded by kio."""
    aborted = [{"producer_id": 7, "first_offset": 3}, {"producer_id": 2**40, "first_offset": 2**33}]
    for v in range(FETCH_RESPONSE_VERSIONS[0], FETCH_RESPONSE_VERSIONS[1] + 1):
        for listed in (aborted, [], None):
            entry = {"partition_index": 1, "error_code": 0, "high_watermark": 9, "last_stable_offset": 6,
                     "log_start_offset": 0, "aborted_transactions": listed, "preferred_read_replica": -1,
                     "records": Slices(b"r" * 5000)}
            body = {"throttle_time": 0, "error_code": 0, "session_id": 0,
                    "responses": [{"topic": "t", "topic_id": uuid.uuid4(), "partitions": [entry]}]}
            corr, resp = decode_response(bytes(join_parts(encode_fetch_response(5, v, body)))[4:], 1, v)
            p = resp.responses[0].partitions[0]
            assert corr == 5 and (p.high_watermark, p.last_stable_offset) == (9, 6)
            got = None if p.aborted_transactions is None else [
                {"producer_id": a.producer_id, "first_offset": a.first_offset} for a in p.aborted_transactions]
            # null (read_uncommitted) and empty (read_committed, none aborted) stay distinct in every version
            assert got == listed, (v, listed)
            assert bytes(p.records) == b"r" * 5000


# ---------------------------------------------------------------- KIP-951 leader hints

leader_st = st.fixed_dictionaries({"leader_id": st.integers(0, 2**31 - 1), "leader_epoch": st.integers(0, 2**31 - 1)})
endpoints_st = st.lists(st.fixed_dictionaries({"node_id": st.integers(0, 100), "host": names,
                                               "port": st.integers(1, 65535), "rack": opt_names}),
                        min_size=1, max_size=3)


def _with_hints(body: dict, parts_key: str, leaders: list, nodes, since: int, version: int) -> dict:
    """Put the leader hints into `body`; the body kio must encode (without them before `since`,
    where the fields do not exist and nothing is written for them)."""
    flat = [p for t in body["responses"] for p in t[parts_key]]
    for p, leader in zip(flat, leaders):
        if leader is not None:
            p["current_leader"] = leader
    if nodes is not None:
        body["node_endpoints"] = nodes
    if version >= since:
        return body
    return {**{k: v for k, v in body.items() if k != "node_endpoints"},
            "responses": [{**t, parts_key: [{k: v for k, v in p.items() if k != "current_leader"} for p in t[parts_key]]}
                          for t in body["responses"]]}


@settings(max_examples=200, deadline=None)
@given(version=st.integers(*PRODUCE_RESPONSE_VERSIONS), corr=i32, body=produce_body,
       leaders=st.lists(st.none() | leader_st, min_size=16, max_size=16), nodes=st.none() | endpoints_st)
def test_produce_response_with_leader_hints_matches_kio(version, corr, body, leaders, nodes):
    """v10+ carries current_leader (tag 0) and node_endpoints (tag 0) when a partition is refused
    because this broker does not lead it: librdkafka and Java then go to that leader at once."""
    kio_body = _with_hints(body, "partition_responses", leaders, nodes, 10, version)
    expected = encode_response(corr, build(response_class(0, version), kio_body))
    assert encode_produce_response(corr, version, body) == expected


@settings(max_examples=200, deadline=None)
@given(version=st.integers(*FETCH_RESPONSE_VERSIONS), corr=i32, body=fetch_body,
       leaders=st.lists(st.none() | leader_st, min_size=12, max_size=12), nodes=st.none() | endpoints_st)
def test_fetch_response_with_leader_hints_matches_kio(version, corr, body, leaders, nodes):
    kio_body = _with_hints(body, "partitions", leaders, nodes, 16, version)
    expected = encode_response(corr, build(response_class(1, version), kio_body))
    assert bytes(join_parts(encode_fetch_response(corr, version, body))) == expected
