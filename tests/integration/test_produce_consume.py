"""Produce and consume with every client we support: confluent-kafka, kafka-python, aiokafka, kcat."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter, defaultdict

import pytest

from .kit import consume_n, consume_topic, consumer, create_topic, kcat, produce_all, producer, unique

pytestmark = [pytest.mark.integration, pytest.mark.timeout(150)]


def test_confluent_20k_keyed_records_with_a_group(broker):
    t = unique("keyed")
    create_topic(broker.bootstrap, t, 3)
    nkeys, total = 200, 20_000
    records = []
    seq = defaultdict(int)
    for i in range(total):
        key = f"key-{i % nkeys:03d}"
        records.append((key.encode(), f"{key}:{seq[key]}".encode()))
        seq[key] += 1

    p = producer(broker.bootstrap, **{"acks": "all"})
    delivered = produce_all(p, t, records, timeout=90)

    # the broker assigned dense offsets 0..n-1 per partition, each once
    by_part = defaultdict(list)
    for d in delivered:
        by_part[d.partition].append(d.offset)
    assert sorted(by_part) == [0, 1, 2]
    for part, offs in by_part.items():
        assert sorted(offs) == list(range(len(offs))), f"partition {part}: offsets not dense"

    c = consumer(broker.bootstrap, unique("grp"))
    try:
        c.subscribe([t])
        msgs = consume_n(c, total, timeout=90, settle=1.5)
    finally:
        c.close()

    assert len(msgs) == total, f"consumed {len(msgs)} of {total}"
    values = [m.value() for m in msgs]
    dup = [v for v, n in Counter(values).items() if n > 1]
    assert not dup, f"duplicates, e.g. {dup[:5]}"
    assert set(values) == {v for _, v in records}

    last_seq: dict[bytes, int] = {}
    key_part: dict[bytes, int] = {}
    part_offsets = defaultdict(list)
    for m in msgs:
        k = m.key()
        key_text, s = m.value().decode().rsplit(":", 1)
        assert key_text.encode() == k
        s = int(s)
        assert s > last_seq.get(k, -1), f"key {k!r}: seq {s} after {last_seq.get(k)}"
        last_seq[k] = s
        assert key_part.setdefault(k, m.partition()) == m.partition(), f"key {k!r} in two partitions"
        part_offsets[m.partition()].append(m.offset())
    assert len(last_seq) == nkeys
    assert sorted(part_offsets) == [0, 1, 2], "all 3 partitions must have received data"
    for part, offs in part_offsets.items():
        assert offs == list(range(len(offs))), f"partition {part}: offsets out of order or with gaps"
        assert len(offs) == len(by_part[part])


def test_confluent_headers_timestamps_and_nulls(broker):
    t = unique("headers")
    create_topic(broker.bootstrap, t, 1)
    ts = int(time.time() * 1000) - 5000
    hdrs = [("h1", b"v1"), ("empty", b""), ("dup", b"a"), ("dup", b"b"), ("bin", bytes(range(256)))]
    p = producer(broker.bootstrap)
    produce_all(p, t, [
        (b"k1", b"with headers", {"headers": hdrs, "timestamp": ts}),
        (None, b"no key", {}),
        (b"tombstone", None, {}),
        (b"big", b"x" * 200_000, {}),
        (b"", b"", {"headers": [("only", b"1")]}),
    ])
    msgs = consume_topic(broker.bootstrap, t, 5, timeout=30)
    assert len(msgs) == 5
    m0, m1, m2, m3, m4 = msgs
    assert (m0.key(), m0.value()) == (b"k1", b"with headers")
    assert m0.headers() == hdrs
    assert m0.timestamp()[1] == ts
    assert (m1.key(), m1.value(), m1.headers()) == (None, b"no key", None)
    assert (m2.key(), m2.value()) == (b"tombstone", None)
    assert m3.value() == b"x" * 200_000
    assert (m4.key(), m4.value(), m4.headers()) == (b"", b"", [("only", b"1")])
    assert [m.offset() for m in msgs] == [0, 1, 2, 3, 4]


def test_kafka_python_producer_and_consumer(broker):
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition

    t = unique("kp")
    create_topic(broker.bootstrap, t, 2)
    n = 600
    sent = [(f"k{i % 7}".encode(), f"kafka-python {i}".encode(), i % 2) for i in range(n)]
    prod = KafkaProducer(bootstrap_servers=broker.bootstrap, linger_ms=5, acks="all",
                         request_timeout_ms=15000, max_block_ms=15000)
    try:
        futures = [prod.send(t, key=k, value=v, partition=part,
                             headers=[("i", str(i).encode())]) for i, (k, v, part) in enumerate(sent)]
        prod.flush(timeout=30)
        metas = [f.get(timeout=15) for f in futures]
    finally:
        prod.close(timeout=10)
    for part in (0, 1):
        offs = [m.offset for m in metas if m.partition == part]
        assert offs == list(range(n // 2)), f"partition {part}: acked offsets {offs[:10]}..."

    cons = KafkaConsumer(t, bootstrap_servers=broker.bootstrap, group_id=unique("kpg"),
                         auto_offset_reset="earliest", enable_auto_commit=False,
                         session_timeout_ms=6000, heartbeat_interval_ms=500,
                         request_timeout_ms=15000, fetch_max_wait_ms=200)
    got = []
    try:
        deadline = time.monotonic() + 60
        while len(got) < n and time.monotonic() < deadline:
            for _tp, recs in cons.poll(timeout_ms=500).items():
                got.extend(recs)
        # nothing more than what was produced
        extra = cons.poll(timeout_ms=1000)
        assert not any(extra.values()), extra
        cons.commit()
        committed = {p: cons.committed(TopicPartition(t, p)) for p in (0, 1)}
    finally:
        cons.close()
    assert len(got) == n
    for part in (0, 1):
        recs = [r for r in got if r.partition == part]
        assert [(r.key, r.value) for r in recs] == [(k, v) for k, v, p in sent if p == part]
        assert [r.offset for r in recs] == list(range(n // 2))
    assert all(dict(r.headers)["i"] == r.value.split()[-1] for r in got)
    assert committed == {0: n // 2, 1: n // 2}


def test_aiokafka_producer_and_consumer(broker):
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    t = unique("aio")
    create_topic(broker.bootstrap, t, 1)
    n = 500
    sent = [(f"a{i}".encode(), f"aiokafka value {i}".encode()) for i in range(n)]

    async def run():
        prod = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, linger_ms=5, acks="all",
                                request_timeout_ms=15000)
        await prod.start()
        try:
            futs = [await prod.send(t, key=k, value=v) for k, v in sent[:-1]]
            metas = [await asyncio.wait_for(f, 30) for f in futs]
            metas.append(await asyncio.wait_for(prod.send_and_wait(t, key=sent[-1][0], value=sent[-1][1]), 30))
        finally:
            await prod.stop()

        cons = AIOKafkaConsumer(t, bootstrap_servers=broker.bootstrap, group_id=unique("aiog"),
                                auto_offset_reset="earliest", enable_auto_commit=False,
                                session_timeout_ms=6000, heartbeat_interval_ms=500,
                                request_timeout_ms=15000, fetch_max_wait_ms=200)
        await cons.start()
        got = []
        try:
            deadline = time.monotonic() + 60
            while len(got) < n and time.monotonic() < deadline:
                batch = await cons.getmany(timeout_ms=500)
                for recs in batch.values():
                    got.extend(recs)
            extra = await cons.getmany(timeout_ms=1000)
        finally:
            await cons.stop()
        return metas, got, extra

    metas, got, extra = asyncio.run(asyncio.wait_for(run(), 100))
    assert [m.offset for m in metas] == list(range(n))
    assert [(r.key, r.value) for r in got] == sent
    assert [r.offset for r in got] == list(range(n))
    assert not any(extra.values())


def test_kcat_round_trip_and_metadata(broker):
    t = unique("kcat")
    create_topic(broker.bootstrap, t, 1)
    lines = [f"key{i}:value {i}" for i in range(100)]
    kcat("-b", broker.bootstrap, "-P", "-t", t, "-K:", input=("\n".join(lines) + "\n").encode())

    out = kcat("-b", broker.bootstrap, "-C", "-t", t, "-e", "-o", "beginning", "-f", "%k=%s\n",
               "-X", "socket.timeout.ms=10000").stdout.decode()
    assert out.splitlines() == [ln.replace(":", "=", 1) for ln in lines]

    # offsets as kcat sees them
    out = kcat("-b", broker.bootstrap, "-C", "-t", t, "-e", "-o", "95", "-f", "%o %p\n").stdout.decode()
    assert out.splitlines() == [f"{o} 0" for o in range(95, 100)]

    md = json.loads(kcat("-b", broker.bootstrap, "-L", "-J").stdout)
    assert [(b["id"], b["name"]) for b in md["brokers"]] == [(1, broker.bootstrap)]
    topics = {x["topic"]: x for x in md["topics"]}
    assert t in topics
    parts = topics[t]["partitions"]
    assert [(p["partition"], p["leader"]) for p in parts] == [(0, 1)]
    assert [r["id"] for r in parts[0]["replicas"]] == [1]
    assert [r["id"] for r in parts[0]["isrs"]] == [1]
    assert "error" not in topics[t] or not topics[t]["error"]


def test_cross_client_interop(broker):
    """What one client writes, the others read byte for byte (keys, values, headers)."""
    from kafka import KafkaProducer

    t = unique("interop")
    create_topic(broker.bootstrap, t, 1)
    prod = KafkaProducer(bootstrap_servers=broker.bootstrap, linger_ms=5, request_timeout_ms=15000)
    try:
        for i in range(50):
            prod.send(t, key=f"kp{i}".encode(), value=f"from kafka-python {i}".encode(),
                      headers=[("src", b"kp")])
        prod.flush(timeout=30)
    finally:
        prod.close(timeout=10)
    p = producer(broker.bootstrap)
    produce_all(p, t, [(f"ck{i}".encode(), f"from confluent {i}".encode(), {"headers": [("src", b"ck")]})
                       for i in range(50)])
    msgs = consume_topic(broker.bootstrap, t, 100, timeout=30)
    assert [m.key() for m in msgs] == [f"kp{i}".encode() for i in range(50)] + [f"ck{i}".encode() for i in range(50)]
    assert [m.headers() for m in msgs] == [[("src", b"kp")]] * 50 + [[("src", b"ck")]] * 50
    out = kcat("-b", broker.bootstrap, "-C", "-t", t, "-e", "-o", "beginning", "-f", "%k|%s\n").stdout.decode()
    assert out.splitlines() == [f"kp{i}|from kafka-python {i}" for i in range(50)] + \
        [f"ck{i}|from confluent {i}" for i in range(50)]


def test_fetch_max_bytes_is_kept_past_the_first_partition(broker):
    """librdkafka's 0082: records of 900 KB on 3 partitions, a consumer allowing 20 MB per
    partition but 1 MB per response. Only the first partition with data may go over the limit
    (by its first batch, KIP-74); a response holding batches of two partitions is larger than
    librdkafka accepts (receive.message.max.bytes), and it dropped every one of them and stalled."""
    t = unique("fetchmax")
    create_topic(broker.bootstrap, t, 3)
    big = 900_000
    p = producer(broker.bootstrap, **{"linger.ms": 0, "batch.size": big + 10_000})
    records = [(None, bytes([65 + i]) * big, {"partition": i % 3}) for i in range(9)]
    produce_all(p, t, records, timeout=60)
    c = consumer(broker.bootstrap, unique("grp"), **{
        "max.partition.fetch.bytes": 20_000_000, "fetch.max.bytes": 1_000_000,
        "receive.message.max.bytes": 1_000_512})
    try:
        c.subscribe([t])
        msgs = consume_n(c, 9, timeout=40, settle=0.5)
    finally:
        c.close()
    assert len(msgs) == 9 and sorted(len(m.value()) for m in msgs) == [big] * 9
