"""A broker that is stopped (SIGTERM: `sandbox down`, a restart, `docker stop`) hands its
leaderships over before it stops serving, as Kafka's controlled shutdown does, on a real
3-broker cluster: the coordinator moves them while the broker still answers, so clients are told
NOT_LEADER_OR_FOLLOWER and go to the new leader instead of meeting a closed port and metadata
that still names it. An idempotent acks=all producer writing through the stop loses nothing and
writes nothing twice."""

from __future__ import annotations

import signal
import threading
import time

import pytest
from confluent_kafka.admin import NewTopic

from .kit import consume_n, consumer, producer, unique
from .replication_kit import cluster3  # noqa: F401 - the fixture

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]


def test_a_stopped_broker_hands_its_leaderships_over_first(cluster3):
    cluster = cluster3
    topic = unique("t")
    admin = cluster.admin()
    admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=3,
                                  config={"min.insync.replicas": "2"})])[topic].result(timeout=20)
    cluster.wait_in_sync(topic, 3, timeout=30)
    led = [i for i in range(3) if cluster.partition(topic, i)[0] == 1]
    assert led, "broker 1 leads one of the three partitions (placement spreads them)"

    p = producer(cluster.bootstrap, acks="all", **{"enable.idempotence": True})
    acked, failed, stop = [], [], threading.Event()

    def on_delivery(err, msg):
        (failed if err is not None else acked).append(msg.value() if err is None else err)

    def write():
        i = 0
        deadline = time.monotonic() + 60
        while not stop.is_set() and time.monotonic() < deadline and i < 20000:
            p.produce(topic, f"v{i}".encode(), on_delivery=on_delivery)
            p.poll(0)
            i += 1
            time.sleep(0.002)

    writer = threading.Thread(target=write)
    writer.start()
    try:
        time.sleep(1.0)
        proc = cluster.procs.pop("broker-1")
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)
        time.sleep(1.0)
    finally:
        stop.set()
        writer.join(30)
        p.flush(30)
    log = cluster.log_text("broker-1")
    assert "controlled shutdown: leaderships handed over" in log, log[-2000:]
    assert all(cluster.partition(topic, i)[0] in (2, 3) for i in range(3))
    assert not failed, failed[:3]
    c = consumer(cluster.bootstrap, unique("g"))
    try:
        c.subscribe([topic])
        got = [m.value() for m in consume_n(c, len(acked), timeout=60, settle=2)]
    finally:
        c.close()
    assert sorted(got) == sorted(acked) and len(set(got)) == len(got)
