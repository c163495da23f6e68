"""One side of `sandbox bench`, run as its own process: `python -m sandbox.bench_worker produce|consume`.

The producer and the consumer run in separate processes so neither steals the other's CPU time
or GIL, and so a hung client can be killed from outside. Both use confluent-kafka (librdkafka),
which is not a dependency of the package: the CLI checks for it before starting a worker.

Protocol with the parent: one JSON object per line on stdout. While working, the worker writes
{"done": N} a few times a second; at the end {"result": {...}}; on failure {"error": "sentence"}
and exit code 1. Every loop is bounded by --timeout (seconds, wall clock).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from array import array
from typing import Callable

PROGRESS_EVERY_S = 0.2
BATCH = 1000        # records per produce_batch() call
SAMPLE_EVERY = 16   # as fast as it goes: a delivery callback (latency, errors) on every 16th record


def emit(obj: dict) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def percentiles_ms(samples: array, points=(50, 95, 99)) -> dict[str, float | None]:
    """Nearest-rank percentiles of latencies given in seconds, in milliseconds."""
    out: dict[str, float | None] = {}
    data = sorted(samples)
    for p in points:
        if not data:
            out[f"p{p}"] = None
            continue
        rank = max(0, min(len(data) - 1, -(-len(data) * p // 100) - 1))
        out[f"p{p}"] = round(data[rank] * 1000, 3)
    out["max"] = round(data[-1] * 1000, 3) if data else None
    return out


def produce(bootstrap: str, topic: str, records: int, size: int, acks: str, rate: float,
            timeout: float, linger_ms: float = 5.0) -> dict:
    """Paced (--rate) or on a client without produce_batch(): one produce() per record, each with
    a delivery callback. As fast as it goes: produce_batch() of BATCH records per call, with a
    delivery callback on every SAMPLE_EVERY-th record only (a Python callback per record halves
    what one client process can send), and the count checked against the topic's end offsets."""
    from confluent_kafka import Producer

    deadline = time.monotonic() + timeout
    latencies = array("d")
    errors: list[str] = []
    acked = 0

    def on_delivery(err, msg):
        nonlocal acked
        if err is not None:
            if len(errors) < 5:
                errors.append(str(err))
            return
        acked += 1
        lat = msg.latency()
        if lat is not None:
            latencies.append(lat)

    p = Producer({
        "bootstrap.servers": bootstrap, "acks": acks, "linger.ms": linger_ms, "batch.size": 1_000_000,
        "queue.buffering.max.messages": 500_000, "queue.buffering.max.kbytes": 512 * 1024,
        "message.timeout.ms": max(1000, int(timeout * 1000)), "socket.timeout.ms": 10_000,
    })
    batched = rate <= 0 and hasattr(p, "produce_batch")
    every = SAMPLE_EVERY if batched else 1
    delivered = lambda: min(records, acked * every)  # noqa: E731
    before = end_offsets(bootstrap, topic, deadline) if batched else {}
    payload = b"x" * size
    start = time.perf_counter()
    if batched:
        _produce_batched(p, topic, records, payload, on_delivery, deadline, delivered)
    else:
        _produce_one_by_one(p, topic, records, payload, on_delivery, rate, start, deadline, delivered)
    next_report = time.monotonic() + PROGRESS_EVERY_S
    while len(p) > 0 and time.monotonic() < deadline and not errors:
        p.poll(0.05)
        if time.monotonic() >= next_report:
            emit({"done": delivered()})
            next_report = time.monotonic() + PROGRESS_EVERY_S
    elapsed = time.perf_counter() - start
    if errors:
        raise RuntimeError(f"records failed delivery, first error: {errors[0]}")
    if len(p) > 0:
        raise TimeoutError(f"{len(p)} records were still unacknowledged at the {timeout:.0f} s timeout")
    if batched:
        after = end_offsets(bootstrap, topic, deadline)
        landed = sum(after.values()) - sum(before.get(k, 0) for k in after)
    else:
        landed = acked
    if landed != records:
        raise RuntimeError(f"{landed} of {records} records reached the topic")
    emit({"done": records})
    return {"records": records, "bytes": records * size, "seconds": round(elapsed, 6),
            "latency_ms": percentiles_ms(latencies), "latency_sampled": every}


