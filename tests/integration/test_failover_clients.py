"""The failover of test_replication.py, ridden by the other client libraries' idempotent producers:
kafka-python's and aiokafka's, acks=all, writing while the leader of their partition is SIGKILLed
and started again (or paused past its session). Each retries on its own rules (NOT_LEADER, a
connection lost mid-request, a sequence the new leader must recognise as a duplicate); afterwards
every acknowledged record is read exactly once and every replica holds the same bytes."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from .replication_kit import Cluster, cluster3  # noqa: F401 - the fixture
from .test_replication import check_every_ack_once, check_replicas_identical, create, leader_of, read_all
from .kit import unique

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

N, PER_S, FAULT_AT_S = 1500, 250, 1.0


def kill_and_restart(cluster: Cluster, victim: int):
    def fault():
        cluster.kill(victim)
        time.sleep(3)
        cluster.start_broker(victim)
    return fault


def pause_past_session(cluster: Cluster, victim: int):
    def fault():
        cluster.pause(victim)
        time.sleep(cluster.session_ms / 1000 + 3)
        cluster.resume(victim)
    return fault


def kafka_python_through(cluster: Cluster, topic: str, fault) -> tuple[dict, list]:
    from kafka import KafkaProducer

    acked: dict[bytes, tuple[int, int]] = {}
    errors: list = []
    p = KafkaProducer(bootstrap_servers=cluster.bootstrap.split(","), enable_idempotence=True, acks="all",
                      linger_ms=5, retry_backoff_ms=100, request_timeout_ms=5000, delivery_timeout_ms=90000,
                      metadata_max_age_ms=1000, max_in_flight_requests_per_connection=5)
    t = threading.Timer(FAULT_AT_S, fault)
    t.start()
    start = time.monotonic()
    try:
        for i in range(N):
            value = f"k{i}".encode()
            fut = p.send(topic, key=str(i % 7).encode(), value=value)
            fut.add_callback(lambda md, v=value: acked.__setitem__(v, (md.partition, md.offset)))
            fut.add_errback(errors.append)
            ahead = start + i / PER_S - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)
        p.flush(120)
    finally:
        t.join(60)
        p.close(10)
    return acked, errors


def aiokafka_through(cluster: Cluster, topic: str, fault) -> tuple[dict, list]:
    from aiokafka import AIOKafkaProducer

    acked: dict[bytes, tuple[int, int]] = {}
    errors: list = []

    async def run() -> None:
        p = AIOKafkaProducer(bootstrap_servers=cluster.bootstrap, enable_idempotence=True, acks="all",
                             linger_ms=5, retry_backoff_ms=100, request_timeout_ms=5000, metadata_max_age_ms=1000)
        await p.start()
        try:
            loop = asyncio.get_running_loop()
            start = loop.time()
            pending = []
            for i in range(N):
                value = f"a{i}".encode()
                fut = await p.send(topic, key=str(i % 7).encode(), value=value)

                def done(f, v=value):
                    if f.exception() is not None:
                        errors.append(f.exception())
                    else:
                        acked[v] = (f.result().partition, f.result().offset)
                fut.add_done_callback(done)
                pending.append(fut)
                ahead = start + i / PER_S - loop.time()
                if ahead > 0:
                    await asyncio.sleep(ahead)
            await asyncio.wait_for(asyncio.gather(*pending, return_exceptions=True), 120)
        finally:
            await p.stop()

    t = threading.Timer(FAULT_AT_S, fault)
    t.start()
    try:
        asyncio.run(run())
    finally:
        t.join(60)
    return acked, errors


CLIENTS = {"kafka-python": kafka_python_through, "aiokafka": aiokafka_through}
FAULTS = {"killed": kill_and_restart, "paused": pause_past_session}


@pytest.mark.parametrize("fault_name", sorted(FAULTS))
@pytest.mark.parametrize("client", sorted(CLIENTS))
def test_an_idempotent_producer_of_another_library_rides_through_a_failover(cluster3, client, fault_name):  # noqa: F811
    cluster = cluster3
    topic = unique(f"failover-{client}-{fault_name}")
    create(cluster, topic, 1)
    victim = leader_of(cluster, topic)
    acked, errors = CLIENTS[client](cluster, topic, FAULTS[fault_name](cluster, victim))
    assert not errors, errors[:3]
    assert len(acked) == N
    cluster.wait_for(lambda: cluster.partition(topic, 0)[0] not in (-1, victim), 20, "a leader other than the victim")
    check_every_ack_once(acked, read_all(cluster, topic))
    cluster.wait_in_sync(topic, 1)
    time.sleep(1.5)   # followers fetch the last batches
    cluster.stop()
    check_replicas_identical(cluster, topic, 1)
