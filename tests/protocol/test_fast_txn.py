"""The hand-rolled AddPartitionsToTxn and EndTxn response encoders must be byte-identical to
kio's for every version the handlers answer."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from sandbox.broker.handlers import REGISTRY
from sandbox.protocol import build, encode_response, response_class
from sandbox.protocol.fast_txn import encode_add_partitions_response, encode_end_txn_response

i32 = st.integers(-(2**31), 2**31 - 1)
errors = st.sampled_from([0, 3, 47, 48, 49, 51, 53, 90])
names = st.text(min_size=1, max_size=12)
partitions = st.fixed_dictionaries({"partition_index": st.integers(0, 2**31 - 1), "partition_error_code": errors})
add_bodies = st.fixed_dictionaries({
    "throttle_time": st.integers(0, 2**31 - 1),
    "results_by_topic_v3_and_below": st.lists(st.fixed_dictionaries({
        "name": names, "results_by_partition": st.lists(partitions, max_size=4)}), max_size=3)})
end_bodies = st.fixed_dictionaries({"throttle_time": st.integers(0, 2**31 - 1), "error_code": errors,
                                    "producer_id": st.integers(-1, 2**63 - 1),
                                    "producer_epoch": st.integers(-1, 2**15 - 1)})


def test_the_handlers_use_them_for_every_version():
    for key in (24, 26):
        h = REGISTRY.handlers[key]
        assert h.fast is not None and h.fast.min_version <= h.min_version and h.max_version <= h.fast.max_version


@settings(max_examples=200, deadline=None)
@given(version=st.integers(0, 3), body=add_bodies, corr=i32)
def test_add_partitions_response_is_byte_identical_to_kio(version, body, corr):
    expected = encode_response(corr, build(response_class(24, version), body))
    assert encode_add_partitions_response(corr, version, body) == bytes(expected)


@settings(max_examples=30, deadline=None)
@given(version=st.integers(4, 5), corr=i32, code=errors)
def test_the_batched_add_partitions_response_goes_through_kio(version, corr, code):
    body = {"throttle_time": 0, "error_code": code, "results_by_transaction": [
        {"transactional_id": "tx", "topic_results": [
            {"name": "t", "results_by_partition": [{"partition_index": 1, "partition_error_code": code}]}]}]}
    expected = encode_response(corr, build(response_class(24, version), body))
    assert encode_add_partitions_response(corr, version, body) == bytes(expected)


@settings(max_examples=200, deadline=None)
@given(version=st.integers(0, 5), body=end_bodies, corr=i32)
def test_end_txn_response_is_byte_identical_to_kio(version, body, corr):
    if version < 5:
        body = {k: v for k, v in body.items() if k not in ("producer_id", "producer_epoch")}
    expected = encode_response(corr, build(response_class(26, version), body))
    assert encode_end_txn_response(corr, version, body) == bytes(expected)