def end_offsets(bootstrap: str, topic: str, deadline: float) -> dict[int, int]:
    """{partition: end offset} of the topic, read by a confluent-kafka consumer ({} if it does not
    exist yet: the first produce creates it)."""
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "sandbox-bench-offsets", "enable.auto.commit": False})
    try:
        wait = lambda: max(1.0, min(15.0, deadline - time.monotonic()))  # noqa: E731
        t = c.list_topics(topic, timeout=wait()).topics.get(topic)
        if t is None or t.error is not None or not t.partitions:
            return {}
        return {n: c.get_watermark_offsets(TopicPartition(topic, n), timeout=wait(), cached=False)[1]
                for n in sorted(t.partitions)}
    finally:
        c.close()


def _queue_full(err) -> bool:
    """Whether a produce_batch() refusal is librdkafka's full queue (sent again after a poll)."""
    from confluent_kafka import KafkaError

    code = err.code() if hasattr(err, "code") else None
    return code == KafkaError._QUEUE_FULL


def _queue_full_wait(p, deadline: float, delivered: Callable[[], int], records: int, timeout: float) -> None:
    p.poll(0.01)
    if time.monotonic() > deadline:
        raise TimeoutError(f"the producer's queue stayed full; {delivered()} of {records} "
                           f"records were delivered before the {timeout:.0f} s timeout")


def _report(next_report: float, deadline: float, delivered: Callable[[], int], records: int,
            timeout: float) -> float:
    """Progress to the parent a few times a second, and the timeout; returns the next report time."""
    now = time.monotonic()
    if now < next_report:
        return next_report
    emit({"done": delivered()})
    if now > deadline:
        raise TimeoutError(f"only {delivered()} of {records} records were delivered "
                           f"before the {timeout:.0f} s timeout")
    return now + PROGRESS_EVERY_S


def _produce_one_by_one(p, topic: str, records: int, payload: bytes, on_delivery, rate: float, start: float,
                        deadline: float, delivered: Callable[[], int]) -> None:
    """Paced (--rate) or on an older client: one produce() call per record."""
    timeout = deadline - time.monotonic()
    next_report = time.monotonic() + PROGRESS_EVERY_S
    for i in range(records):
        if rate > 0:
            # serve delivery callbacks while pacing: poll() returns at the first one, so the
            # pace is checked again until this record's time has come (it sent at full speed)
            while (lag := start + i / rate - time.perf_counter()) > 0:
                p.poll(lag)
        while True:
            try:
                p.produce(topic, value=payload, on_delivery=on_delivery)
                break
            except BufferError:
                _queue_full_wait(p, deadline, delivered, records, timeout)
        if i % 1000 == 0:
            p.poll(0)
            next_report = _report(next_report, deadline, delivered, records, timeout)


def _produce_batched(p, topic: str, records: int, payload: bytes, on_delivery, deadline: float,
                     delivered: Callable[[], int]) -> None:
    """produce_batch() hands librdkafka BATCH records per Python call, so the producer process
    (whose per-call cost is what limits one Python client) gets out of the broker's way."""
    timeout = deadline - time.monotonic()
    next_report = time.monotonic() + PROGRESS_EVERY_S
    sent = 0
    while sent < records:
        batch = [{"value": payload} for _ in range(min(BATCH, records - sent))]
        for m in batch[::SAMPLE_EVERY]:
            m["callback"] = on_delivery
        while batch:
            try:
                queued = p.produce_batch(topic, batch)
            except BufferError:
                queued = 0
            sent += queued
            if queued < len(batch):   # the queue filled part-way: resend the ones it refused
                refused = [m for m in batch if "_error" in m]
                fatal = next((m["_error"] for m in refused if not _queue_full(m["_error"])), None)
                if fatal is not None:   # a record no retry can send (too large, say): not waited on for ever
                    raise ValueError(f"the client refused a record: {fatal}")
                batch = [{k: v for k, v in m.items() if k != "_error"} for m in refused]
                _queue_full_wait(p, deadline, delivered, records, timeout)
            else:
                batch = []
        p.poll(0)
        next_report = _report(next_report, deadline, delivered, records, timeout)


