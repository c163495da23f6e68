"""A Fetch whose partition gets an error is answered at once, as Kafka's ReplicaManager answers it
(errorReadingData), not after the long poll: found by review, an out-of-range offset, a partition
not led here or a leader epoch that does not match came back only after the client's whole
fetch.wait.max.ms (librdkafka and Java: 500 ms), every round, holding back offset resets and
failovers. The long poll is 30 s here, so an answer within 10 s can only be the immediate one."""

from __future__ import annotations

import time

import pytest

from test_handlers_inprocess import broker  # noqa: F401  (the fixture)
from sandbox.protocol import errors as E
from sandbox.protocol.records import encode_batch

LONG_POLL_MS = 30_000


def fetch(b, partition: int, offset: int, epoch: int = -1, topic: str = "t"):
    started = time.monotonic()
    resp = b.call(1, 12, {"replica_id": -1, "max_wait": LONG_POLL_MS, "min_bytes": 1, "max_bytes": 1 << 20,
                          "isolation_level": 0, "session_id": 0, "session_epoch": -1, "rack_id": "",
                          "forgotten_topics_data": [], "topics": [{"topic": topic, "partitions": [
                              {"partition": partition, "current_leader_epoch": epoch, "fetch_offset": offset,
                               "partition_max_bytes": 1 << 20}]}]})
    return int(resp.responses[0].partitions[0].error_code), time.monotonic() - started


@pytest.mark.parametrize("partition, offset, epoch, code", [
    (0, 100, -1, E.OFFSET_OUT_OF_RANGE),           # past the log end: the consumer resets its offset
    (7, 0, -1, E.UNKNOWN_TOPIC_OR_PARTITION),      # no such partition
    (0, 0, 7, E.UNKNOWN_LEADER_EPOCH),             # the consumer's metadata is newer than this broker's
])
def test_a_partition_error_is_answered_at_once(broker, partition, offset, epoch, code):  # noqa: F811
    broker.create_topic("t", 1)
    broker.call(0, 9, {"transactional_id": None, "acks": -1, "timeout": 5000, "topic_data": [
        {"name": "t", "partition_data": [{"index": 0, "records": encode_batch(0, [b"a", b"b"])}]}]})
    got, took = fetch(broker, partition, offset, epoch)
    assert got == code
    assert took < 10, f"error {code} answered after {took:.1f} s, the long poll's end"
