"""A consumer group rides through an outage of the metadata coordinator without a rebalance, on
a real 3-broker cluster: the coordinator process is frozen (SIGSTOP) for longer than the brokers'
coordinator session and the consumer's own session together. The brokers refuse the group's
heartbeats meanwhile (NOT_COORDINATOR: they cannot vouch for their metadata), and the group's
timers stand still, so when the coordinator is back the consumer keeps its partitions: one
assignment in all, none revoked, and it reads on from where it stood."""

from __future__ import annotations

import os
import signal
import time

import pytest
from confluent_kafka.admin import NewTopic
from kafka import ConsumerRebalanceListener, KafkaConsumer

from .kit import produce_all, producer, unique
from .replication_kit import SESSION_MS, cluster3  # noqa: F401 - the fixture

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

CONSUMER_SESSION_MS = 6000


def test_a_group_keeps_its_assignment_through_a_coordinator_outage(cluster3):
    cluster = cluster3
    topic, group = unique("t"), unique("g")
    admin = cluster.admin()
    admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=3)])[topic].result(timeout=20)
    cluster.wait_in_sync(topic, 2, timeout=30)
    produce_all(producer(cluster.bootstrap, acks="all"), topic, [(None, f"a{i}".encode()) for i in range(20)])

    events: list[str] = []

    class Listener(ConsumerRebalanceListener):
        def on_partitions_revoked(self, revoked):
            if revoked:
                events.append(f"revoke {len(revoked)}")

        def on_partitions_assigned(self, assigned):
            events.append(f"assign {len(assigned)}")

    # kafka-python, as Java's consumer: it keeps looking for its coordinator while heartbeats are
    # refused, and stays a member unless the coordinator expired it (librdkafka gives up by itself
    # after session.timeout.ms without an answer)
    c = KafkaConsumer(bootstrap_servers=cluster.bootstrap, group_id=group, auto_offset_reset="earliest",
                      enable_auto_commit=False, session_timeout_ms=CONSUMER_SESSION_MS, heartbeat_interval_ms=1000,
                      request_timeout_ms=30000)
    got: list[bytes] = []

    def poll_for(seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for records in c.poll(timeout_ms=200).values():
                got.extend(r.value for r in records)

    try:
        c.subscribe([topic], listener=Listener())
        deadline = time.monotonic() + 60
        while len(got) < 20 and time.monotonic() < deadline:
            poll_for(0.5)
        assert len(got) == 20 and events[-1:] == ["assign 2"], events
        before = list(events)   # kafka-python may join once before it knows the topic ("assign 0")
        # longer than the brokers' coordinator session plus the consumer's session, with margin
        outage = SESSION_MS / 1000 + CONSUMER_SESSION_MS / 1000 + 4
        os.kill(cluster.procs["coordinator"].pid, signal.SIGSTOP)
        try:
            poll_for(outage)
        finally:
            os.kill(cluster.procs["coordinator"].pid, signal.SIGCONT)
        poll_for(CONSUMER_SESSION_MS / 1000 + 4)   # long enough for an expired member to hear of it
        produce_all(producer(cluster.bootstrap, acks="all"), topic, [(None, f"b{i}".encode()) for i in range(20)])
        deadline = time.monotonic() + 60
        while len(got) < 40 and time.monotonic() < deadline:
            poll_for(0.5)
        after = list(events)   # close() revokes too (kafka-python, as Java, tells the listener)
    finally:
        c.close()
    assert after == before, f"the outage made the group rebalance: {after}"
    assert sorted(got) == sorted([f"a{i}".encode() for i in range(20)] + [f"b{i}".encode() for i in range(20)])
