"""Framing and codec: round trips, header versions, and fuzzed frames that must never crash."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kio.schema.api_versions.v3.request import ApiVersionsRequest
from kio.schema.metadata.v12.request import MetadataRequest, MetadataRequestTopic
from kio.schema.produce.v9.request import PartitionProduceData, ProduceRequest, TopicProduceData

from sandbox.protocol import (
    DecodeError,
    FrameBuffer,
    FrameError,
    RequestHeader,
    build,
    decode_request,
    decode_response,
    encode_request,
    encode_response,
    frame,
    response_class,
)


def test_frames_split_across_feeds_and_joined():
    a, b = frame(b"hello"), frame(b"world!")
    fb = FrameBuffer()
    stream = a + b
    got = []
    for i in range(len(stream)):
        got += fb.feed(stream[i : i + 1])
    assert got == [b"hello", b"world!"]
    assert fb.pending == 0


def test_oversized_and_negative_frames_are_refused():
    fb = FrameBuffer(max_frame=1024)
    with pytest.raises(FrameError):
        fb.feed(struct.pack(">i", 1025))
    with pytest.raises(FrameError):
        FrameBuffer().feed(struct.pack(">i", -5))


def test_request_round_trip_flexible_and_legacy_headers():
    req = MetadataRequest(topics=(MetadataRequestTopic(topic_id=None, name="orders"),),
                          allow_auto_topic_creation=False, include_topic_authorized_operations=False)
    raw = encode_request(RequestHeader(3, 12, 42, "cli"), req)
    header, body = decode_request(raw[4:])
    assert header == RequestHeader(3, 12, 42, "cli")
    assert body == req
    v3 = ApiVersionsRequest(client_software_name="x", client_software_version="1")
    header, body = decode_request(encode_request(RequestHeader(18, 3, 7, None), v3)[4:])
    assert header.client_id is None and body == v3


def test_produce_records_stay_opaque_bytes():
    records = b"\x00" * 70
    req = ProduceRequest(transactional_id=None, acks=1, timeout=__import__("datetime").timedelta(seconds=1),
                         topic_data=(TopicProduceData(name="t", partition_data=(
                             PartitionProduceData(index=0, records=records),)),))
    _, body = decode_request(encode_request(RequestHeader(0, 9, 1, "p"), req)[4:])
    assert body.topic_data[0].partition_data[0].records == records


def test_api_versions_response_uses_header_v0_even_when_flexible():
    cls = response_class(18, 3)
    body = build(cls, {"error_code": 0, "api_keys": [{"api_key": 0, "min_version": 3, "max_version": 9}]})
    raw = encode_response(5, body)
    assert struct.unpack_from(">i", raw, 4)[0] == 5
    # header v0: the error code follows the correlation id directly (no tagged-field byte)
    assert struct.unpack_from(">h", raw, 8)[0] == 0
    corr, decoded = decode_response(raw[4:], 18, 3)
    assert corr == 5 and decoded.api_keys[0].max_version == 9


def test_build_drops_fields_an_old_version_lacks_and_converts_types():
    body = build(response_class(0, 3), {"responses": [{"name": "t", "partition_responses": [
        {"index": 0, "error_code": 2, "base_offset": 7, "log_append_time": -1, "log_start_offset": 0,
         "record_errors": [], "error_message": "x"}]}], "throttle_time": 0})
    p = body.responses[0].partition_responses[0]
    assert int(p.error_code) == 2 and p.base_offset == 7
    assert not hasattr(p, "log_start_offset")


def test_truncated_request_is_a_decode_error():
    raw = encode_request(RequestHeader(3, 12, 1, "c"), MetadataRequest(
        topics=(MetadataRequestTopic(topic_id=None, name="orders"),),
        allow_auto_topic_creation=True, include_topic_authorized_operations=False))[4:]
    for cut in range(len(raw)):
        with pytest.raises(DecodeError):   # every strict prefix is refused, none decodes by luck
            decode_request(raw[:cut])


KNOWN = [(0, 9), (1, 12), (2, 7), (3, 12), (8, 8), (9, 7), (11, 7), (14, 5), (18, 3), (19, 7), (32, 4)]


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(KNOWN), st.integers(-1, 2**31 - 1), st.binary(max_size=300))
def test_random_bodies_never_raise_anything_but_decode_error(kv, corr, tail):
    key, ver = kv
    raw = struct.pack(">hhi", key, ver, corr) + tail
    try:
        decode_request(raw)
    except DecodeError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_mutated_valid_frames_never_raise_anything_but_decode_error(data):
    req = MetadataRequest(topics=(MetadataRequestTopic(topic_id=None, name="orders"),),
                          allow_auto_topic_creation=True, include_topic_authorized_operations=False)
    raw = bytearray(encode_request(RequestHeader(3, 12, 9, "fuzz"), req)[4:])
    for _ in range(data.draw(st.integers(1, 6))):
        i = data.draw(st.integers(0, len(raw) - 1))
        raw[i] = data.draw(st.integers(0, 255))
    try:
        decode_request(bytes(raw))
    except DecodeError:
        pass


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=64), max_size=8), st.integers(1, 17))
def test_frame_buffer_reassembles_any_chunking(bodies, chunk):
    stream = b"".join(frame(b) for b in bodies)
    fb = FrameBuffer()
    got = []
    for i in range(0, len(stream), chunk):
        got += fb.feed(stream[i : i + chunk])
    assert got == bodies