def consume(bootstrap: str, topic: str, records: int, timeout: float) -> dict:
    """Read the topic's partitions from the beginning (explicit assignment: no group join in
    the measurement) until `records` records have arrived."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition

    deadline = time.monotonic() + timeout
    c = Consumer({
        "bootstrap.servers": bootstrap, "group.id": f"sandbox-bench-{time.time_ns()}",
        "enable.auto.commit": False, "auto.offset.reset": "earliest", "socket.timeout.ms": 10_000,
        "fetch.max.bytes": 50 * 1024 * 1024, "max.partition.fetch.bytes": 10 * 1024 * 1024,
        "fetch.wait.max.ms": 100, **prefetch_conf(),
    })
    got = nbytes = 0
    try:
        md = c.list_topics(topic, timeout=max(1.0, min(15.0, deadline - time.monotonic())))
        t = md.topics.get(topic)
        if t is None or t.error is not None or not t.partitions:
            raise RuntimeError(f"topic {topic} has no partitions the consumer can see"
                               + (f" ({t.error})" if t is not None and t.error is not None else ""))
        start = time.perf_counter()
        c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in sorted(t.partitions)])
        next_report = time.monotonic() + PROGRESS_EVERY_S
        while got < records:
            now = time.monotonic()
            if now > deadline:
                raise TimeoutError(f"only {got} of {records} records were consumed before the "
                                   f"{timeout:.0f} s timeout")
            for m in c.consume(num_messages=10_000, timeout=0.2):
                err = m.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        continue
                    raise KafkaException(err)
                got += 1
                v = m.value()
                if v is not None:
                    nbytes += len(v)
            if now >= next_report:
                emit({"done": got})
                next_report = now + PROGRESS_EVERY_S
        elapsed = time.perf_counter() - start
    finally:
        c.close()
    emit({"done": got})
    return {"records": got, "bytes": nbytes, "seconds": round(elapsed, 6)}


def prefetch_conf() -> dict:
    """librdkafka >= 2.4 postpones a partition's next fetch by fetch.queue.backoff.ms (default
    1000 ms) whenever its prefetch queue holds queued.min.messages (100,000): a broker that answers
    with 10 MB at once fills that in one response, and the consumer then idles most of each second
    (150k records/s instead of 570k here). 10 ms keeps the fetcher going; older librdkafka has no
    such pause and no such setting."""
    from confluent_kafka import libversion

    return {"fetch.queue.backoff.ms": 10} if libversion()[1] >= 0x02040000 else {}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m sandbox.bench_worker", description=__doc__.split("\n\n")[0])
    ap.add_argument("phase", choices=["produce", "consume"])
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--records", type=int, required=True)
    ap.add_argument("--size", type=int, default=100)
    ap.add_argument("--acks", default="1", choices=["0", "1", "all", "-1"])
    ap.add_argument("--rate", type=float, default=0.0, help="records/s to pace the producer at (0: as fast as it goes)")
    ap.add_argument("--linger-ms", type=float, default=5.0)
    ap.add_argument("--timeout", type=float, default=300.0)
    a = ap.parse_args(argv)
    try:
        if a.phase == "produce":
            result = produce(a.bootstrap, a.topic, a.records, a.size, a.acks, a.rate, a.timeout, a.linger_ms)
        else:
            result = consume(a.bootstrap, a.topic, a.records, a.timeout)
    except ImportError:
        emit({"error": "confluent-kafka is not installed; install it with `pip install confluent-kafka`"})
        return 1
    except KeyboardInterrupt:
        emit({"error": "interrupted"})
        return 130
    except Exception as e:  # reported to the parent as one sentence
        emit({"error": f"{a.phase} failed: {e}"})
        return 1
    emit({"result": result})
    return 0


if __name__ == "__main__":
    sys.exit(main())
