"""A replicated cluster for the failover tests: one `sandbox coordinator` and N `sandbox broker`
processes on free ports (no supervisor, so a test alone decides who is killed or paused), plus
what the tests check afterwards: leaders and ISR from the metadata, every replica's bytes.

Every wait is bounded; all traffic goes to 127.0.0.1; stop() leaves no process behind.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient

from helpers import api_versions_ok, listen_port
from sandbox.log import LogConfig, PartitionLog

SESSION_MS = 4000   # a short coordinator session keeps the tests quick (the default is 9000)


class Cluster:
    def __init__(self, root: Path, brokers: int = 3, session_ms: int = SESSION_MS,
                 broker_options: list[str] | None = None, coordinator_options: list[str] | None = None) -> None:
        self.root = Path(root)
        self.session_ms = session_ms
        # below the ephemeral range: a kernel-chosen free port could become another process's
        # outgoing connection's local port before the broker binds it (seen in CI)
        self.coordinator_port = listen_port()
        base = listen_port(brokers)
        self.ports = {n: base + n - 1 for n in range(1, brokers + 1)}
        self.options = ["broker.session.timeout.ms=%d" % session_ms, "replica.lag.time.max.ms=10000"]
        self.options += broker_options or []
        self.coordinator_options = coordinator_options or []
        self.procs: dict[str, subprocess.Popen] = {}
        self.logs: list = []

    @property
    def bootstrap(self) -> str:
        return ",".join(f"127.0.0.1:{p}" for p in self.ports.values())

    def data_dir(self, n: int) -> Path:
        return self.root / f"broker-{n}"

    def _spawn(self, name: str, cmd: list[str]) -> None:
        log = open(self.root / f"{name}.log", "ab")
        self.logs.append(log)
        self.procs[name] = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)

    def _wait_ready(self, name: str, port: int, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.procs[name].poll() is not None:
                raise RuntimeError(f"{name} exited:\n{self.log_text(name)}")
            if api_versions_ok(port, 0.5):
                return
            time.sleep(0.05)
        raise RuntimeError(f"{name} not ready in {timeout}s:\n{self.log_text(name)}")

    def log_text(self, name: str) -> str:
        try:
            return (self.root / f"{name}.log").read_text(errors="replace")
        except OSError:
            return ""

    def start(self) -> "Cluster":
        self.root.mkdir(parents=True, exist_ok=True)
        self._start_coordinator()
        for n in self.ports:
            self.start_broker(n, wait=False)
        for n, port in self.ports.items():
            self._wait_ready(f"broker-{n}", port)
        self.wait_for(lambda: len(self.metadata_brokers()) == len(self.ports), 30, "every broker registered")
        return self

    def _start_coordinator(self) -> None:
        self._spawn("coordinator", [sys.executable, "-m", "sandbox", "coordinator", "--port",
                                    str(self.coordinator_port), "--data-dir", str(self.root / "coordinator"),
                                    "--session-timeout-ms", str(self.session_ms), *self.coordinator_options])
        self._wait_ready("coordinator", self.coordinator_port)

    def replace_coordinator_journal(self) -> None:
        """SIGKILL the coordinator, destroy its journal, start it afresh on the same port (what
        the supervisor does with a journal it cannot repair; here nothing puts topics back)."""
        p = self.procs.pop("coordinator")
        p.send_signal(signal.SIGKILL)
        p.wait(10)
        shutil.rmtree(self.root / "coordinator")
        self._start_coordinator()

    def start_broker(self, n: int, wait: bool = True) -> None:
        cmd = [sys.executable, "-m", "sandbox", "broker", "--id", str(n), "--port", str(self.ports[n]),
               "--data-dir", str(self.data_dir(n)), "--coordinator", f"127.0.0.1:{self.coordinator_port}"]
        for o in self.options:
            cmd += ["-o", o]
        self._spawn(f"broker-{n}", cmd)
        if wait:
            self._wait_ready(f"broker-{n}", self.ports[n])

    def kill(self, n: int) -> None:
        p = self.procs.pop(f"broker-{n}")
        p.send_signal(signal.SIGKILL)
        p.wait(10)

    def pause(self, n: int) -> None:
        os.kill(self.procs[f"broker-{n}"].pid, signal.SIGSTOP)

    def resume(self, n: int) -> None:
        os.kill(self.procs[f"broker-{n}"].pid, signal.SIGCONT)

    def stop(self) -> None:
        for p in self.procs.values():
            if p.poll() is None:
                try:
                    os.kill(p.pid, signal.SIGCONT)
                except OSError:
                    pass
                p.send_signal(signal.SIGTERM)
        hung = []
        for name, p in self.procs.items():
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                hung.append(name)
                p.kill()
                p.wait(10)
        self.procs.clear()
        for log in self.logs:
            log.close()
        # a service must stop on SIGTERM (sandbox down, the supervisor, docker stop rely on it)
        assert not hung, f"{', '.join(hung)} did not stop within 15 s of SIGTERM: " + \
            " | ".join(line for n in hung for line in self.log_text(n).splitlines() if "still stopping" in line)

    # ---- what the metadata says ---------------------------------------------------------
    def admin(self) -> AdminClient:
        return AdminClient({"bootstrap.servers": self.bootstrap, "socket.timeout.ms": 3000})

    def metadata_brokers(self) -> list[int]:
        try:
            md = self.admin().list_topics(timeout=3)
        except Exception:   # noqa: BLE001 - not up yet
            return []
        return sorted(md.brokers)

    def partition(self, topic: str, index: int):
        """(leader, replicas, isr) of a partition from the metadata (any live broker)."""
        md = self.admin().list_topics(topic=topic, timeout=5)
        p = md.topics[topic].partitions[index]
        return p.leader, list(p.replicas), list(p.isrs)

    def wait_for(self, predicate, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            try:
                if predicate():
                    return
            except Exception as e:   # noqa: BLE001 - a broker in flux: ask again
                last = e
            time.sleep(0.2)
        raise AssertionError(f"timed out after {timeout}s waiting for {what} (last error: {last})")

    def wait_in_sync(self, topic: str, partitions: int, timeout: float = 60.0) -> None:
        def full():
            return all(sorted(self.partition(topic, i)[2]) == sorted(self.partition(topic, i)[1])
                       and self.partition(topic, i)[0] >= 0 for i in range(partitions))
        self.wait_for(full, timeout, f"every partition of {topic} fully in sync")

    # ---- what the replicas hold (read after stop(): the logs are closed) ----------------
    def replica_batches(self, n: int, topic: str, index: int, upto: int) -> bytes:
        log = PartitionLog(self.data_dir(n) / f"{topic}-{index}", LogConfig())
        try:
            return log.read(0, 1 << 30, max_offset=upto).tobytes() if log.log_end_offset else b""
        finally:
            log.close()

    def log_end(self, n: int, topic: str, index: int) -> int:
        log = PartitionLog(self.data_dir(n) / f"{topic}-{index}", LogConfig())
        try:
            return log.log_end_offset
        finally:
            log.close()


@pytest.fixture
def cluster3(tmp_path):
    """A started 3-broker Cluster, stopped after the test even when it fails."""
    c = Cluster(tmp_path / "cluster", brokers=3)
    try:
        yield c.start()
    finally:
        c.stop()
