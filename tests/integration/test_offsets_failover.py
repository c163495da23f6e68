"""Committed offsets survive losing the group coordinator, on a real 3-broker cluster: a
confluent-kafka group commits, the broker leading the group's `__consumer_offsets` partition is
SIGKILLed and stays down, FindCoordinator names a live broker, and a new consumer in the group
resumes exactly at the committed offsets (nothing committed read again, nothing skipped)."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import NewTopic

from sandbox.broker.offsets_records import partition_for

from .kit import consume_n, consumer, produce_all, producer, unique
from .replication_kit import Cluster, cluster3  # noqa: F401 - the fixture

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

OFFSETS = "__consumer_offsets"
PARTITIONS = 10


def coordinator_of(cluster: Cluster, group: str) -> int:
    """The group's coordinator as FindCoordinator names it (DescribeConsumerGroups asks it)."""
    admin = cluster.admin()   # kept alive until the answer is in
    desc = admin.describe_consumer_groups([group], request_timeout=10)[group].result(timeout=15)
    return desc.coordinator.id


def test_group_resumes_from_committed_offsets_after_its_coordinator_is_killed(cluster3):
    cluster = cluster3
    topic, group = unique("t"), unique("g")
    admin = cluster.admin()
    admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=3,
                                  config={"min.insync.replicas": "2"})])[topic].result(timeout=20)
    cluster.wait_in_sync(topic, 2, timeout=30)
    produce_all(producer(cluster.bootstrap, acks="all"), topic,
                [(str(i % 7).encode(), f"v{i}".encode()) for i in range(200)])

    first = consumer(cluster.bootstrap, group)
    try:
        first.subscribe([topic])
        got, deadline = [], time.monotonic() + 60
        while len(got) < 120 and time.monotonic() < deadline:   # one at a time: exactly 120
            got += [m for m in first.consume(num_messages=1, timeout=0.5) if m.error() is None]
        assert len(got) == 120
        first.commit(asynchronous=False)   # the positions after everything consumed
        committed = {tp.partition: max(tp.offset, 0) for tp in   # none yet (-1001): from 0 (earliest)
                     first.committed([TopicPartition(topic, 0), TopicPartition(topic, 1)], timeout=15)}
    finally:
        first.close()
    seen = {m.value() for m in got}
    assert sum(committed.values()) == len(seen) == len(got) == 120

    # the offsets topic: Kafka's partition count and 3 replicas, all in sync (commits waited for them)
    md = admin.list_topics(topic=OFFSETS, timeout=10).topics[OFFSETS]
    assert sorted(md.partitions) == list(range(PARTITIONS))
    assert all(len(p.replicas) == 3 for p in md.partitions.values())
    leader, replicas, isr = cluster.partition(OFFSETS, partition_for(group, PARTITIONS))
    assert coordinator_of(cluster, group) == leader and sorted(isr) == sorted(replicas)

    cluster.kill(leader)   # SIGKILL; it stays down
    live = set(cluster.ports) - {leader}
    cluster.wait_for(lambda: cluster.partition(OFFSETS, partition_for(group, PARTITIONS))[0] in live,
                     30, "a live broker leading the group's offsets partition")
    cluster.wait_for(lambda: coordinator_of(cluster, group) in live, 30, "FindCoordinator naming a live broker")

    second = consumer(cluster.bootstrap, group)
    try:
        second.subscribe([topic])
        rest = consume_n(second, 200 - len(seen), timeout=90, settle=3)
        values = [m.value() for m in rest]
        assert len(values) == 80
        assert not seen & set(values), "records whose offsets were committed were read again"
        assert len(values) == len(set(values)) and seen | set(values) == {f"v{i}".encode() for i in range(200)}
        for m in rest:   # resumed exactly at the committed offsets
            assert m.offset() >= committed[m.partition()]
        starts = {}
        for m in rest:
            starts[m.partition()] = min(starts.get(m.partition(), m.offset()), m.offset())
        assert all(starts[p] == committed[p] for p in starts), (starts, committed)
        # commits keep working on the new coordinator
        ends = {p: max(m.offset() for m in rest if m.partition() == p) + 1 for p in starts}
        deadline, failures = time.monotonic() + 60, []
        while True:
            try:
                second.commit(offsets=[TopicPartition(topic, p, o) for p, o in ends.items()], asynchronous=False)
                break
            except Exception as e:   # noqa: BLE001 - COORDINATOR_NOT_AVAILABLE until the ISR shrank
                failures.append(e)
                if time.monotonic() > deadline:
                    raise AssertionError(f"commits fail: {failures[:3]} ... {failures[-1]}") from e
                time.sleep(0.5)
    finally:
        second.close()
    offsets = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)])[group].result(timeout=15)
    assert sum(tp.offset for tp in offsets.topic_partitions if tp.topic == topic) == 200
