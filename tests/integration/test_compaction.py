"""A compacted topic on a real broker: after the cleaner ran, confluent-kafka, kafka-python and kcat
read from the beginning across the offset gaps and end with every key's latest value; the broker
restarts on the compacted journal; a tombstone removes its key once delete.retention.ms passed."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from kafka import KafkaConsumer

from helpers import wait_for

from .kit import kcat

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

KEYS = [f"user-{i}".encode() for i in range(20)]


def _create(bootstrap: str, topic: str, **configs: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    t = NewTopic(topic, 1, 1, config={"cleanup.policy": "compact", "segment.bytes": "2048", **configs})
    admin.create_topics([t])[topic].result(30)


def _read_all(bootstrap: str, topic: str) -> list[tuple[int, bytes, bytes | None]]:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"g{time.time_ns()}", "enable.auto.commit": False})
    lo, hi = c.get_watermark_offsets(TopicPartition(topic, 0), timeout=15)
    c.assign([TopicPartition(topic, 0, lo)])
    out: list[tuple[int, bytes, bytes | None]] = []
    deadline = time.monotonic() + 30
    try:
        while (not out or out[-1][0] < hi - 1) and time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is not None and not m.error():
                out.append((m.offset(), m.key(), m.value()))
    finally:
        c.close()
    assert out and out[-1][0] == hi - 1, f"stopped at {out[-1][0] if out else None} of {hi}"
    return out


def _kafka_python_final(bootstrap: str, topic: str, total: int) -> dict:
    """Each key's last value as kafka-python reads the partition from the start to offset total-1."""
    kc = KafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                       enable_auto_commit=False, consumer_timeout_ms=5000)
    seen = {}
    for m in kc:
        seen[m.key] = m.value
        if m.offset == total - 1:
            break
    kc.close()
    return seen


def _wait_compacted(bootstrap: str, topic: str, total: int) -> list[tuple[int, bytes, bytes | None]]:
    def compacted() -> list[tuple[int, bytes, bytes | None]] | None:
        got = _read_all(bootstrap, topic)   # never empty: it reads up to the high watermark
        return got if len(got) < total // 2 else None

    return wait_for(compacted, 60, interval=0.5, what=f"{topic} compacted below {total // 2} of {total} records")


def test_compacted_topic_keeps_each_keys_latest_value_for_every_client(broker_factory):
    b = broker_factory(["log.cleaner.backoff.ms=200"])
    _create(b.bootstrap, "profiles")
    p = Producer({"bootstrap.servers": b.bootstrap, "linger.ms": 0, "compression.type": "gzip"})
    total = 0
    for rnd in range(25):
        for k in KEYS:
            p.produce("profiles", key=k, value=b"%s=v%d" % (k, rnd), partition=0)
            total += 1
        p.flush(15)
    latest = {k: b"%s=v24" % k for k in KEYS}
    got = _wait_compacted(b.bootstrap, "profiles", total)
    final = {}
    for _off, k, v in got:
        final[k] = v
    assert final == latest
    offsets = [o for o, _, _ in got]
    assert offsets == sorted(offsets) and offsets[-1] == total - 1 and len(set(offsets)) == len(offsets)

    assert _kafka_python_final(b.bootstrap, "profiles", total) == latest

    out = kcat("-C", "-b", b.bootstrap, "-t", "profiles", "-e", "-q", "-o", "beginning", "-f", "%k=%o\\n").stdout
    assert len(out.splitlines()) == len(got)

    b.restart()   # the compacted journal opens clean
    assert _read_all(b.bootstrap, "profiles") == got


def test_a_tombstone_removes_its_key_after_delete_retention_ms(broker_factory):
    b = broker_factory(["log.cleaner.backoff.ms=200"])
    _create(b.bootstrap, "accounts", **{"delete.retention.ms": "1000"})
    p = Producer({"bootstrap.servers": b.bootstrap, "linger.ms": 0})
    for i in range(40):   # the first segment stays as it is (it holds the log start): fill it first
        p.produce("accounts", key=b"first-%d" % i, value=b"y" * 50, partition=0)
        if i % 20 == 19:
            assert p.flush(15) == 0
    p.produce("accounts", key=b"closed", value=b"open", partition=0)
    p.produce("accounts", key=b"closed", value=None, partition=0)   # the tombstone
    assert p.flush(15) == 0
    for i in range(200):   # batches of 20 (one flush each) roll it into a closed segment
        p.produce("accounts", key=b"busy-%d" % (i % 5), value=b"x" * 50, partition=0)
        if i % 20 == 19:
            assert p.flush(15) == 0
    wait_for(lambda: b"closed" not in [k for _, k, _ in _read_all(b.bootstrap, "accounts")], 60, interval=0.5,
             what="the tombstone and its key removed")


def _empty_batches(data_dir, topic: str) -> int:
    from sandbox.log.batch import iter_batches
    n = 0
    for seg in data_dir.glob(f"**/{topic}-0/*.log"):
        n += sum(1 for _p, h in iter_batches(seg.read_bytes()) if h.records_count == 0)
    return n


def test_idempotent_producers_last_batches_emptied_by_compaction_are_read_past_by_every_client(broker_factory):
    """Kafka's cleaner keeps each idempotent producer's last batch even when none of its records
    is left (an empty batch, so producer state rebuilt from the log knows its sequence); the
    sandbox's does too. Every client must read past such batches to the end."""
    import asyncio
    from aiokafka import AIOKafkaConsumer

    b = broker_factory(["log.cleaner.backoff.ms=200"])
    _create(b.bootstrap, "ledger")
    total = 0
    for rnd in range(6):   # a producer (a producer id) per round: each round writes every key over
        p = Producer({"bootstrap.servers": b.bootstrap, "linger.ms": 0, "enable.idempotence": True})
        for k in KEYS:
            p.produce("ledger", key=k, value=b"%s=v%d" % (k, rnd), partition=0)
            total += 1
        assert p.flush(15) == 0
    latest = {k: b"%s=v5" % k for k in KEYS}
    wait_for(lambda: _empty_batches(b.data_dir, "ledger") > 0 or None, 60, interval=0.5,
             what="a producer's last batch emptied by compaction")
    got = _read_all(b.bootstrap, "ledger")   # confluent-kafka, to the high watermark
    assert len(got) < total and {k: v for _o, k, v in got} == latest

    assert _kafka_python_final(b.bootstrap, "ledger", total) == latest

    async def aio() -> dict:
        c = AIOKafkaConsumer("ledger", bootstrap_servers=b.bootstrap, auto_offset_reset="earliest",
                             enable_auto_commit=False, group_id=None)
        await c.start()
        out: dict = {}
        try:
            deadline = time.monotonic() + 30
            last = -1
            while last < total - 1 and time.monotonic() < deadline:
                for recs in (await c.getmany(timeout_ms=500)).values():
                    for m in recs:
                        out[m.key] = m.value
                        last = m.offset
        finally:
            await c.stop()
        return out
    assert asyncio.run(aio()) == latest

    out = kcat("-C", "-b", b.bootstrap, "-t", "ledger", "-e", "-q", "-o", "beginning", "-f", "%o\\n").stdout
    assert out.split()[-1] == str(total - 1).encode()
