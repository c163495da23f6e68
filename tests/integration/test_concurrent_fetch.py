"""Many consumers fetching the same partitions while a producer writes many small batches: every
consumer reads every record exactly, in order, with CRC checks on, and no connection is dropped.
(Fetch replies are sent with sendfile on a dup of the segment's descriptor; reads that relied on the
shared file offset served wrong bytes and 'short read' disconnects under this load.)"""

from __future__ import annotations

import threading
import time

from confluent_kafka import KafkaError, TopicPartition

from .kit import consumer, create_topic, producer, unique

CONSUMERS = 12
PARTITIONS = 2
LOAD_SECONDS = 12.0
MAX_RECORDS = 60_000


def test_concurrent_consumers_read_exact_bytes_while_small_batches_arrive(broker):
    topic = unique("fanout")
    create_topic(broker.bootstrap, topic, PARTITIONS)
    errors: list[str] = []
    stop = threading.Event()
    sent = {p: 0 for p in range(PARTITIONS)}

    def on_error(err):
        errors.append(f"client error: {err}")

    def produce():
        p = producer(broker.bootstrap, **{"linger.ms": 0, "error_cb": on_error})
        deadline = time.monotonic() + LOAD_SECONDS
        n = 0
        try:
            while time.monotonic() < deadline and n < MAX_RECORDS:
                part = n % PARTITIONS
                value = f"{part}:{sent[part]:08d}:".encode().ljust(100, b"x")
                try:
                    p.produce(topic, value=value, partition=part)
                except BufferError:
                    p.poll(0.01)
                    continue
                sent[part] += 1
                n += 1
                if n % 50 == 0:
                    p.poll(0)
        finally:
            left = p.flush(30)
            if left:
                errors.append(f"{left} records undelivered")
            stop.set()

    results: dict[int, dict[int, int]] = {}

    def consume(i: int):
        c = consumer(broker.bootstrap, unique("g"), **{
            "check.crcs": True, "error_cb": on_error, "fetch.wait.max.ms": 50,
            "fetch.queue.backoff.ms": 10, "fetch.min.bytes": 1})
        c.assign([TopicPartition(topic, p, 0) for p in range(PARTITIONS)])
        seen = {p: 0 for p in range(PARTITIONS)}
        deadline = time.monotonic() + LOAD_SECONDS + 60
        try:
            while time.monotonic() < deadline:
                if stop.is_set() and all(seen[p] >= sent[p] for p in range(PARTITIONS)):
                    break
                for m in c.consume(num_messages=2000, timeout=0.2):
                    if m.error():
                        if m.error().code() != KafkaError._PARTITION_EOF:
                            errors.append(f"consumer {i}: {m.error()}")
                        continue
                    part = m.partition()
                    expect = f"{part}:{seen[part]:08d}:".encode().ljust(100, b"x")
                    if m.value() != expect or m.offset() != seen[part]:
                        errors.append(f"consumer {i}: partition {part} offset {m.offset()} held "
                                      f"{m.value()[:20]!r}, expected record {seen[part]}")
                        return
                    seen[part] += 1
        finally:
            results[i] = seen
            c.close()

    threads = [threading.Thread(target=consume, args=(i,), daemon=True) for i in range(CONSUMERS)]
    threads.append(threading.Thread(target=produce, daemon=True))
    for t in threads:
        t.start()
    for t in threads:
        t.join(LOAD_SECONDS + 120)
    assert not any(t.is_alive() for t in threads), "a client thread did not finish"
    assert sum(sent.values()) > 1000, f"the load was too small to mean anything: {sent}"
    assert not errors, f"{len(errors)} errors, first: {errors[:5]}"
    for i, seen in results.items():
        assert seen == sent, f"consumer {i} read {seen} of {sent}"
    log = broker.log_path.read_text(errors="replace")
    assert "short read" not in log and "failed" not in log, log[-3000:]
