"""Parity with Apache Kafka 4.x, continued (issue 13): the APIs tools call that the first batch
(test_parity.py) left out, each through a real client: DescribeTopicPartitions, DescribeQuorum,
DescribeProducers, client quotas, features, telemetry and `__consumer_offsets` in Metadata."""

from __future__ import annotations

import pytest

from helpers import BrokerProcess

from .kit import create_topic, unique

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


@pytest.fixture(scope="module")
def shared_broker(tmp_path_factory):
    root = tmp_path_factory.mktemp("parity-tools")
    b = BrokerProcess(root / "data", log_path=root / "broker.stderr").start()
    yield b
    b.stop()


@pytest.fixture
def kp(shared_broker):
    from kafka import KafkaAdminClient
    client = KafkaAdminClient(bootstrap_servers=shared_broker.bootstrap, request_timeout_ms=10000)
    yield client
    client.close()


# ---- DescribeTopicPartitions (75): Kafka 4's kafka-topics --describe ------------------------------

def test_describe_topic_partitions_pages_with_a_cursor(shared_broker, kp):
    a, b = unique("dtp-a"), unique("dtp-b")
    create_topic(shared_broker.bootstrap, a, partitions=3)
    create_topic(shared_broker.bootstrap, b, partitions=2)
    pages, cursor = [], None
    for _ in range(5):
        page = kp.describe_topic_partitions([b, a], response_partition_limit=2, cursor=cursor)
        pages.append([(t["name"], [p["partition_index"] for p in t["partitions"]]) for t in page["topics"]])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == [[(a, [0, 1])], [(a, [2]), (b, [0])], [(b, [1])]]
    page = kp.describe_topic_partitions([a])
    topic = page["topics"][0]
    assert page["next_cursor"] is None and topic["error_code"] == 0 and topic["is_internal"] is False
    assert all(p["leader_id"] == 1 and p["replica_nodes"] == [1] and p["isr_nodes"] == [1]
               and p["offline_replicas"] == [] for p in topic["partitions"])
    missing = unique("dtp-missing")
    assert [(t["name"], t["error_code"]) for t in kp.describe_topic_partitions([missing, a])["topics"]] == [
        (a, 0), (missing, 3)]   # sorted by name: UNKNOWN_TOPIC_OR_PARTITION for the missing one
    # every topic when none is named; a cursor naming a topic that is not asked for is INVALID_REQUEST
    everything = kp.describe_topic_partitions([])
    assert {a, b} <= {t["name"] for t in everything["topics"]}
    bad = kp.describe_topic_partitions([a], cursor={"topic_name": b, "partition_index": 0})
    assert [t["error_code"] for t in bad["topics"]] == [42]
