"""[sandbox] partitions is Kafka's num.partitions: the coordinator started with it
(`--default-partitions`, which `sandbox up` passes) gives an auto-created topic, and one created
with num_partitions = -1, that many partitions; DescribeConfigs of a broker shows it."""

from __future__ import annotations

import pytest
from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka.admin import ConfigResource, NewTopic

from .kit import unique
from .replication_kit import Cluster

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def test_topics_created_without_a_count_get_the_stack_default(tmp_path):
    # what `sandbox up` passes with [sandbox] partitions = 4 (tests/test_config_replication.py)
    c = Cluster(tmp_path / "cluster", brokers=1, coordinator_options=["--default-partitions", "4"],
                broker_options=["num.partitions=4"])
    try:
        c.start()
        auto = unique("auto")
        p = Producer({"bootstrap.servers": c.bootstrap})
        p.produce(auto, b"x")
        assert p.flush(20) == 0
        asked = unique("asked")
        admin = c.admin()
        admin.create_topics([NewTopic(asked)], request_timeout=15)[asked].result(timeout=20)
        md = admin.list_topics(timeout=5).topics
        assert len(md[auto].partitions) == 4 and len(md[asked].partitions) == 4
        res = ConfigResource(ConfigResource.Type.BROKER, "1")
        configs = admin.describe_configs([res])[res].result(timeout=20)
        assert configs["num.partitions"].value == "4"
    finally:
        c.stop()


def test_a_topic_auto_created_while_too_few_brokers_are_up_waits_for_them(tmp_path):
    """Kafka answers an auto-creation it cannot make yet (the default replication factor needs
    more brokers than are registered) with LEADER_NOT_AVAILABLE, so the producer keeps asking;
    an "invalid topic" answer would fail its records at once (librdkafka's own suite, 0012, lost
    its records so while a broker was fenced)."""
    c = Cluster(tmp_path / "cluster", brokers=2, coordinator_options=["--default-replication-factor", "2"])
    try:
        c.start()
        c.kill(2)
        c.wait_for(lambda: c.metadata_brokers() == [1], 30, "broker 2 fenced")
        t = unique("early")
        results: list = []
        p = Producer({"bootstrap.servers": c.bootstrap, "message.timeout.ms": 60_000,
                      "topic.metadata.refresh.interval.ms": 500})
        p.produce(t, b"kept", on_delivery=lambda err, msg: results.append(err))
        p.flush(4)   # about eight metadata rounds without the topic: no record may fail meanwhile
        assert results == [] and len(p) == 1, results
        assert t not in c.admin().list_topics(timeout=5).topics
        c.start_broker(2)
        assert p.flush(45) == 0
        assert results == [None]
        leader, replicas, isr = c.partition(t, 0)
        assert sorted(replicas) == [1, 2] and leader in (1, 2)
        # a name no topic can have is still refused at once
        bad: list = []
        try:
            p.produce("no spaces allowed", b"x", on_delivery=lambda err, msg: bad.append(err))
        except KafkaException as e:   # librdkafka may refuse it in produce() itself (seen once in CI)
            bad.append(e.args[0])
        p.flush(20)
        assert len(bad) == 1 and bad[0] is not None, bad
        assert bad[0].code() in (KafkaError.TOPIC_EXCEPTION, KafkaError._UNKNOWN_TOPIC), bad
    finally:
        c.stop()


def test_a_paused_coordinator_does_not_hold_writes_to_topics_that_exist(tmp_path):
    """A producer asks for a new topic while the coordinator is frozen (SIGSTOP: the request to
    create it hangs until the coordinator's 5 s timeout). Kafka's brokers answer Metadata at once
    and create in the background; ours waited for the coordinator, and every request behind that
    Metadata on the producer's connection waited with it. Now each of 40 records to an existing
    topic is delivered while the coordinator is still frozen, and the new topic is made once it
    is back."""
    import os
    import signal
    import time
    c = Cluster(tmp_path / "cluster", brokers=2, session_ms=30000)
    try:
        c.start()
        admin = c.admin()
        admin.create_topics([NewTopic("there", 2, 2)], request_timeout=15)["there"].result(20)
        c.wait_in_sync("there", 2)
        p = Producer({"bootstrap.servers": c.bootstrap, "linger.ms": 0, "acks": "all",
                      "message.timeout.ms": 60_000})
        p.produce("there", b"warm-up", partition=0)
        assert p.flush(15) == 0
        done: list = []
        coordinator = c.procs["coordinator"].pid
        os.kill(coordinator, signal.SIGSTOP)
        try:
            p.produce("new-while-frozen", b"n", on_delivery=lambda err, msg: None)
            for i in range(40):
                p.produce("there", b"e%d" % i, partition=i % 2, on_delivery=lambda err, msg: done.append(err))
                p.poll(0.05)
            deadline = time.monotonic() + 10   # two of the coordinator's 5 s timeouts
            while len(done) < 40 and time.monotonic() < deadline:
                p.poll(0.1)
            delivered_while_frozen = list(done)
        finally:
            os.kill(coordinator, signal.SIGCONT)
        assert len(delivered_while_frozen) == 40 and not any(delivered_while_frozen), delivered_while_frozen
        assert p.flush(45) == 0
        assert "new-while-frozen" in admin.list_topics(timeout=5).topics
    finally:
        c.stop()
