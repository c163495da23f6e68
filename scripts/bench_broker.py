#!/usr/bin/env python3
"""Throughput benchmark: our broker with confluent-kafka, producing then consuming one partition.

Starts its own broker (`python -m sandbox broker`) on a free 127.0.0.1 port in a temporary data
dir, produces --records records of --size bytes into one partition, consumes them back with a
consumer group, and prints records/s for each phase and the broker process's CPU seconds per
million records (psutil user+system of the broker pid, before/after each phase). The broker is
stopped on exit, also on error or Ctrl-C.

    python scripts/bench_broker.py [--records 1000000] [--size 100] [--acks 1] [--timeout 600]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from sandbox.bench_worker import prefetch_conf
from sandbox.runner.probe import api_versions_round_trip

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def api_versions_ok(port: int) -> bool:
    return api_versions_round_trip("127.0.0.1", port, 0.5).ok


class Broker:
    def __init__(self, data_dir: Path, log_path: Path) -> None:
        self.port = free_port()
        self.data_dir = data_dir
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        """The broker's command line (scripts/bench_peers.py overrides it for other brokers)."""
        return [sys.executable, "-m", "sandbox", "broker", "--port", str(self.port),
                "--data-dir", str(self.data_dir), "--log-level", "WARNING"]

    def start(self, timeout: float = 30.0) -> None:
        cmd = self.command()
        self._log = open(self.log_path, "ab")
        env = dict(os.environ)
        env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, cwd=self.log_path.parent,
                                     env=env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"broker exited with {self.proc.returncode}:\n{self.log_text()}")
            if api_versions_ok(self.port):
                return
            time.sleep(0.05)
        raise RuntimeError(f"broker not ready in {timeout}s:\n{self.log_text()}")

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def cpu_seconds(self) -> float:
        return sum(self.cpu_split())

    def cpu_split(self) -> tuple[float, float]:
        """(user, system) CPU seconds of the broker process and its children so far."""
        assert self.proc is not None
        root = psutil.Process(self.proc.pid)
        user = system = 0.0
        for p in [root] + root.children(recursive=True):
            try:
                t = p.cpu_times()
            except psutil.NoSuchProcess:
                continue
            user += t.user
            system += t.system
        return user, system

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        self.proc = None


def warm_page_cache(folder: Path, nbytes: int) -> float:
    """Write `nbytes` to a scratch file in `folder`, then delete it; returns the seconds it took.

    On a virtual machine whose host backs guest memory lazily (this project's CI and development
    machines: Firecracker), the first write into a never-used page of the page cache costs ~10x
    the write into a page that was used and freed (measured: 300 MB in 0.69-0.72 s of system CPU
    against 0.06 s). A broker that writes a phase's records then pays the host's cost, not its
    own, and the cost grows as a run takes more fresh memory. Freed pages were cheap for at least
    30 s on the machines this was measured on, so writing and deleting as much as the next phase
    will write, right before it, made the phase measure the broker. Where the host takes freed
    memory back within seconds (virtio-balloon free page reporting, as on the machines of
    2026-12-04: 250 MB written 2 s after freeing 1.2 GB cost 0.31 s, 5 s after 0.73 s, right after
    freeing 220 MB 0.07 s) this helps only now and then: bench_replication.py --perf then
    reports each broker's CPU net of its writes (scripts/perf_split.py). On a workstation this
    changes nothing."""
    t0 = time.perf_counter()
    chunk = b"\0" * (1 << 20)
    path = folder / "page-cache-warmup.tmp"
    fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
    try:
        for i in range(max(1, nbytes >> 20)):
            os.pwrite(fd, chunk, i << 20)
    finally:
        os.close(fd)
        os.unlink(path)
    return time.perf_counter() - t0


def produce_phase(bootstrap: str, topic: str, records: int, size: int, acks: str, deadline: float) -> int:
    errors: list[KafkaError] = []
    delivered = 0

    def on_delivery(err, _msg):
        nonlocal delivered
        if err is not None:
            errors.append(err)
        else:
            delivered += 1

    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "batch.size": 1_000_000,
                  "acks": acks, "queue.buffering.max.messages": 500_000,
                  "queue.buffering.max.kbytes": 512 * 1024, "message.timeout.ms": 120_000})
    payload = b"x" * size
    for i in range(records):
        while True:
            try:
                p.produce(topic, value=payload, partition=0, on_delivery=on_delivery)
                break
            except BufferError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"produce: deadline passed after {i} records")
                p.poll(0.01)
        if i % 10_000 == 0:
            p.poll(0)
            if time.monotonic() > deadline:
                raise TimeoutError(f"produce: deadline passed after {i} records")
    while len(p) > 0 and time.monotonic() < deadline:
        p.poll(0.1)
    if len(p) > 0:
        raise TimeoutError(f"produce: {len(p)} records still unacknowledged at the deadline")
    if errors:
        raise RuntimeError(f"{len(errors)} delivery errors, first: {errors[0]}")
    del p
    if acks != "0" and delivered != records:
        raise RuntimeError(f"{delivered} delivery reports for {records} records")
    return delivered


