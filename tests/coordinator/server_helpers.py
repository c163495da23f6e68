"""Helpers for coordinator server tests: the service in a thread or as a real process, always
stopped, and a few request builders."""
from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import uuid
from pathlib import Path

from sandbox.coordinator.server import CoordinatorConfig, CoordinatorServer
from sandbox.protocol import build, request_class

TESTS = Path(__file__).resolve().parents[1]
from helpers import api_versions_ok, free_port, wait_serving  # noqa: F401
from rawclient import RawClient  # noqa: F401


class ThreadedCoordinator:
    """A CoordinatorServer on its own event loop in a thread, for blocking test clients."""

    def __init__(self, data_dir: Path, **kw) -> None:
        kw.setdefault("port", 0)
        self.config = CoordinatorConfig(data_dir=Path(data_dir), **kw)
        self.loop = asyncio.new_event_loop()
        self.server: CoordinatorServer | None = None
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def start(self) -> "ThreadedCoordinator":
        self._thread.start()
        self.server = CoordinatorServer(self.config)
        self.call(self.server.start())
        return self

    def call(self, coro, timeout: float = 10.0):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def run(self, fn, *args):
        """Run a plain function on the server's loop (state is owned by that loop)."""
        async def wrapper():
            return fn(*args)
        return self.call(wrapper())

    @property
    def port(self) -> int:
        return self.config.port

    @property
    def coordinator(self):
        return self.server.coordinator

    def stop(self) -> None:
        if self.server is not None and self._thread.is_alive():
            try:
                self.call(self.server.stop())
            finally:
                self.loop.call_soon_threadsafe(self.loop.stop)
                self._thread.join(5)
        if not self.loop.is_running() and not self.loop.is_closed():
            self.loop.close()


class CoordinatorProcess:
    """`sandbox.coordinator.cli.run` in a child process on a fixed port."""

    def __init__(self, data_dir: Path, port: int | None = None, session_timeout_ms: int = 9000,
                 log_path: Path | None = None, seed_acls: Path | None = None) -> None:
        self.data_dir = Path(data_dir)
        self.seed_acls = seed_acls
        self.port = port or free_port()
        self.session_timeout_ms = session_timeout_ms
        self.log_path = log_path or self.data_dir.parent / f"coordinator-{self.port}.log"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 20.0) -> "CoordinatorProcess":
        code = ("import sys; from pathlib import Path; from sandbox.coordinator.cli import run; "
                f"sys.exit(run({self.port}, Path({str(self.data_dir)!r}), "
                f"session_timeout_ms={self.session_timeout_ms}, "
                f"seed_acls={str(self.seed_acls) if self.seed_acls else None!r}))")
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([sys.executable, "-c", code], stdout=self._log,
                                     stderr=subprocess.STDOUT, cwd=str(TESTS.parent))
        wait_serving("coordinator", self.proc, self.port, timeout, self.log_text, give_up=self.kill)
        return self

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._close_log()

    def stop(self, timeout: float = 10.0) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM if os.name != "nt" else signal.CTRL_BREAK_EVENT)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._close_log()
        return self.proc.returncode

    def _close_log(self) -> None:
        log = getattr(self, "_log", None)
        if log is not None and not log.closed:
            log.close()


def register_request(broker_id: int, port: int, incarnation: uuid.UUID | None = None,
                     cluster_id: str = "", version: int = 3, rack: str | None = None):
    return build(request_class(62, version), {
        "broker_id": broker_id, "cluster_id": cluster_id,
        "incarnation_id": incarnation or uuid.uuid4(),
        "listeners": [{"name": "PLAINTEXT", "host": "127.0.0.1", "port": port,
                       "security_protocol": 0}], "features": [], "rack": rack})


def heartbeat_request(broker_id: int, epoch: int, version: int = 1, **kw):
    return build(request_class(63, version), {
        "broker_id": broker_id, "broker_epoch": epoch, "current_metadata_offset": 0,
        "want_fence": False, "want_shut_down": False, **kw})


def metadata_request(topics=None, version: int = 12):
    return build(request_class(3, version), {
        "topics": None if topics is None else [{"name": t, "topic_id": None} for t in topics],
        "allow_auto_topic_creation": False, "include_topic_authorized_operations": False,
        "include_cluster_authorized_operations": False})


def create_topics_request(*topics: tuple[str, int], validate_only: bool = False, version=7):
    return build(request_class(19, version), {
        "topics": [{"name": n, "num_partitions": p, "replication_factor": -1,
                    "assignments": [], "configs": []} for n, p in topics],
        "timeout": 5000, "validate_only": validate_only})


def fetch_request(offset: int, max_wait_ms: int = 0, topic: str = "__cluster_metadata",
                  version: int = 12, max_bytes: int = 1 << 20):
    return build(request_class(1, version), {
        "replica_id": -1, "max_wait": max_wait_ms, "min_bytes": 1, "max_bytes": 1 << 24,
        "isolation_level": 0, "session_id": 0, "session_epoch": -1,
        "topics": [{"topic": topic, "partitions": [{
            "partition": 0, "fetch_offset": offset, "partition_max_bytes": max_bytes}]}],
        "forgotten_topics_data": [], "rack_id": ""})
