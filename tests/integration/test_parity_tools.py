"""Parity with Apache Kafka 4.x, continued (issue 13): the APIs tools call that the first batch
(test_parity.py) left out, each through a real client: DescribeTopicPartitions, DescribeQuorum,
DescribeProducers, client quotas, features, telemetry and `__consumer_offsets` in Metadata."""

from __future__ import annotations

import pytest

from helpers import BrokerProcess

from .kit import create_topic, unique, wait_until

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


# ---- DescribeQuorum (55): the coordinator describes itself; brokers forward -----------------------

@pytest.fixture(scope="module")
def split_stack(tmp_path_factory):
    """A separate coordinator process and one broker that follows it."""
    from coordinator.server_helpers import CoordinatorProcess
    root = tmp_path_factory.mktemp("split")
    coord = CoordinatorProcess(root / "coordinator", log_path=root / "coordinator.log").start()
    b = BrokerProcess(root / "broker", log_path=root / "broker.stderr", coordinator=f"127.0.0.1:{coord.port}")
    try:
        b.start()
        yield coord, b
    finally:
        b.stop()
        coord.stop()


def test_describe_quorum_through_a_broker_is_answered_by_the_coordinator(split_stack):
    from kafka import KafkaAdminClient
    coord, b = split_stack
    create_topic(b.bootstrap, unique("quorum"), partitions=2)
    kp = KafkaAdminClient(bootstrap_servers=b.bootstrap, request_timeout_ms=10000)
    try:
        def described():
            q = kp.describe_metadata_quorum()["topics"][0]["partitions"][0]
            return q if q["observers"] and q["observers"][0]["log_end_offset"] == q["high_watermark"] else None
        q = wait_until(described, 10, 0.2, "the broker as an up-to-date observer")
        nodes = kp.describe_metadata_quorum()["nodes"]
    finally:
        kp.close()
    assert q["error"] is None and q["leader_id"] == 0 and q["leader_epoch"] == 1
    assert q["high_watermark"] > 0   # the coordinator's metadata offset: registration, topic, partitions
    assert [(v["replica_id"], v["log_end_offset"]) for v in q["current_voters"]] == [(0, q["high_watermark"])]
    assert [o["replica_id"] for o in q["observers"]] == [1]
    assert [(n["node_id"], [(li["host"], li["port"]) for li in n["listeners"]]) for n in nodes] == [
        (0, [("127.0.0.1", coord.port)])]


def test_describe_quorum_of_a_combined_broker_names_itself(shared_broker, kp):
    q = kp.describe_metadata_quorum()["topics"][0]["partitions"][0]
    assert q["error"] is None and q["leader_id"] == 1
    assert [v["replica_id"] for v in q["current_voters"]] == [1] and q["observers"] == []
    assert q["current_voters"][0]["log_end_offset"] == q["high_watermark"] > 0


# ---- DescribeProducers (61): the idempotent producers of each partition ----------------------------

def test_describe_producers_lists_idempotent_producers(shared_broker, kp):
    import time
    from kafka import TopicPartition
    from kafka.errors import UnknownTopicOrPartitionError
    from .kit import producer
    name = unique("producers")
    create_topic(shared_broker.bootstrap, name, partitions=2)
    before = int(time.time() * 1000)
    p = producer(shared_broker.bootstrap, **{"enable.idempotence": True, "linger.ms": 0})
    for i in range(3):
        p.produce(name, b"v%d" % i, partition=0)
        assert p.flush(20) == 0   # one batch per record: sequences 0, 1, 2
    states = kp.describe_producers([TopicPartition(name, 0), TopicPartition(name, 1)])
    (only,) = states[TopicPartition(name, 0)].active_producers
    assert only.producer_id >= 0 and only.producer_epoch == 0 and only.last_sequence == 2
    assert before - 1000 <= only.last_timestamp <= int(time.time() * 1000) + 1000
    assert only.coordinator_epoch == -1 and only.current_transaction_start_offset == -1
    assert states[TopicPartition(name, 1)].active_producers == []
    with pytest.raises(UnknownTopicOrPartitionError):
        kp.describe_producers([TopicPartition(name, 7)], broker_id=1)
