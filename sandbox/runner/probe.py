"""Health probes the supervisor runs against a service over the wire (a Kafka ApiVersions round trip
over the blocking client connection), and `port_owner`, naming whoever holds a port for the "port taken" error."""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass

import psutil

from sandbox.client.connection import API_VERSIONS, Connection
from sandbox.client.models import KafkaClientError
from sandbox.protocol import build, request_class
from sandbox.protocol.errors import NONE
from sandbox.runner.process import ServiceSpec

API_VERSIONS_PROBE = "api-versions"


@dataclass(frozen=True)
class ProbeResult:
    ok: bool
    probe: str
    detail: str
    latency_ms: float | None = None


def api_versions_round_trip(host: str, port: int, timeout: float = 1.0) -> ProbeResult:
    """Send ApiVersions v0 (api key 18) over the blocking client connection (which checks the
    framing and the correlation id) and check the error code of the answer."""
    conn = Connection((host, port), "sandbox-supervisor", timeout)
    start = time.perf_counter()
    try:
        resp = conn.roundtrip(build(request_class(API_VERSIONS, 0), {}))
    except KafkaClientError as e:
        return ProbeResult(False, API_VERSIONS_PROBE, f"{host}:{port}: {e.message}")
    finally:
        conn.close()
    latency = (time.perf_counter() - start) * 1000.0
    if int(resp.error_code) != NONE:
        return ProbeResult(False, API_VERSIONS_PROBE, f"{host}:{port} answered error code {int(resp.error_code)}",
                           latency)
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


def port_bindable(port: int, host: str = "127.0.0.1") -> bool:
    """Whether host:port (127.0.0.1 unless said) can be bound now, as our services bind it."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        if os.name != "nt":  # as our services bind: closed connections in TIME_WAIT do not count
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
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
