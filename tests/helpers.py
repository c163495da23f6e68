"""Test helpers: the one wait helper (wait_for), free ports and a real `sandbox broker` process that
is always stopped."""

from __future__ import annotations

import os
import signal
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, TypeVar

T = TypeVar("T")


def wait_for(predicate: Callable[[], T], timeout: float, *, interval: float = 0.1, what: str = "condition",
             detail: Callable[[], str] | None = None) -> T:
    """Call `predicate` until it returns a truthy value, and return that value. It is always called
    at least once and once more at the deadline; after `timeout` seconds an AssertionError names
    `what`, the time waited and the last value (or `detail()`, when given, for a fuller picture).
    Exceptions from `predicate` propagate at once (raise one to give up early)."""
    deadline = time.monotonic() + timeout
    while True:
        last = predicate()
        if last:
            return last
        if time.monotonic() >= deadline:
            why = detail() if detail is not None else f"last value {last!r}"
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; {why}")
        time.sleep(interval)


def wait_serving(name: str, proc: subprocess.Popen, port: int, timeout: float, log_text: Callable[[], str],
                 give_up: Callable[[], object]) -> None:
    """Wait until the process answers ApiVersions on `port`. RuntimeError with its log when it exits
    first, or when it does not answer within `timeout` (after give_up(), e.g. stopping it)."""
    def answers() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode}:\n{log_text()}")
        return api_versions_ok(port, 0.5)

    try:
        wait_for(answers, timeout, interval=0.05, what=f"the {name} on port {port}")
    except AssertionError:
        give_up()
        raise RuntimeError(f"{name} not ready in {timeout}s:\n{log_text()}") from None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


_HANDED_OUT: set[int] = set()   # ports listen_port gave this process: not bound yet, maybe


def listen_port(n: int = 1) -> int:
    """A base port P, P..P+n-1 all free and below the kernel's ephemeral range, for listeners a
    test starts some time later: a free_port() can meanwhile become the local port of another
    process's outgoing connection (seen in CI: a broker's listener found its port taken). Never a
    port it gave before in this process: two calls before anything binds (a cluster's coordinator,
    then its brokers) could draw the same one (seen in CI: broker 1 on the coordinator's port, its
    readiness check answered by the coordinator)."""
    import random
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range", encoding="ascii") as f:
            low = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        low = 0
    for _ in range(200):
        if low > 2000 + n:
            port = random.randint(min(20000, low - 1000), low - n)
        else:   # no range to stay below (another OS): a kernel-chosen one
            port = free_port()
        block = range(port, port + n)
        if port + n - 1 <= 65535 and not _HANDED_OUT.intersection(block) and all(_bindable(q) for q in block):
            _HANDED_OUT.update(block)
            return port
    raise RuntimeError(f"no block of {n} free ports found")


def api_versions_ok(port: int, timeout: float = 1.0) -> bool:
    """A real Kafka ApiVersions v0 round trip, not just a TCP connect."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            body = struct.pack(">hhih", 18, 0, 1, 4) + b"test"
            s.sendall(struct.pack(">i", len(body)) + body)
            head = _recv_exact(s, 4)
            (size,) = struct.unpack(">i", head)
            payload = _recv_exact(s, size)
            corr, err = struct.unpack_from(">ih", payload)
            return corr == 1 and err == 0
    except OSError:
        return False


def _recv_exact(s: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("closed")
        buf += chunk
    return buf


class BrokerProcess:
    """`sandbox broker` as a child process on a free port."""

    def __init__(self, data_dir: Path, port: int | None = None, options: list[str] | None = None,
                 log_path: Path | None = None, coordinator: str | None = None,
                 extra_args: list[str] | None = None) -> None:
        self.data_dir = Path(data_dir)
        self.extra_args = list(extra_args or [])   # more `sandbox broker` flags, e.g. --sasl-port
        self.port = port or listen_port()   # below the ephemeral range: see listen_port
        self.options = options or []
        self.coordinator = coordinator   # "host:port" of a separate `sandbox coordinator`
        self.log_path = log_path or (self.data_dir.parent / f"broker-{self.port}.stderr")
        self.proc: subprocess.Popen | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> "BrokerProcess":
        cmd = [sys.executable, "-m", "sandbox", "broker", "--port", str(self.port),
               "--data-dir", str(self.data_dir)]
        for o in self.options:
            cmd += ["-o", o]
        if self.coordinator:
            cmd += ["--coordinator", self.coordinator]
        cmd += self.extra_args
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT)
        wait_serving("broker", self.proc, self.port, timeout, self.log_text, give_up=self.stop)
        return self

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self, timeout: float = 15.0) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        code = self.proc.returncode
        self.proc = None
        return code

    def kill(self) -> None:
        """SIGKILL: no chance to flush or checkpoint."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self._log.close()
        self.proc = None

    def restart(self) -> "BrokerProcess":
        self.stop()
        return self.start()


def feed_protocol(proto, data: bytes, chunk: int | None = None) -> None:
    """Hand `data` to an asyncio.BufferedProtocol as its transport would: into the buffers it
    gives, at most `chunk` bytes at a time."""
    pos = 0
    while pos < len(data):
        buf = proto.get_buffer(-1)
        n = min(len(buf), len(data) - pos, chunk or len(data))
        buf[:n] = data[pos:pos + n]
        proto.buffer_updated(n)
        pos += n
