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
