"""Partition reassignment on a real 3-broker cluster, driven by kafka-python's admin client (the
AlterPartitionReassignments / ListPartitionReassignments APIs kafka-reassign-partitions uses): a
partition moved off its only broker while an idempotent acks=all producer writes to it keeps
every acknowledged record, exactly once; the new replicas hold the same bytes and the broker it
left deletes its copy. A reassignment that cannot finish can be cancelled."""

from __future__ import annotations

import time

import pytest
from confluent_kafka.admin import NewTopic
from kafka import KafkaAdminClient
from kafka.structs import TopicPartition

from .kit import kcat, unique
from .replication_kit import Cluster, cluster3  # noqa: F401 - the fixture
from .test_replication import produce_through

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]


def create_on(cluster: Cluster, name: str, brokers: list[int]) -> None:
    admin = cluster.admin()
    fs = admin.create_topics([NewTopic(name, num_partitions=1, replica_assignment=[brokers])], request_timeout=15)
    fs[name].result(timeout=20)
    cluster.wait_in_sync(name, 1, timeout=30)


def kafka_admin(cluster: Cluster) -> KafkaAdminClient:
    return KafkaAdminClient(bootstrap_servers=cluster.bootstrap, request_timeout_ms=10000)


def test_a_partition_moved_off_its_broker_while_written_keeps_every_acknowledged_record(cluster3):
    c = cluster3
    name = unique("moved")
    create_on(c, name, [1])
    tp = TopicPartition(name, 0)
    ka = kafka_admin(c)
    answers: list = []
    try:
        acked, errors = produce_through(
            c, name, lambda: answers.append(ka.alter_partition_reassignments({tp: [2, 3]})),
            n=2000, per_s=400, fault_at_s=1.0)
        assert answers == [{tp: None}]
        c.wait_for(lambda: ka.list_partition_reassignments() == {}, 60, "the reassignment to finish")
    finally:
        ka.close()
    leader, replicas, isr = c.partition(name, 0)
    assert replicas == [2, 3] and sorted(isr) == [2, 3] and leader in (2, 3)
    assert errors == [] and len(acked) == 2000
    # the broker the partition left deletes its copy
    c.wait_for(lambda: not (c.data_dir(1) / f"{name}-0").exists(), 30, f"broker 1 to delete {name}-0")
    got = kcat("-b", c.bootstrap, "-C", "-t", name, "-o", "beginning", "-e", "-f", "%o %s\n", timeout=60).stdout.decode()
    values = [line.split(" ", 1)[1] for line in got.splitlines() if line]
    assert sorted(values) == sorted(v.decode() for v in acked) and len(values) == len(set(values))
    c.stop()
    end = c.log_end(2, name, 0)
    assert end == c.log_end(3, name, 0) >= 2000
    assert c.replica_batches(2, name, 0, end) == c.replica_batches(3, name, 0, end)


def test_a_reassignment_waiting_for_a_dead_broker_is_listed_and_can_be_cancelled(cluster3):
    c = cluster3
    name = unique("stuck")
    create_on(c, name, [1])
    c.kill(3)   # the broker asked to take a copy cannot fetch it
    # fenced, it leaves the metadata: kafka-python's admin cannot pick it (as the broker to ask
    # or as its controller, and it gives up on a request whose chosen broker is down)
    c.wait_for(lambda: c.metadata_brokers() == [1, 2], 30, "broker 3 to be fenced")
    ka = KafkaAdminClient(bootstrap_servers=f"127.0.0.1:{c.ports[1]},127.0.0.1:{c.ports[2]}",
                          request_timeout_ms=10000)
    tp = TopicPartition(name, 0)
    try:
        assert ka.alter_partition_reassignments({tp: [1, 3]}) == {tp: None}
        time.sleep(1.0)
        listed = ka.list_partition_reassignments()
        assert list(listed) == [tp]
        assert (listed[tp]["replicas"], listed[tp]["adding_replicas"], listed[tp]["removing_replicas"]) == \
            ([1, 3], [3], [])
        assert ka.alter_partition_reassignments({tp: None}) == {tp: None}
        assert ka.list_partition_reassignments() == {}
        leader, replicas, isr = c.partition(name, 0)
        assert (leader, replicas, isr) == (1, [1], [1])
    finally:
        ka.close()
