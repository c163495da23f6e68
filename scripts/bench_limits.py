#!/usr/bin/env python3
"""The issue-6 limits that are not per-record CPU, each against its own broker on a free 127.0.0.1
port in a temporary folder (stopped on exit, also on error or Ctrl-C):

  latency   produce latency percentiles, acks=all, at a fixed rate (default 5,000 records/s, 20 s)
  soak      N records (default 10M) into one partition, then consumed from the beginning: records/s
            per million and the broker's RSS sampled every second (flat memory, no stall)
  metadata  T topics x P partitions (default 1000 x 10): Metadata for all of them (median of 20),
            then the broker restarted: seconds until it serves and until Metadata is complete; then
            records produced to every partition, the broker SIGKILLed (a torn tail added to every
            10th partition) and restarted: the same two figures, then every end offset checked
            (--no-crash skips that part)
  recovery  a journal of B bytes (default 1 GB), the broker SIGKILLed, restarted: seconds until it
            answers ApiVersions and until a fetch of the last record succeeds

    python scripts/bench_limits.py latency|soak|metadata|recovery|all [options]
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_broker import Broker  # noqa: E402

from sandbox.bench_worker import prefetch_conf  # noqa: E402
from sandbox.client import KafkaClient  # noqa: E402


def _producer(bootstrap: str, **conf) -> Producer:
    base = {"bootstrap.servers": bootstrap, "linger.ms": 5, "batch.size": 1_000_000,
            "queue.buffering.max.messages": 1_000_000, "queue.buffering.max.kbytes": 1024 * 1024,
            "message.timeout.ms": 120_000}
    base.update(conf)
    return Producer(base)


def _create(bootstrap: str, topics: list[NewTopic], timeout: float = 120) -> None:
    a = AdminClient({"bootstrap.servers": bootstrap})
    for f in a.create_topics(topics, operation_timeout=timeout).values():
        f.result(timeout)


def _fill(bootstrap: str, topic: str, records: int, size: int, deadline: float) -> float:
    """Produce `records` of `size` bytes (acks=1); returns records/s."""
    p = _producer(bootstrap, acks="1")
    payload = b"x" * size
    t0 = time.perf_counter()
    for i in range(records):
        while True:
            try:
                p.produce(topic, payload)
                break
            except BufferError:
                p.poll(0.01)
                if time.monotonic() > deadline:
                    raise TimeoutError("producing took too long")
        if i % 10000 == 0:
            p.poll(0)
    left = p.flush(max(1.0, deadline - time.monotonic()))
    if left:
        raise TimeoutError(f"{left} records not delivered in time")
    return records / (time.perf_counter() - t0)


def latency(args, work: Path) -> None:
    b = Broker(work / "latency", work / "latency.log")
    b.start()
    try:
        _create(b.bootstrap, [NewTopic("lat", 1, 1)])
        p = _producer(b.bootstrap, acks="all", **{"linger.ms": 0})
        lat: list[float] = []
        sent_at: dict[int, float] = {}

        def done(err, msg):
            if err is None:
                lat.append(time.perf_counter() - sent_at.pop(int(msg.key())))

        n = int(args.rate * args.seconds)
        t0 = time.perf_counter()
        for i in range(n):
            due = t0 + i / args.rate
            while (now := time.perf_counter()) < due:
                p.poll(max(0.0, min(due - now, 0.001)))
            sent_at[i] = time.perf_counter()
            p.produce("lat", b"y" * args.size, key=str(i).encode(), on_delivery=done)
            p.poll(0)
        p.flush(30)
        ms = sorted(x * 1000 for x in lat)
        q = lambda f: ms[min(len(ms) - 1, int(f * len(ms)))]  # noqa: E731
        print(f"latency  acks=all {args.rate} records/s for {args.seconds} s: {len(ms)} delivered, "
              f"p50 {q(0.5):.2f} ms  p95 {q(0.95):.2f} ms  p99 {q(0.99):.2f} ms  max {ms[-1]:.2f} ms")
    finally:
        b.stop()


def soak(args, work: Path) -> None:
    b = Broker(work / "soak", work / "soak.log")
    b.start()
    samples: list[tuple[float, int]] = []
    stop = threading.Event()
    proc = psutil.Process(b.proc.pid)

    def sample():
        while not stop.wait(1.0):
            try:
                samples.append((time.monotonic(), proc.memory_info().rss))
            except psutil.Error:
                return

    threading.Thread(target=sample, daemon=True).start()
    deadline = time.monotonic() + args.timeout
    try:
        _create(b.bootstrap, [NewTopic("soak", 1, 1)])
        rate = _fill(b.bootstrap, "soak", args.records, args.size, deadline)
        after_produce = samples[-1][1] if samples else 0
        c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": "soak", "enable.auto.commit": False,
                      "fetch.max.bytes": 52_428_800, "max.partition.fetch.bytes": 10_485_760, **prefetch_conf()})
        c.assign([TopicPartition("soak", 0, 0)])
        got, t0, windows, mark = 0, time.perf_counter(), [], time.perf_counter()
        while got < args.records and time.monotonic() < deadline:
            for m in c.consume(10000, 1.0):
                if not m.error():
                    got += 1
                    if got % 1_000_000 == 0:
                        now = time.perf_counter()
                        windows.append(1_000_000 / (now - mark))
                        mark = now
        c.close()
        total = time.perf_counter() - t0
        rss = [r for _, r in samples]
        print(f"soak     {args.records:,} records of {args.size} B: produced at {rate:,.0f}/s, consumed "
              f"{got:,} at {got / total:,.0f}/s; per-million consume rates min {min(windows or [0]):,.0f} "
              f"max {max(windows or [0]):,.0f}/s; broker RSS min {min(rss) >> 20} MB, after produce "
              f"{after_produce >> 20} MB, max {max(rss) >> 20} MB")
    finally:
        stop.set()
        b.stop()


def metadata(args, work: Path) -> None:
    b = Broker(work / "metadata", work / "metadata.log")
    b.start()
    try:
        t0 = time.perf_counter()
        names = [f"t{i:04d}" for i in range(args.topics)]
        for i in range(0, len(names), 100):
            _create(b.bootstrap, [NewTopic(n, args.partitions, 1) for n in names[i:i + 100]])
        created = time.perf_counter() - t0
        with KafkaClient(b.bootstrap, timeout=30) as c:
            lat = []
            for _ in range(20):
                md, ms = c.metadata()
                lat.append(ms)
            parts = sum(len(t.partitions) for t in md.topics.values())
        print(f"metadata {len(md.topics)} topics, {parts} partitions (created in {created:.1f} s): "
              f"Metadata for all median {statistics.median(lat):.1f} ms, max {max(lat):.1f} ms")
        b.stop()
        serving, complete = _restart_timed(b, parts)
        rss = psutil.Process(b.proc.pid).memory_info().rss >> 20
        print(f"metadata restart with {parts} partitions: serving in {serving:.2f} s, all metadata in "
              f"{complete:.2f} s, broker RSS {rss} MB")
        if args.no_crash:
            return
        _metadata_crash(args, b, work / "metadata", md)
    finally:
        b.stop()


def _restart_timed(b: Broker, parts: int) -> tuple[float, float]:
    """Start the broker: (seconds until it answers, until Metadata lists all `parts` partitions)."""
    t0 = time.perf_counter()
    b.start(timeout=120)
    serving = time.perf_counter() - t0
    with KafkaClient(b.bootstrap, timeout=30) as c:
        while True:
            md, _ = c.metadata()
            if sum(len(t.partitions) for t in md.topics.values()) >= parts:
                break
    return serving, time.perf_counter() - t0


def _metadata_crash(args, b: Broker, data: Path, md) -> None:
    """Records into every partition, SIGKILL, a torn tail on every 10th partition, restart."""
    tps = [(t.name, p.index) for t in md.topics.values() for p in t.partitions]
    parts = len(tps)
    p = _producer(b.bootstrap, acks="1")
    payload = b"z" * args.size
    per = max(1, args.crash_records // parts)
    for r in range(per):
        for topic, part in tps:
            while True:
                try:
                    p.produce(topic, payload, partition=part)
                    break
                except BufferError:
                    p.poll(0.01)
        p.poll(0)
    if p.flush(120):
        raise TimeoutError("records not delivered in time")
    del p   # closed now, not reconnecting (and logging) while the broker is down
    with KafkaClient(b.bootstrap, timeout=60) as c:
        before = c._list_offsets({t: None for t in md.topics}, -1)
    os.kill(b.proc.pid, signal.SIGKILL)
    b.proc.wait()
    b._log.close()
    b.proc = None
    torn = 0
    for i, (topic, part) in enumerate(sorted(tps)):
        if i % 10 == 0:   # a batch header promising more bytes than the file holds: a torn write
            seg = max((data / f"{topic}-{part}").glob("*.log"))
            with open(seg, "ab") as f:
                f.write((before[(topic, part)]).to_bytes(8, "big") + (500).to_bytes(4, "big") + b"\0" * 40)
            torn += 1
    serving, complete = _restart_timed(b, parts)
    t0 = time.perf_counter()
    with KafkaClient(b.bootstrap, timeout=60) as c:
        after = c._list_offsets({t: None for t in md.topics}, -1)
    checked = time.perf_counter() - t0
    wrong = sum(1 for tp in tps if after.get(tp) != before[tp])
    rss = psutil.Process(b.proc.pid).memory_info().rss >> 20
    print(f"metadata crash (SIGKILL) with {parts} partitions holding {per * parts:,} records, {torn} torn "
          f"tails: serving in {serving:.2f} s, all metadata in {complete:.2f} s; end offsets of all "
          f"partitions {'correct' if not wrong else f'WRONG for {wrong}'} ({checked:.2f} s more), broker RSS {rss} MB")
    if wrong:
        raise SystemExit(1)


def recovery(args, work: Path) -> None:
    b = Broker(work / "recovery", work / "recovery.log")
    b.start()
    try:
        _create(b.bootstrap, [NewTopic("big", 1, 1)])
        records = args.bytes // (args.size + 20)
        deadline = time.monotonic() + args.timeout
        rate = _fill(b.bootstrap, "big", records, args.size, deadline)
        with KafkaClient(b.bootstrap) as c:
            end = c.end_offsets("big")[0]
        size = sum(f.stat().st_size for f in (work / "recovery").rglob("*") if f.is_file())
        os.kill(b.proc.pid, signal.SIGKILL)
        b.proc.wait()
        b._log.close()
        b.proc = None
        t0 = time.perf_counter()
        b.start(timeout=120)
        serving = time.perf_counter() - t0
        c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": "rec", "enable.auto.commit": False})
        c.assign([TopicPartition("big", 0, end - 1)])
        while time.monotonic() < deadline:
            m = c.poll(1.0)
            if m is not None and not m.error():
                break
        fetched = time.perf_counter() - t0
        c.close()
        print(f"recovery journal {size / 1e9:.2f} GB ({end:,} records, written at {rate:,.0f}/s), SIGKILL: "
              f"serving again in {serving:.2f} s, last record fetched {fetched:.2f} s after the restart")
    finally:
        b.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=["latency", "soak", "metadata", "recovery", "all"])
    ap.add_argument("--rate", type=int, default=5000)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--size", type=int, default=100)
    ap.add_argument("--records", type=int, default=10_000_000)
    ap.add_argument("--topics", type=int, default=1000)
    ap.add_argument("--partitions", type=int, default=10)
    ap.add_argument("--bytes", type=int, default=1_000_000_000)
    ap.add_argument("--crash-records", type=int, default=100_000, help="metadata: records before the SIGKILL")
    ap.add_argument("--no-crash", action="store_true", help="metadata: the clean restart only")
    ap.add_argument("--timeout", type=float, default=900, help="bound for each phase (seconds)")
    args = ap.parse_args()
    todo = ["latency", "metadata", "recovery", "soak"] if args.what == "all" else [args.what]
    with tempfile.TemporaryDirectory(prefix="sandbox-limits-") as tmp:
        for what in todo:
            globals()[what](args, Path(tmp))


if __name__ == "__main__":
    main()
