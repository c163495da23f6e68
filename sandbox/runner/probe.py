"""Health probes the supervisor runs against a service over the wire (a Kafka ApiVersions round trip),
and `port_owner`, naming whoever holds a port for the "port taken" error."""

from __future__ import annotations

import os
import socket
import struct
import time
from dataclasses import dataclass

import psutil

from sandbox.runner.process import ServiceSpec

API_VERSIONS_PROBE = "api-versions"


@dataclass(frozen=True)
class ProbeResult:
    ok: bool
    probe: str
    detail: str
    latency_ms: float | None = None


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("connection closed by the service")
        buf += chunk
    return bytes(buf)


def api_versions_round_trip(host: str, port: int, timeout: float = 1.0) -> ProbeResult:
    """Send ApiVersions v0 (api key 18) and check the correlation id and error code of the answer."""
    client_id = b"sandbox-supervisor"
    correlation = 0x5AFE
    body = struct.pack(">hhih", 18, 0, correlation, len(client_id)) + client_id
    start = time.perf_counter()
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            sock.sendall(struct.pack(">i", len(body)) + body)
            (size,) = struct.unpack(">i", _recv_exact(sock, 4))
            if size < 6 or size > 1 << 20:
                return ProbeResult(False, API_VERSIONS_PROBE, f"bad response size {size} from {host}:{port}")
            payload = _recv_exact(sock, size)
    except (OSError, ConnectionError) as e:
        return ProbeResult(False, API_VERSIONS_PROBE, f"{host}:{port}: {e.__class__.__name__}: {e}")
    latency = (time.perf_counter() - start) * 1000.0
    corr, err = struct.unpack_from(">ih", payload)
    if corr != correlation:
        return ProbeResult(False, API_VERSIONS_PROBE, f"{host}:{port} answered correlation id {corr}", latency)
    if err != 0:
        return ProbeResult(False, API_VERSIONS_PROBE, f"{host}:{port} answered error code {err}", latency)
    return ProbeResult(True, API_VERSIONS_PROBE, f"ApiVersions ok in {latency:.1f} ms", latency)


def kafka_probe(spec: ServiceSpec) -> ProbeResult:
    """A real ApiVersions v0 round trip on 127.0.0.1:spec.port with a 1 s timeout."""
    return api_versions_round_trip("127.0.0.1", spec.port, 1.0)


_LOCAL = {"127.0.0.1", "0.0.0.0", "::", "::1", ""}


def _listening_pid(conns, port: int) -> tuple[bool, int | None]:
    for c in conns:
        if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port and c.laddr.ip in _LOCAL:
            return True, c.pid
    return False, None


def port_bindable(port: int) -> bool:
    """Whether 127.0.0.1:port can be bound now, as our services bind it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        if os.name != "nt":  # as our services bind: closed connections in TIME_WAIT do not count
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def port_owner(port: int) -> str | None:
    """'name (pid N)' of the process listening on 127.0.0.1:port, 'another program' if it cannot be
    named (access denied), or None when nothing listens there."""
    if port_bindable(port):   # the common case, and cheap: listing every socket costs ~0.15 s
        return None
    found, pid = False, None
    try:
        found, pid = _listening_pid(psutil.net_connections(kind="inet"), port)
    except psutil.AccessDenied:  # macOS without root: look at the processes we may inspect
        for proc in psutil.process_iter():
            try:
                found, pid = _listening_pid(proc.net_connections(kind="inet"), port)
            except (psutil.AccessDenied, psutil.NoSuchProcess, psutil.ZombieProcess):
                continue
            if found:
                pid = pid if pid is not None else proc.pid
                break
    if not found:
        return None if port_bindable(port) else "another program"
    if pid is None:
        return "another program"
    try:
        return f"{psutil.Process(pid).name()} (pid {pid})"
    except (psutil.AccessDenied, psutil.NoSuchProcess, psutil.ZombieProcess):
        return "another program"


def main(argv: list[str]) -> int:
    """`python -m sandbox.runner.probe HOST:PORT [TIMEOUT]`: the containers' healthcheck. Exit 0 when
    the service answers ApiVersions, 1 (with the reason on stderr) when it does not."""
    import sys

    if not argv or ":" not in argv[0]:
        print("usage: python -m sandbox.runner.probe HOST:PORT [TIMEOUT_S]", file=sys.stderr)
        return 2
    host, _, port = argv[0].rpartition(":")
    result = api_versions_round_trip(host.strip("[]"), int(port), float(argv[1]) if len(argv) > 1 else 2.0)
    print(result.detail, file=sys.stdout if result.ok else sys.stderr)
    return 0 if result.ok else 1


if __name__ == "__main__":
    import sys

    raise SystemExit(main(sys.argv[1:]))
