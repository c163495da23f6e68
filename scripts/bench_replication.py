#!/usr/bin/env python3
"""Replication benchmarks (issue 11) against one real cluster: a `sandbox coordinator` and 3
`sandbox broker` processes on free 127.0.0.1 ports in a temporary folder, the default session
timeout (9000 ms), no supervisor. Every round, in this order:

  throughput  one confluent-kafka producer, --records records of --size B (linger.ms=5,
              batch.size=1 MB): RF 1 acks=1, then RF 3 (min.insync.replicas 2) acks=all, both led
              by broker 1; records/s of each and the ratio; then RF 1 acks=1 again with a consumer
              reading along (`python -m sandbox.bench_worker consume`, its own process, fetching
              the empty partition before the first record), its rate against the first phase's
  cpu         psutil user+system CPU of each broker's process tree during the produce phases
              (waiting until the cluster is idle again, so the followers' catching up counts):
              the leader's extra CPU per follower ((RF3 - RF1) / 2), each follower's own CPU, the
              leader's CPU for serving one consumer the same records afterwards (partition assigned,
              from the beginning, fetch.queue.backoff.ms=10) and for one reading along (the third
              phase less the first: a follower's conditions), all per million records; with --perf
              also each broker's CPU net of writing into the page cache (scripts/perf_split.py)
  latency     acks=all, RF 3, paced at --rate records/s for --seconds s: produce() to delivery
              callback, p50/p99/max, in three producer configurations: librdkafka's defaults
              (linger.ms=5: records sent together every 5 ms, as Java clients do since Kafka 4.0),
              linger.ms=0 (every record its own request, up to 5 in flight) and linger.ms=0 with
              max.in.flight.requests.per.connection=1 (records queue into the next request)
  failover    --kills times: the leader of an RF-3 partition SIGKILLed while a producer (acks=all,
              request.timeout.ms=1000, socket.timeout.ms=2000, topic.metadata.refresh.interval.ms
              --refresh-ms) sends a record every 10 ms: seconds until a record sent after the kill is
              acknowledged (by the new leader), and until the metadata names a new leader; the broker
              restarted and the partition fully in sync before the next one. Then --pauses times the
              same with SIGSTOP (waits for the session timeout), SIGCONT after.

--repeat K runs K rounds on the same cluster and prints medians. Every wait is bounded; every
process is stopped on exit, also on error or Ctrl-C.

    python scripts/bench_replication.py [--records 2000000] [--size 100] [--rate 5000] [--seconds 10]
                                        [--kills 5] [--pauses 2] [--refresh-ms 1000] [--repeat 1]
                                        [--only throughput,latency,failover] [--json] [--keep] [--perf]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_broker import Broker, consume_phase, produce_phase, warm_page_cache  # noqa: E402
from perf_split import PerfRecorder, available as perf_available  # noqa: E402

from confluent_kafka import Producer  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

from sandbox.bench_worker import prefetch_conf  # noqa: E402

BROKERS = (1, 2, 3)
RF3_CONFIG = {"min.insync.replicas": "2"}


class Coordinator(Broker):
    def command(self) -> list[str]:
        return [sys.executable, "-m", "sandbox", "coordinator", "--port", str(self.port),
                "--data-dir", str(self.data_dir)]


class Member(Broker):
    """One `sandbox broker --id N` registered with the coordinator; keeps its port over restarts."""

    def __init__(self, n: int, coordinator_port: int, root: Path) -> None:
        super().__init__(root / f"broker-{n}", root / f"broker-{n}.log")
        self.n = n
        self.coordinator_port = coordinator_port

    def command(self) -> list[str]:
        return [sys.executable, "-m", "sandbox", "broker", "--id", str(self.n), "--port", str(self.port),
                "--data-dir", str(self.data_dir), "--coordinator", f"127.0.0.1:{self.coordinator_port}",
                "--log-level", "WARNING"]

    def signal(self, signo: int) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signo)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.signal(signal.SIGCONT)  # a paused broker cannot act on SIGTERM
            except OSError:
                pass
        super().stop()


class Cluster:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.coordinator = Coordinator(root / "coordinator", root / "coordinator.log")
        self.brokers = {n: Member(n, self.coordinator.port, root) for n in BROKERS}

    @property
    def bootstrap(self) -> str:
        return ",".join(b.bootstrap for b in self.brokers.values())

    def start(self) -> None:
        self.coordinator.start()
        for b in self.brokers.values():
            b.start()
        wait_for(lambda: len(self.admin().list_topics(timeout=3).brokers) == len(BROKERS), 30, "every broker registered")

    def stop(self) -> None:
        for b in [*self.brokers.values(), self.coordinator]:
            try:
                b.stop()
            except Exception as e:  # noqa: BLE001 - keep stopping the others
                print(f"stopping: {type(e).__name__}: {e}", file=sys.stderr)

    def admin(self) -> AdminClient:
        return AdminClient({"bootstrap.servers": self.bootstrap, "socket.timeout.ms": 3000})

    def create(self, name: str, replicas: list[int], config: dict | None = None) -> None:
        a = self.admin()  # kept until the answer is in: its futures fail when it is destroyed
        f = a.create_topics([NewTopic(name, num_partitions=1, replica_assignment=[replicas], config=config or {})],
                            operation_timeout=10, request_timeout=15)
        f[name].result(timeout=20)
        del a
        wait_for(lambda: self.partition(name)[0] == replicas[0], 20, f"{name} led by broker {replicas[0]}")

    def delete(self, *topics: str) -> None:
        """Delete the topics and wait until no broker holds their folders."""
        admin = self.admin()   # kept until the answers are in: a destroyed client fails them
        for f in admin.delete_topics(list(topics)).values():
            f.result(30)
        wait_for(lambda: not any(d.name.startswith(tuple(f"{t}-" for t in topics))
                                 for b in self.brokers.values() for d in b.data_dir.iterdir()),
                 30, f"{', '.join(topics)} deleted on every broker")

    def partition(self, topic: str) -> tuple[int, list[int], list[int]]:
        p = self.admin().list_topics(topic=topic, timeout=3).topics[topic].partitions[0]
        return p.leader, sorted(p.replicas), sorted(p.isrs)

    def in_sync(self, topic: str) -> bool:
        leader, replicas, isr = self.partition(topic)
        return leader >= 0 and isr == replicas

    def cpu(self) -> dict[int, float]:
        return {n: b.cpu_seconds() for n, b in self.brokers.items()}

    def settle(self, window: float = 0.5, quiet: int = 3, idle_cpu: float = 0.02, max_s: float = 30.0) -> dict[int, float]:
        """Wait until every broker is idle (quiet windows in a row), return their CPU seconds."""
        deadline = time.monotonic() + max_s
        last, idle = self.cpu(), 0
        while idle < quiet and time.monotonic() < deadline:
            time.sleep(window)
            now = self.cpu()
            idle = idle + 1 if all(now[n] - last[n] < idle_cpu for n in now) else 0
            last = now
        return last


def _attempt(predicate) -> tuple[bool, Exception | None]:
    try:
        return bool(predicate()), None
    except Exception as e:  # noqa: BLE001 - a cluster in flux: the caller asks again
        return False, e


def wait_for(predicate, timeout: float, what: str, every: float = 0.1) -> None:
    """Until predicate() is true (errors count as not yet); TimeoutError after `timeout` s."""
    deadline = time.monotonic() + timeout
    done, last = _attempt(predicate)
    while not done and time.monotonic() < deadline:
        time.sleep(every)
        done, last = _attempt(predicate)
    if not done:
        raise TimeoutError(f"{what}: not within {timeout} s (last error: {last})")


# ---- throughput and CPU ------------------------------------------------------------------------

class Reader:
    """`python -m sandbox.bench_worker consume` reading a topic from its beginning, started
    before the first record: returns once it is fetching (its first progress line, then 0.5 s)."""

    def __init__(self, bootstrap: str, topic: str, records: int, timeout: float) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "sandbox.bench_worker", "consume", "--bootstrap", bootstrap, "--topic", topic,
             "--records", str(records), "--timeout", str(timeout)],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.lines: list[str] = []
        self._seen = threading.Event()
        self._drain = threading.Thread(target=self._read, daemon=True)
        self._drain.start()
        if not self._seen.wait(30) or self.proc.poll() is not None:
            self.stop()
            raise RuntimeError(f"the consumer reading along did not start: {self._last()}")
        time.sleep(0.5)

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line)
            self._seen.set()
        self._seen.set()

    def _last(self) -> dict:
        try:
            return json.loads(self.lines[-1]) if self.lines else {"error": "no output"}
        except ValueError:
            return {"error": self.lines[-1].strip()}

    def result(self, timeout: float) -> int:
        """How many records it read (raises if it failed or did not finish within `timeout` s)."""
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"the consumer reading along did not finish within {timeout:.0f} s") from None
        self._drain.join(5)
        last = self._last()
        if "result" not in last:
            raise RuntimeError(f"the consumer reading along failed: {last.get('error', last)}")
        return int(last["result"]["records"])

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


def throughput_cpu(c: Cluster, rnd: int, records: int, size: int, timeout: float, warm: bool = True,
                   perf: bool = False) -> dict:
    rf1, rf3, rf1c = f"rf1-{rnd}", f"rf3-{rnd}", f"rf1c-{rnd}"
    c.create(rf1, [1])
    c.create(rf3, [1, 2, 3], RF3_CONFIG)
    c.create(rf1c, [1])
    out: dict = {}
    consume_conf = {"receive.message.max.bytes": 1_000_000_000, **prefetch_conf()}
    for name, topic, acks in (("rf1", rf1, "1"), ("rf3", rf3, "all"), ("rf1c", rf1c, "1")):
        # rf1c: a consumer reading along as the records are written, as a follower does (its
        # own process: a thread would share the producer's GIL and change its pace)
        reader = Reader(c.brokers[1].bootstrap, topic, records, timeout + 60) if name == "rf1c" else None
        rec = None
        try:
            if warm:   # as much as the phase writes on all brokers, with room for batch overhead
                warm_page_cache(c.root, (3 if name == "rf3" else 1) * records * (size + 64) * 5 // 4)
            cpu0 = c.settle()
            rec = PerfRecorder({b: c.brokers[b].proc.pid for b in BROKERS}, c.root, name) if perf else None
            t0 = time.perf_counter()
            n = produce_phase(c.bootstrap, topic, records, size, acks, time.monotonic() + timeout)
            secs = time.perf_counter() - t0
            if reader is not None and (read := reader.result(timeout)) != n:
                raise RuntimeError(f"the consumer reading along read {read} of {n} records")
            if name == "rf3":
                wait_for(lambda: c.in_sync(rf3), 60, f"{rf3} in sync after the produce")
            cpu1 = c.settle()
        finally:   # perf and the consumer stopped also when the phase failed
            if reader is not None:
                reader.stop()
            shares = rec.stop() if rec is not None else {}
        out[f"{name}_rps"] = n / secs
        for b in BROKERS:
            out[f"{name}_cpu_b{b}_per_m"] = (cpu1[b] - cpu0[b]) / n * 1e6
            if shares.get(b) is not None:   # the CPU of writing into the page cache, and the rest
                out[f"{name}_write_cpu_b{b}_per_m"] = out[f"{name}_cpu_b{b}_per_m"] * shares[b]
                out[f"{name}_own_cpu_b{b}_per_m"] = out[f"{name}_cpu_b{b}_per_m"] * (1 - shares[b])
    cpu0, t0 = c.settle(), time.perf_counter()
    n = consume_phase(c.brokers[1].bootstrap, rf3, records, time.monotonic() + timeout, group=False,
                      conf=consume_conf)
    secs = time.perf_counter() - t0
    cpu1 = c.settle()
    out["consume_rps"] = n / secs
    out["consume_leader_cpu_per_m"] = (cpu1[1] - cpu0[1]) / n * 1e6
    out["rf3_over_rf1"] = out["rf3_rps"] / out["rf1_rps"]
    out["leader_extra_cpu_per_follower_per_m"] = (out["rf3_cpu_b1_per_m"] - out["rf1_cpu_b1_per_m"]) / 2
    out["follower_cpu_per_m"] = statistics.mean([out["rf3_cpu_b2_per_m"] - out["rf1_cpu_b2_per_m"],
                                                 out["rf3_cpu_b3_per_m"] - out["rf1_cpu_b3_per_m"]])
    if "rf3_own_cpu_b2_per_m" in out and "rf3_own_cpu_b3_per_m" in out:
        out["follower_write_cpu_per_m"] = statistics.mean([out["rf3_write_cpu_b2_per_m"], out["rf3_write_cpu_b3_per_m"]])
        out["follower_own_cpu_per_m"] = statistics.mean([out["rf3_own_cpu_b2_per_m"] - out["rf1_cpu_b2_per_m"],
                                                         out["rf3_own_cpu_b3_per_m"] - out["rf1_cpu_b3_per_m"]])
    if "rf3_own_cpu_b1_per_m" in out and "rf1_own_cpu_b1_per_m" in out:
        out["leader_extra_own_cpu_per_follower_per_m"] = (out["rf3_own_cpu_b1_per_m"] - out["rf1_own_cpu_b1_per_m"]) / 2
    # the leader serving a consumer that reads along (the RF 1 phase again, with the consumer)
    out["consume_along_cpu_per_m"] = out["rf1c_cpu_b1_per_m"] - out["rf1_cpu_b1_per_m"]
    out["rf1c_over_rf1"] = out["rf1c_rps"] / out["rf1_rps"]
    if "rf1c_own_cpu_b1_per_m" in out and "rf1_own_cpu_b1_per_m" in out:
        out["consume_along_own_cpu_per_m"] = out["rf1c_own_cpu_b1_per_m"] - out["rf1_own_cpu_b1_per_m"]
    if warm:   # free the round's page cache for the next one (see warm_page_cache)
        c.delete(rf1, rf3, rf1c)
    return out


# ---- latency -------------------------------------------------------------------------------------

def latency(c: Cluster, rnd: int, rate: int, seconds: float, size: int, tag: str = "", **conf) -> dict:
    topic = f"lat{tag}-{rnd}"
    c.create(topic, [1, 2, 3], RF3_CONFIG)
    p = Producer({"bootstrap.servers": c.bootstrap, "acks": "all",
                  "queue.buffering.max.messages": 1_000_000, "message.timeout.ms": 60_000, **conf})
    lat: list[float] = []
    errors: list = []
    sent_at: dict[int, float] = {}

    def done(err, msg):
        if err is None:
            lat.append(time.perf_counter() - sent_at.pop(int(msg.key())))
        else:
            errors.append(err)

    payload = b"y" * size
    for _ in range(200):  # warm the connections and metadata
        p.produce(topic, payload, partition=0)
    p.flush(30)
    n = int(rate * seconds)
    t0 = time.perf_counter()
    for i in range(n):
        due = t0 + i / rate
        while (now := time.perf_counter()) < due:
            p.poll(max(0.0, min(due - now, 0.001)))
        sent_at[i] = time.perf_counter()
        p.produce(topic, payload, key=str(i).encode(), partition=0, on_delivery=done)
        p.poll(0)
    p.flush(120)  # a producer that falls behind the pace drains its backlog here, counted in the latencies
    if errors or len(lat) != n:
        raise RuntimeError(f"latency: {len(lat)} of {n} delivered, {len(errors)} errors {errors[:1]}")
    ms = sorted(x * 1000 for x in lat)
    q = lambda f: ms[min(len(ms) - 1, int(f * len(ms)))]  # noqa: E731
    return {f"lat{tag}_p50_ms": q(0.5), f"lat{tag}_p99_ms": q(0.99), f"lat{tag}_max_ms": ms[-1],
            f"lat{tag}_achieved_rps": n / (time.perf_counter() - t0)}


# ---- failover ------------------------------------------------------------------------------------

def failover(c: Cluster, topic: str, how: str, refresh_ms: int, timeout: float = 40.0) -> dict:
    """One leader loss (how: kill or pause) under a producer sending every 10 ms."""
    old = c.partition(topic)[0]
    victim = c.brokers[old]
    p = Producer({"bootstrap.servers": c.bootstrap, "acks": "all", "linger.ms": 0, "request.timeout.ms": 1000,
                  "message.timeout.ms": 60_000, "retry.backoff.ms": 50, "retry.backoff.max.ms": 200,
                  "topic.metadata.refresh.interval.ms": refresh_ms, "socket.timeout.ms": 2000})
    acked: list[float] = []  # perf_counter of every ack of a record sent after the loss
    t_loss = [0.0]
    errs: list = []

    def done(err, msg, sent):
        if err is not None:
            errs.append((round(time.perf_counter() - t_loss[0], 2), str(err)))
        if err is None and t_loss[0] and sent >= t_loss[0]:
            acked.append(time.perf_counter())

    for _ in range(20):
        p.produce(topic, b"f" * 100, partition=0)
    p.flush(10)
    moved: list[float] = []

    def watch():  # when the metadata names another leader
        a = c.admin()
        while not moved and time.perf_counter() < t_loss[0] + timeout:
            try:
                lead = a.list_topics(topic=topic, timeout=1).topics[topic].partitions[0].leader
                if lead not in (old, -1):
                    moved.append(time.perf_counter())
            except Exception:  # noqa: BLE001 - brokers in flux
                pass
            time.sleep(0.05)

    t_loss[0] = time.perf_counter()
    if how == "kill":
        victim.proc.send_signal(signal.SIGKILL)
        victim.proc.wait(10)
    else:
        victim.signal(signal.SIGSTOP)
    w = threading.Thread(target=watch, daemon=True)
    w.start()
    try:
        while not acked and time.perf_counter() < t_loss[0] + timeout:
            sent = time.perf_counter()
            p.produce(topic, b"f" * 100, partition=0, on_delivery=lambda e, m, s=sent: done(e, m, s))
            p.poll(0.01)
        w.join(timeout + 5)
    finally:
        if how == "kill":
            victim._log.close()
            victim.proc = None
            victim.start()
        else:
            victim.signal(signal.SIGCONT)
    p.flush(30)
    if not acked:
        raise TimeoutError(f"{how}: no record acknowledged within {timeout} s of losing broker {old}")
    wait_for(lambda: c.in_sync(topic), 60, f"{topic} back in sync after the {how}", every=0.2)
    return {"served_s": acked[0] - t_loss[0], "leader_moved_s": moved[0] - t_loss[0] if moved else None,
            "old_leader": old, "new_leader": c.partition(topic)[0], "errors": errs[:3]}


# ---- report --------------------------------------------------------------------------------------

def med(values: list) -> float | None:
    vals = [v for v in values if v is not None]
    return statistics.median(vals) if vals else None


def report(rounds: list[dict], kills: list[dict], pauses: list[dict]) -> tuple[str, dict]:
    keys = sorted({k for r in rounds for k in r})
    m = {k: med([r.get(k) for r in rounds]) for k in keys}
    for name, runs in (("kill", kills), ("pause", pauses)):
        m[f"{name}_served_s"] = med([r["served_s"] for r in runs])
        m[f"{name}_served_max_s"] = max((r["served_s"] for r in runs), default=None)
        m[f"{name}_leader_moved_s"] = med([r["leader_moved_s"] for r in runs])

    def f(k, fmt="{:.3f}"):
        return "-" if m.get(k) is None else fmt.format(m[k])

    def ok(cond):
        return "n/a" if cond is None else ("met" if cond else "MISSED")

    def below(a, b):   # None when either figure is missing (perf recorded nothing, say)
        return None if m.get(a) is None or m.get(b) is None else m[a] <= m[b]

    lines = [f"medians of {len(rounds)} round(s), {len(kills)} kills, {len(pauses)} pauses",
             f"failover SIGKILL: served again after {f('kill_served_s')} s (max {f('kill_served_max_s')}), "
             f"metadata moved after {f('kill_leader_moved_s')} s   target <= 3 s: "
             + ok(None if m['kill_served_max_s'] is None else m['kill_served_max_s'] <= 3),
             f"failover SIGSTOP: served again after {f('pause_served_s')} s (max {f('pause_served_max_s')}), "
             f"metadata moved after {f('pause_leader_moved_s')} s   (no target)",
             f"throughput: RF1 acks=1 {f('rf1_rps', '{:,.0f}')} rec/s, RF3 acks=all {f('rf3_rps', '{:,.0f}')} rec/s "
             f"= {f('rf3_over_rf1', '{:.2f}')}   target >= 0.50: " + ok(None if m.get('rf3_over_rf1') is None else m['rf3_over_rf1'] >= 0.5),
             f"CPU s per 1M records: leader RF1 acks=1 {f('rf1_cpu_b1_per_m')}, RF3 acks=all {f('rf3_cpu_b1_per_m')}, "
             f"extra per follower {f('leader_extra_cpu_per_follower_per_m')}; followers' own "
             f"{f('rf3_cpu_b2_per_m')} and {f('rf3_cpu_b3_per_m')} (minus their RF1-phase idle: "
             f"{f('follower_cpu_per_m')}); leader serving one consumer {f('consume_leader_cpu_per_m')} "
             f"({f('consume_rps', '{:,.0f}')} rec/s)   target follower <= consumer: "
             + ok(None if m.get('rf3_cpu_b2_per_m') is None
                  else max(m['rf3_cpu_b2_per_m'], m['rf3_cpu_b3_per_m']) <= m['consume_leader_cpu_per_m']),
             *([f"  net of writing into the page cache (perf, --perf): leader RF1 {f('rf1_own_cpu_b1_per_m')}, "
                f"RF3 {f('rf3_own_cpu_b1_per_m')}, extra per follower {f('leader_extra_own_cpu_per_follower_per_m')}; "
                f"followers {f('follower_own_cpu_per_m')} (their writes: {f('follower_write_cpu_per_m')}; the leader's "
                f"RF1 writes {f('rf1_write_cpu_b1_per_m')})   follower net of writes <= consumer: "
                + ok(m['follower_own_cpu_per_m'] <= m['consume_leader_cpu_per_m'])]
               if m.get("follower_own_cpu_per_m") is not None and m.get("consume_leader_cpu_per_m") is not None else []),
             *([f"  like for like, a consumer reading along as the records are written (the RF1 phase again, "
                f"with it, at {f('rf1c_over_rf1', '{:.2f}')} x its rate): the leader's CPU for it "
                f"{f('consume_along_cpu_per_m')}"
                + (f", net of writes {f('consume_along_own_cpu_per_m')}   follower net of writes <= it: "
                   + ok(below('follower_own_cpu_per_m', 'consume_along_own_cpu_per_m'))
                   + "; leader's extra per follower net of writes <= it: "
                   + ok(below('leader_extra_own_cpu_per_follower_per_m', 'consume_along_own_cpu_per_m'))
                   if m.get("consume_along_own_cpu_per_m") is not None else "")]
               if m.get("consume_along_cpu_per_m") is not None else []),
             f"latency acks=all RF3, librdkafka's defaults (linger.ms=5): p50 {f('lat_p50_ms', '{:.2f}')} ms, "
             f"p99 {f('lat_p99_ms', '{:.2f}')} ms, max {f('lat_max_ms', '{:.2f}')} ms at "
             f"{f('lat_achieved_rps', '{:,.0f}')} rec/s   target p99 <= 10 ms: "
             + ok(None if m.get('lat_p99_ms') is None else m['lat_p99_ms'] <= 10),
             f"latency, linger.ms=0 (every record its own request, 5 in flight): "
             f"p50 {f('lat_linger0_p50_ms', '{:.2f}')} ms, p99 {f('lat_linger0_p99_ms', '{:.2f}')} ms, "
             f"max {f('lat_linger0_max_ms', '{:.2f}')} ms at {f('lat_linger0_achieved_rps', '{:,.0f}')} rec/s",
             f"latency, linger.ms=0 and max.in.flight.requests.per.connection=1 (records queue into the next "
             f"request): p50 {f('lat_inflight1_p50_ms', '{:.2f}')} ms, p99 {f('lat_inflight1_p99_ms', '{:.2f}')} ms, "
             f"max {f('lat_inflight1_max_ms', '{:.2f}')} ms at {f('lat_inflight1_achieved_rps', '{:,.0f}')} rec/s"]
    return "\n".join(lines), {"medians": m, "rounds": rounds, "kills": kills, "pauses": pauses}


def _sigterm(_signo, _frame):
    raise KeyboardInterrupt


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    # 2M: a phase's CPU is then some 30-40 ticks of the 10 ms clock processes are counted in per
    # broker; with 500,000 a follower's and a consumer's figures were a handful of ticks apart
    ap.add_argument("--records", type=int, default=2_000_000, help="records per produce phase")
    ap.add_argument("--size", type=int, default=100, help="value size in bytes")
    ap.add_argument("--rate", type=int, default=5000, help="latency: records/s")
    ap.add_argument("--seconds", type=float, default=10.0, help="latency: seconds")
    ap.add_argument("--kills", type=int, default=5, help="SIGKILL failovers per round")
    ap.add_argument("--pauses", type=int, default=2, help="SIGSTOP failovers per round")
    ap.add_argument("--refresh-ms", type=int, default=1000,
                    help="failover producer's topic.metadata.refresh.interval.ms (how soon it asks who leads now)")
    ap.add_argument("--only", default="throughput,latency,failover", help="comma-separated subset of the phases")
    ap.add_argument("--repeat", type=int, default=1, help="rounds; the report shows medians")
    ap.add_argument("--timeout", type=float, default=300.0, help="deadline for each produce/consume phase, s")
    ap.add_argument("--json", action="store_true", help="also print the medians and every round as JSON")
    ap.add_argument("--keep", action="store_true", help="keep the data dir and logs")
    ap.add_argument("--no-warm", action="store_true",
                    help="do not write and delete a scratch file before each produce phase (see "
                         "warm_page_cache in bench_broker.py: on a VM that backs memory lazily the "
                         "CPU figures then include the host's first-touch cost of fresh page cache)")
    ap.add_argument("--perf", action="store_true",
                    help="also sample each broker with Linux perf during the produce phases and report "
                         "its CPU net of writing into the page cache (scripts/perf_split.py says why)")
    args = ap.parse_args()
    if args.perf and (why := perf_available()):
        ap.error(f"--perf: {why}")
    if min(args.records, args.repeat, args.rate) < 1 or min(args.kills, args.pauses) < 0 or args.seconds <= 0:
        ap.error("--records, --repeat and --rate must be >= 1, --kills/--pauses >= 0, --seconds > 0")
    only = {p.strip() for p in args.only.split(",") if p.strip()}
    if not only or only - {"throughput", "latency", "failover"}:
        ap.error("--only takes a comma-separated subset of throughput,latency,failover")
    if os.name != "nt":
        signal.signal(signal.SIGTERM, _sigterm)
    root = Path(tempfile.mkdtemp(prefix="bench-replication-"))
    cluster = Cluster(root)
    rounds: list[dict] = []
    kills: list[dict] = []
    pauses: list[dict] = []
    try:
        cluster.start()
        print(f"coordinator + brokers {list(BROKERS)} on {cluster.bootstrap}; default session timeout; "
              f"{args.records:,} records of {args.size} B per produce phase; {args.repeat} round(s)", flush=True)
        cluster.create("failover", [1, 2, 3], RF3_CONFIG)
        for rnd in range(1, args.repeat + 1):
            r = throughput_cpu(cluster, rnd, args.records, args.size, args.timeout, not args.no_warm,
                               args.perf) if "throughput" in only else {}
            if "latency" in only:
                r.update(latency(cluster, rnd, args.rate, args.seconds, args.size))
                r.update(latency(cluster, rnd, args.rate, args.seconds, args.size, "_linger0", **{"linger.ms": 0}))
                r.update(latency(cluster, rnd, args.rate, args.seconds, args.size, "_inflight1",
                                 **{"linger.ms": 0, "max.in.flight.requests.per.connection": 1}))
            if r:
                rounds.append(r)
                print(f"round {rnd}: " + ", ".join(f"{k} {v:.3f}" for k, v in r.items()), flush=True)
            for how, n, runs in (("kill", args.kills, kills), ("pause", args.pauses, pauses)):
                for _ in range(n if "failover" in only else 0):
                    fo = failover(cluster, "failover", how, args.refresh_ms)
                    runs.append(fo)
                    moved = "-" if fo["leader_moved_s"] is None else f"{fo['leader_moved_s']:.2f}"
                    print(f"round {rnd} {how}: leader {fo['old_leader']} lost (leader once back in sync: "
                          f"{fo['new_leader']}), served again "
                          f"after {fo['served_s']:.2f} s, metadata moved after {moved} s", flush=True)
        text, data = report(rounds, kills, pauses)
        print()
        print(text)
        if args.json:
            print(json.dumps(data, indent=2))
        return 0
    except KeyboardInterrupt:
        print("interrupted; stopping the cluster", file=sys.stderr)
        return 130
    except Exception as e:  # noqa: BLE001 - report, then stop everything
        print(f"bench failed: {type(e).__name__}: {e}", file=sys.stderr)
        for b in [cluster.coordinator, *cluster.brokers.values()]:
            print(f"--- {b.log_path.name}\n{b.log_text()[-1500:]}", file=sys.stderr)
        return 1
    finally:
        cluster.stop()
        if args.keep:
            print(f"data kept in {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
