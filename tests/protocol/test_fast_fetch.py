"""The follower's hand-rolled Fetch codecs against kio's generic codec: the request frame must be
byte-identical, the response must decode to the same fields, and a cut frame must fail."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sandbox.protocol import DecodeError, RequestHeader, build, decode_response, encode_request
from sandbox.protocol import encode_response, request_class, response_class
from test_fast import fetch_body, i32, i64, names  # the Fetch bodies the encoder is checked with, and its strategies

from sandbox.protocol.fast_fetch import (
    FETCH_DECODE_VERSIONS,
    FETCH_REQUEST_VERSIONS,
    FetchPartition,
    decode_fetch_response,
    encode_fetch_request,
)


fetch_partition = st.builds(FetchPartition, partition=i32, fetch_offset=i64, partition_max_bytes=i32,
                            current_leader_epoch=i32, log_start_offset=i64, last_fetched_epoch=i32)


@settings(max_examples=200, deadline=None)
@given(version=st.integers(*FETCH_REQUEST_VERSIONS), corr=i32, client_id=st.none() | names,
       replica=i32, wait=i32, min_bytes=i32, max_bytes=i32, isolation=st.sampled_from([0, 1]),
       session=i32, epoch=i32, rack=names,
       topics=st.dictionaries(names, st.lists(fetch_partition, max_size=3), max_size=3))
def test_fetch_request_matches_kio(version, corr, client_id, replica, wait, min_bytes, max_bytes, isolation,
                                   session, epoch, rack, topics):
    body = {"cluster_id": None, "replica_id": replica, "max_wait": wait, "min_bytes": min_bytes,
            "max_bytes": max_bytes, "isolation_level": isolation, "session_id": session,
            "session_epoch": epoch, "forgotten_topics_data": [], "rack_id": rack,
            "topics": [{"topic": t, "partitions": [p._asdict() for p in ps]} for t, ps in topics.items()]}
    expected = encode_request(RequestHeader(1, version, corr, client_id), build(request_class(1, version), body))
    got = encode_fetch_request(version, corr, client_id, replica_id=replica, max_wait_ms=wait,
                               min_bytes=min_bytes, max_bytes=max_bytes, topics=topics,
                               isolation_level=isolation, session_id=session, session_epoch=epoch,
                               rack_id=rack)
    assert got == expected


def _same(version: int, ours, theirs) -> None:
    assert len(ours.responses) == len(theirs.responses)
    if version >= 7:
        assert (ours.error_code, ours.session_id) == (int(theirs.error_code), theirs.session_id)
    for t, k in zip(ours.responses, theirs.responses):
        assert t.topic == k.topic and len(t.partitions) == len(k.partitions)
        for p, q in zip(t.partitions, k.partitions):
            assert (p.partition_index, p.error_code, p.high_watermark, p.last_stable_offset) == \
                (q.partition_index, int(q.error_code), q.high_watermark, q.last_stable_offset)
            if version >= 5:
                assert p.log_start_offset == q.log_start_offset
            if version >= 11:
                assert p.preferred_read_replica == q.preferred_read_replica
            assert (None if p.records is None else bytes(p.records)) == q.records
            if q.aborted_transactions is None:
                assert p.aborted_transactions is None
            else:
                assert [tuple(a) for a in p.aborted_transactions] == \
                    [(a.producer_id, a.first_offset) for a in q.aborted_transactions]


@settings(max_examples=200, deadline=None)
@given(version=st.integers(*FETCH_DECODE_VERSIONS), corr=i32, body=fetch_body)
def test_fetch_response_decodes_as_kio(version, corr, body):
    frame = encode_response(corr, build(response_class(1, version), body))[4:]
    got_corr, ours = decode_fetch_response(bytearray(frame), version)
    kio_corr, theirs = decode_response(frame, 1, version)
    assert got_corr == kio_corr == corr
    _same(version, ours, theirs)


def _sample_frame(version: int) -> bytes:
    part = {"partition_index": 3, "error_code": 0, "high_watermark": 10, "last_stable_offset": 10,
            "log_start_offset": 0, "preferred_read_replica": -1, "records": b"r" * 40,
            "aborted_transactions": [{"producer_id": 1, "first_offset": 2}]}
    body = {"throttle_time": 0, "error_code": 0, "session_id": 0,
            "responses": [{"topic": "t", "topic_id": None, "partitions": [part, dict(part, records=None)]}]}
    return encode_response(7, build(response_class(1, version), body))[4:]


@pytest.mark.parametrize("version", range(FETCH_DECODE_VERSIONS[0], FETCH_DECODE_VERSIONS[1] + 1))
def test_fetch_response_cut_short_fails(version):
    frame = _sample_frame(version)
    corr, resp = decode_fetch_response(frame, version)
    assert corr == 7 and bytes(resp.responses[0].partitions[0].records) == b"r" * 40
    for n in range(len(frame)):   # every strict prefix: never a partial answer
        with pytest.raises(DecodeError):
            decode_fetch_response(frame[:n], version)
    with pytest.raises(DecodeError):
        decode_fetch_response(frame + b"\x00", version)


def test_fetch_records_are_views_into_the_frame():
    frame = bytearray(_sample_frame(12))
    _corr, resp = decode_fetch_response(frame, 12)
    records = resp.responses[0].partitions[0].records
    assert isinstance(records, memoryview) and records.obj is frame


def test_versions_outside_the_range_are_refused():
    with pytest.raises(ValueError):
        decode_fetch_response(_sample_frame(12), 13)
    with pytest.raises(ValueError):
        encode_fetch_request(13, 1, None, replica_id=1, max_wait_ms=1, min_bytes=1, max_bytes=1, topics={})