def consume_phase(bootstrap: str, topic: str, records: int, deadline: float, group: bool = True,
                  conf: dict | None = None) -> int:
    """Consume `records` records of partition 0; group=False assigns the partition from the
    beginning instead of joining a group (no rebalance wait in the measurement; errors that are
    not fatal, e.g. about the group coordinator it then never needs, are reported once and skipped).
    conf: extra consumer settings."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "bench", "auto.offset.reset": "earliest",
                  "enable.auto.commit": False, "session.timeout.ms": 6000, "heartbeat.interval.ms": 500,
                  "fetch.max.bytes": 50 * 1024 * 1024, "max.partition.fetch.bytes": 10 * 1024 * 1024,
                  **prefetch_conf(), **(conf or {})})
    got = 0
    skipped: set[int] = set()
    try:
        if group:
            c.subscribe([topic])
        else:
            c.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        while got < records and time.monotonic() < deadline:
            for m in c.consume(num_messages=10_000, timeout=0.5):
                if m.error():
                    if m.error().code() == KafkaError._PARTITION_EOF:
                        continue
                    if not group and not m.error().fatal():
                        if m.error().code() not in skipped:
                            skipped.add(m.error().code())
                            print(f"consume: skipping a non-fatal client error: {m.error()}", file=sys.stderr)
                        continue
                    raise KafkaException(m.error())
                got += 1
    finally:
        c.close()
    if got < records:
        raise TimeoutError(f"consume: only {got} of {records} records before the deadline")
    return got


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--size", type=int, default=100, help="value size in bytes")
    ap.add_argument("--acks", default="1", choices=["0", "1", "all", "-1"])
    ap.add_argument("--timeout", type=float, default=600.0, help="deadline for each phase, seconds")
    ap.add_argument("--keep", action="store_true", help="keep the data dir")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench-broker-"))
    broker = Broker(tmp / "data", tmp / "broker.log")
    code = 1
    try:
        broker.start()
        topic = "bench"
        a = AdminClient({"bootstrap.servers": broker.bootstrap})
        a.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)],
                        operation_timeout=10, request_timeout=15)[topic].result(timeout=20)
        del a  # no idle admin connection left to complain when the broker stops
        print(f"broker pid {broker.proc.pid} on {broker.bootstrap}; {args.records:,} records of "
              f"{args.size} B, acks={args.acks}", flush=True)

        print("phase: produce", flush=True)
        cpu0, t0 = broker.cpu_split(), time.perf_counter()
        produced = produce_phase(broker.bootstrap, topic, args.records, args.size, args.acks,
                                 time.monotonic() + args.timeout)
        t1, cpu1 = time.perf_counter(), broker.cpu_split()
        print("phase: consume", flush=True)
        consumed = consume_phase(broker.bootstrap, topic, args.records, time.monotonic() + args.timeout)
        t2, cpu2 = time.perf_counter(), broker.cpu_split()
        print("phase: done", flush=True)

        mb = args.records * args.size / 1e6
        for name, n, secs, (ua, sa), (ub, sb) in (("produce", produced, t1 - t0, cpu0, cpu1),
                                                  ("consume", consumed, t2 - t1, cpu1, cpu2)):
            user, system = ub - ua, sb - sa
            cpu = user + system
            print(f"{name}: {n:,} records in {secs:.2f} s = {n / secs:,.0f} records/s "
                  f"({mb / secs:.1f} MB/s of values); broker CPU {cpu:.2f} s "
                  f"(user {user:.2f}, system {system:.2f}) = "
                  f"{cpu / n * 1e6:.2f} CPU s per million records", flush=True)
        code = 0
    except (Exception, KeyboardInterrupt) as e:
        print(f"bench failed: {type(e).__name__}: {e}", file=sys.stderr)
        print(broker.log_text(), file=sys.stderr)
    finally:
        broker.stop()
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print(f"data kept in {tmp}")
    return code


if __name__ == "__main__":
    sys.exit(main())
