"""Idempotent producers (InitProducerId + sequence numbers) with real clients."""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict

import pytest

from .kit import consume_topic, create_topic, produce_all, producer, read_batches, unique

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def test_confluent_idempotent_producer(broker):
    t = unique("idem")
    create_topic(broker.bootstrap, t, 3)
    n = 6000
    records = [(f"k{i % 50}".encode(), f"idem-{i}".encode()) for i in range(n)]
    p = producer(broker.bootstrap, **{"enable.idempotence": True, "acks": "all",
                                      "max.in.flight.requests.per.connection": 5,
                                      "batch.num.messages": 200})
    delivered = produce_all(p, t, records, timeout=60)
    by_part = defaultdict(list)
    for d in delivered:
        by_part[d.partition].append(d.offset)
    for part, offs in by_part.items():
        assert sorted(offs) == list(range(len(offs))), f"partition {part}"

    msgs = consume_topic(broker.bootstrap, t, n, timeout=60)
    counts = Counter(m.value() for m in msgs)
    assert len(msgs) == n
    assert set(counts) == {v for _, v in records}
    assert max(counts.values()) == 1
    # per key, production order is kept (idempotence guarantees ordering with 5 in flight)
    last = {}
    for m in msgs:
        i = int(m.value().split(b"-")[1])
        assert i > last.get(m.key(), -1)
        last[m.key()] = i

    # on disk: one producer id, sequences contiguous per partition starting at 0
    broker.stop()
    pids = set()
    for part in range(3):
        batches = read_batches(broker.data_dir / f"{t}-{part}")
        seq = 0
        for b in batches:
            assert b.producer_id >= 0 and b.producer_epoch >= 0
            pids.add((b.producer_id, b.producer_epoch))
            assert b.base_sequence == seq, f"partition {part}: base sequence {b.base_sequence}, expected {seq}"
            seq += b.records_count
        assert seq == len(by_part[part])
    assert len(pids) == 1, pids


def test_idempotent_producers_get_distinct_ids(broker):
    t = unique("idem2")
    create_topic(broker.bootstrap, t, 1)
    for i in range(3):
        p = producer(broker.bootstrap, **{"enable.idempotence": True, "acks": "all"})
        produce_all(p, t, [(b"p", f"producer {i} record {j}".encode()) for j in range(10)])
    msgs = consume_topic(broker.bootstrap, t, 30, timeout=30)
    assert [m.value() for m in msgs] == [f"producer {i} record {j}".encode() for i in range(3) for j in range(10)]
    broker.stop()
    batches = read_batches(broker.data_dir / f"{t}-0")
    ids = []
    for b in batches:
        if not ids or ids[-1] != b.producer_id:
            ids.append(b.producer_id)
    assert len(ids) == 3 and len(set(ids)) == 3, f"producer ids per batch: {ids}"


def test_kafka_python_idempotent_producer(broker):
    from kafka import KafkaProducer

    if "enable_idempotence" not in KafkaProducer.DEFAULT_CONFIG:
        pytest.skip("this kafka-python has no idempotent producer")
    t = unique("kp-idem")
    create_topic(broker.bootstrap, t, 2)
    n = 400
    prod = KafkaProducer(bootstrap_servers=broker.bootstrap, enable_idempotence=True, acks="all",
                         linger_ms=5, request_timeout_ms=15000, max_block_ms=15000)
    try:
        futs = [prod.send(t, key=f"k{i % 5}".encode(), value=f"kp-idem {i}".encode()) for i in range(n)]
        prod.flush(timeout=30)
        metas = [f.get(timeout=15) for f in futs]
    finally:
        prod.close(timeout=10)
    per_part = defaultdict(list)
    for m in metas:
        per_part[m.partition].append(m.offset)
    for offs in per_part.values():
        assert sorted(offs) == list(range(len(offs)))
    msgs = consume_topic(broker.bootstrap, t, n, timeout=30)
    assert sorted(m.value() for m in msgs) == sorted(f"kp-idem {i}".encode() for i in range(n))
    assert len(msgs) == n

    broker.stop()
    for part in per_part:
        batches = read_batches(broker.data_dir / f"{t}-{part}")
        assert all(b.producer_id >= 0 for b in batches), [b.producer_id for b in batches]
        seq = 0
        for b in batches:
            assert b.base_sequence == seq
            seq += b.records_count


def test_aiokafka_idempotent_producer(broker):
    from aiokafka import AIOKafkaProducer

    t = unique("aio-idem")
    create_topic(broker.bootstrap, t, 1)
    n = 300

    async def run():
        prod = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, enable_idempotence=True,
                                acks="all", linger_ms=5, request_timeout_ms=15000)
        await prod.start()
        try:
            futs = [await prod.send(t, value=f"aio-idem {i}".encode()) for i in range(n)]
            return [await asyncio.wait_for(f, 30) for f in futs]
        finally:
            await prod.stop()

    metas = asyncio.run(asyncio.wait_for(run(), 60))
    assert [m.offset for m in metas] == list(range(n))
    msgs = consume_topic(broker.bootstrap, t, n, timeout=30)
    assert [m.value() for m in msgs] == [f"aio-idem {i}".encode() for i in range(n)]
