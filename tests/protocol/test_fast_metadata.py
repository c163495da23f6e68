"""The hand-rolled Metadata response encoder must be byte-identical to kio's for every version."""

from __future__ import annotations

import uuid

from hypothesis import given, settings
from hypothesis import strategies as st

from sandbox.broker.handlers import k03_metadata
from sandbox.protocol import build, encode_response, response_class
from sandbox.protocol.fast_metadata import METADATA_RESPONSE_VERSIONS, encode_metadata_response, encode_metadata_topic

i32 = st.integers(-(2**31), 2**31 - 1)
ids = st.lists(st.integers(-1, 2**31 - 1), max_size=4).map(tuple)
names = st.text(min_size=1, max_size=12)
errors = st.sampled_from([0, 3, 5, 17, 87])

partitions = st.fixed_dictionaries({
    "error_code": errors, "partition_index": st.integers(0, 2**31 - 1), "leader_id": st.integers(-1, 2**31 - 1),
    "leader_epoch": i32, "replica_nodes": ids, "isr_nodes": ids, "offline_replicas": ids})
topics = st.fixed_dictionaries({
    "error_code": errors, "name": names, "topic_id": st.uuids() | st.just(uuid.UUID(int=0)),
    "is_internal": st.booleans(), "partitions": st.lists(partitions, max_size=4),
    "topic_authorized_operations": i32})
brokers = st.fixed_dictionaries({"node_id": st.integers(0, 2**31 - 1), "host": names,
                                 "port": st.integers(0, 65535), "rack": st.none() | names})
bodies = st.fixed_dictionaries({
    "throttle_time": st.integers(0, 2**31 - 1), "brokers": st.lists(brokers, max_size=3),
    "cluster_id": st.none() | names, "controller_id": st.integers(-1, 2**31 - 1),
    "topics": st.lists(topics, max_size=4), "cluster_authorized_operations": i32,
    "error_code": st.sampled_from([0, 3, 5])})


def test_fast_range_covers_the_handler():
    assert METADATA_RESPONSE_VERSIONS[0] <= k03_metadata.MIN_VERSION
    assert k03_metadata.MAX_VERSION <= METADATA_RESPONSE_VERSIONS[1]


@settings(max_examples=300, deadline=None)
@given(version=st.integers(*METADATA_RESPONSE_VERSIONS), body=bodies, corr=i32)
def test_metadata_response_is_byte_identical_to_kio(version, body, corr):
    expected = encode_response(corr, build(response_class(3, version), body))
    assert encode_metadata_response(corr, version, body) == bytes(expected)


@settings(max_examples=100, deadline=None)
@given(version=st.integers(*METADATA_RESPONSE_VERSIONS), body=bodies, corr=i32)
def test_pre_encoded_topic_entries_give_the_same_frame(version, body, corr):
    blobs = {**body, "topics": [encode_metadata_topic(version, t) for t in body["topics"]]}
    assert encode_metadata_response(corr, version, blobs) == encode_metadata_response(corr, version, body)


# ---------------------------------------------------------------- Metadata request

import pytest  # noqa: E402

from sandbox.protocol import DecodeError, RequestHeader, decode_request, encode_request, request_class  # noqa: E402
from sandbox.protocol.fast_metadata import decode_metadata_request  # noqa: E402

ZERO = uuid.UUID(int=0)


def _request(version: int, data) -> dict:
    """A request body for `version`: topics by name before v10, by name or id (name null) after."""
    topics = None if data["topics"] is None else [
        {"name": n, "topic_id": i} if version >= 10 else {"name": n if n is not None else "x"}
        for n, i in data["topics"]]
    if topics is None and version == 0:
        topics = []
    body = {"topics": topics, "allow_auto_topic_creation": data["auto"],
            "include_topic_authorized_operations": data["topic_ops"]}
    if 8 <= version <= 10:
        body["include_cluster_authorized_operations"] = data["cluster_ops"]
    return body


def _plain(req, version: int) -> tuple:
    topics = None if req.topics is None else tuple(
        (t.name, getattr(t, "topic_id", None) if version >= 10 else None) for t in req.topics)
    return (topics, getattr(req, "allow_auto_topic_creation", True),
            getattr(req, "include_cluster_authorized_operations", False),
            getattr(req, "include_topic_authorized_operations", False))


metadata_requests = st.fixed_dictionaries({
    "topics": st.none() | st.lists(st.tuples(st.none() | names, st.just(ZERO) | st.uuids()), max_size=4),
    "auto": st.booleans(), "cluster_ops": st.booleans(), "topic_ops": st.booleans()})


@settings(max_examples=400, deadline=None)
@given(version=st.integers(*METADATA_RESPONSE_VERSIONS), corr=i32, client=st.none() | names, data=metadata_requests)
def test_metadata_request_matches_kio(version, corr, client, data):
    body = _request(version, data)
    if version < 10 and body["topics"]:
        body["topics"] = [t for t in body["topics"] if t["name"] is not None]
    frame = encode_request(RequestHeader(3, version, corr, client), build(request_class(3, version), body))[4:]
    h1, r1 = decode_request(frame)
    h2, r2 = decode_metadata_request(frame)
    assert h1 == h2
    assert _plain(r1, version) == _plain(r2, version)


@settings(max_examples=400, deadline=None)
@given(version=st.integers(*METADATA_RESPONSE_VERSIONS), data=metadata_requests, cut=st.integers(0, 200),
       flips=st.lists(st.tuples(st.integers(0, 200), st.integers(0, 255)), max_size=4))
def test_metadata_request_garbage_only_raises_decode_error(version, data, cut, flips):
    """Cut short or with bytes changed: either both decoders refuse it, or both read the same."""
    frame = bytearray(encode_request(RequestHeader(3, version, 1, "c"),
                                     build(request_class(3, version), _request(version, data)))[4:])
    for i, b in flips:
        if 8 <= i < len(frame):
            frame[i] = b
    frame = bytes(frame[:max(cut, 8)])
    try:
        r1 = decode_request(frame)[1]
    except DecodeError:
        r1 = None
    try:
        r2 = decode_metadata_request(frame)[1]
    except DecodeError:
        r2 = None
    if r1 is not None and r2 is None and version == 0 and r1.topics is None:
        return   # v0 allows no null topic array (Kafka refuses it too)
    assert (r1 is None) == (r2 is None), (r1, r2)
    if r1 is not None:
        assert _plain(r1, version) == _plain(r2, version)


def test_the_broker_answers_metadata_requests_without_kio_schemas():
    from sandbox.broker.handlers import REGISTRY

    frame = encode_request(RequestHeader(3, 12, 7, "c"), build(request_class(3, 12), {
        "topics": [{"name": "t", "topic_id": None}], "allow_auto_topic_creation": False,
        "include_topic_authorized_operations": False}))[4:]
    header, req = REGISTRY.handlers[3].decode(frame)
    assert type(req).__module__ == "sandbox.protocol.fast_metadata"
    assert header == RequestHeader(3, 12, 7, "c") and req.topics[0].name == "t"
    assert req.allow_auto_topic_creation is False


@pytest.mark.parametrize("frame", [b"", b"\x00\x03\x00\x0e\x00\x00\x00\x01\xff\xff", b"\x00\x00\x00\x05\x00\x00\x00\x01\xff\xff"])
def test_metadata_request_refuses_short_or_foreign_frames(frame):
    with pytest.raises(DecodeError):
        decode_metadata_request(frame)
