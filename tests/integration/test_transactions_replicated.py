"""Transactions on a real 3-broker cluster: one transaction spans partitions led by every broker
(markers travel to the other leaders by WriteTxnMarkers), the transaction state is replicated, and
when the broker coordinating the transactional id is SIGKILLed with a transaction open, another
broker takes over its `__transaction_state` partition: the same producer commits the next
transactions, and read_committed shows every committed one whole and nothing of the aborted one."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import Consumer, TopicPartition

from sandbox.broker.offsets_records import partition_for

from .kit import producer, unique
from .replication_kit import Cluster, cluster3  # noqa: F401 - the fixture

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

TXN_TOPIC = "__transaction_state"


def read_committed(cluster: Cluster, topic: str, partitions: int, isolation: str = "read_committed") -> list[bytes]:
    c = Consumer({"bootstrap.servers": cluster.bootstrap, "group.id": unique("r"), "enable.partition.eof": True,
                  "isolation.level": isolation, "enable.auto.commit": False, "fetch.wait.max.ms": 100})
    c.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    out, ends = [], set()
    deadline = time.monotonic() + 60
    try:
        while len(ends) < partitions:
            assert time.monotonic() < deadline, f"only partitions {sorted(ends)} reached their end"
            m = c.poll(0.5)
            if m is None:
                continue
            if m.error():
                if m.error().code() == m.error()._PARTITION_EOF:
                    ends.add(m.partition())
                continue
            out.append(m.value())
    finally:
        c.close()
    return out


def test_a_transaction_over_three_leaders_survives_losing_its_coordinator(cluster3):
    cluster = cluster3
    topic = unique("rtx")
    admin = cluster.admin()
    # partition i led by broker i+1: markers go to all three
    from kafka.admin import KafkaAdminClient, NewTopic as KNewTopic
    ka = KafkaAdminClient(bootstrap_servers=cluster.bootstrap, request_timeout_ms=15000)
    try:
        ka.create_topics([KNewTopic(topic, -1, -1, replica_assignments={0: [1, 2, 3], 1: [2, 3, 1], 2: [3, 1, 2]},
                                    topic_configs={"min.insync.replicas": "2"})])
    finally:
        ka.close()
    cluster.wait_in_sync(topic, 3, timeout=30)
    assert [cluster.partition(topic, i)[0] for i in range(3)] == [1, 2, 3]
    txn_id = unique("rtx-id")
    p = producer(cluster.bootstrap, **{"transactional.id": txn_id, "transaction.timeout.ms": 60000,
                                       "acks": "all"})
    p.init_transactions(60)
    committed: list[bytes] = []

    def transaction(tag: str, commit: bool) -> None:
        p.begin_transaction()
        values = [f"{tag}-{i}".encode() for i in range(3)]
        for i, v in enumerate(values):
            p.produce(topic, value=v, partition=i)
        assert p.flush(30) == 0
        if commit:
            p.commit_transaction(60)
            committed.extend(values)
        else:
            p.abort_transaction(60)

    transaction("first", True)
    transaction("second", False)
    state_md = admin.list_topics(topic=TXN_TOPIC, timeout=10).topics[TXN_TOPIC]
    assert len(state_md.partitions) == 10 and all(len(x.replicas) == 3 for x in state_md.partitions.values())
    coordinator = cluster.partition(TXN_TOPIC, partition_for(txn_id, 10))[0]

    # an open transaction when its coordinator dies: the producer carries on with the new one
    p.begin_transaction()
    for i in range(3):
        p.produce(topic, value=f"open-{i}".encode(), partition=i)
    assert p.flush(30) == 0
    cluster.kill(coordinator)
    live = set(cluster.ports) - {coordinator}
    cluster.wait_for(lambda: cluster.partition(TXN_TOPIC, partition_for(txn_id, 10))[0] in live, 30,
                     "a live broker leading the transactional id's partition")
    cluster.wait_for(lambda: all(cluster.partition(topic, i)[0] in live for i in range(3)), 30,
                     "every partition led by a live broker")
    p.commit_transaction(90)
    committed.extend(f"open-{i}".encode() for i in range(3))
    transaction("after", True)

    assert sorted(read_committed(cluster, topic, 3)) == sorted(committed)
    every = read_committed(cluster, topic, 3, "read_uncommitted")
    assert sorted(every) == sorted(committed + [f"second-{i}".encode() for i in range(3)])
