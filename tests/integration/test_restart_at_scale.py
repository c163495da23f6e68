"""Every broker of a 3-broker cluster restarted at once (what `sandbox down` then `sandbox up`
does) with 750 replicated partitions: each leader rejoins hundreds of followers to its ISRs.
Those ISR changes go to the coordinator together, and the heartbeats have a connection of their
own, so no broker misses its session (before: the heartbeats queued behind one AlterPartition
per partition, healthy brokers were fenced, leaderships flapped for two minutes and librdkafka's
own suite lost records). The wait below is bounded; no duration is asserted."""

from __future__ import annotations

import signal

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import NewTopic

from .replication_kit import Cluster

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

TOPICS = 250


def test_restarting_every_broker_at_once_fences_none_and_fills_every_isr(tmp_path):
    # the default 9 s sessions: with the kit's 4 s ones, a broker opening its 750 partition logs
    # on a loaded machine (3.8 s in one CI run, no heartbeat meanwhile) was fenced once at start
    c = Cluster(tmp_path / "cluster", brokers=3, session_ms=9000)

    def isr_counts() -> tuple[int, int]:
        md = c.admin().list_topics(timeout=10)
        parts = [p for name, t in md.topics.items() if name.startswith("s") for p in t.partitions.values()]
        return sum(len(p.isrs) == 3 and p.leader >= 0 for p in parts), len(parts)

    try:
        c.start()
        admin = c.admin()
        for first in range(0, TOPICS, 25):
            futures = admin.create_topics([NewTopic(f"s{i}", 3, 3) for i in range(first, first + 25)],
                                          request_timeout=60)
            for f in futures.values():
                f.result(60)
        p = Producer({"bootstrap.servers": c.bootstrap, "linger.ms": 5, "acks": "all"})
        for i in range(TOPICS):
            for k in range(3):
                p.produce(f"s{i}", b"x" * 100, partition=k)
        assert p.flush(60) == 0
        c.wait_for(lambda: isr_counts() == (3 * TOPICS, 3 * TOPICS), 120, "every ISR full before the restart")
        for n in (1, 2, 3):
            proc = c.procs.pop(f"broker-{n}")
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
        for n in (1, 2, 3):
            c.start_broker(n, wait=False)
        c.wait_for(lambda: isr_counts() == (3 * TOPICS, 3 * TOPICS), 180, "every ISR full after the restart")
        fenced = [line for line in c.log_text("coordinator").splitlines() if "missed its session" in line]
        assert fenced == []
    finally:
        c.stop()
