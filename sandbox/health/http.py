"""The supervisor's small HTTP endpoint on a thread: /healthz (200 ok / 503 reasons), /status (the
JSON of SPEC.md), /metrics (Prometheus text). Figures are cached for a second so scrapes are cheap."""

from __future__ import annotations

import json
import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

from .metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE

log = logging.getLogger("sandbox.health")

CACHE_S = 1.0


class Cached:
    """fn() computed at most once per `ttl` seconds (concurrent callers wait for one computation)."""

    def __init__(self, fn: Callable[[], Any], ttl: float = CACHE_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._fn, self._ttl, self._clock = fn, ttl, clock
        self._lock = threading.Lock()
        self._at: float | None = None
        self._value: Any = None

    def __call__(self) -> Any:
        with self._lock:
            now = self._clock()
            if self._at is None or now - self._at >= self._ttl:
                self._value = self._fn()
                self._at = self._clock()
            return self._value


def unhealthy_reasons(status: dict) -> list[str]:
    """Why a status is not healthy, one short sentence each."""
    reasons = [f"{s.get('name')} is {s.get('state')}" + ("" if s.get("state") != "running" else " but not healthy")
               for s in status.get("services") or [] if not s.get("healthy")]
    reasons += [str(p) for p in status.get("problems") or []]
    if not status.get("services"):
        reasons.append("no service is known yet")
    return reasons or ["unhealthy"]


class _Handler(BaseHTTPRequestHandler):
    server: "_Server"
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        path = self.path.split("?", 1)[0].rstrip("/") or "/"
        try:
            if path == "/healthz":
                st = self.server.owner.status()
                if st.get("healthy"):
                    self._send(200, b"ok\n", "text/plain; charset=utf-8")
                else:
                    body = "unhealthy: " + "; ".join(unhealthy_reasons(st)) + "\n"
                    self._send(503, body.encode(), "text/plain; charset=utf-8")
            elif path == "/status":
                body = json.dumps(self.server.owner.status(), indent=1, default=str).encode()
                self._send(200, body, "application/json")
            elif path == "/metrics":
                self._send(200, self.server.owner.metrics(), METRICS_CONTENT_TYPE)
            else:
                self._send(404, b"not found; try /healthz, /status or /metrics\n",
                           "text/plain; charset=utf-8")
        except Exception as e:  # a broken figure must not kill the endpoint
            log.exception("health endpoint %s failed", path)
            self._send(503, f"unhealthy: the status could not be computed ({type(e).__name__}: {e})\n"
                       .encode(), "text/plain; charset=utf-8")

    def do_HEAD(self) -> None:  # noqa: N802
        self._send(405, b"", "text/plain; charset=utf-8")

    def _send(self, code: int, body: bytes, ctype: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, fmt: str, *args: Any) -> None:
        log.debug("http %s - " + fmt, self.address_string(), *args)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True   # like the services: TIME_WAIT must not block a restart
    owner: "HealthServer"


class HealthServer:
    """HealthServer("127.0.0.1", cfg.http_port, get_status, get_metrics).start() ... .stop().
    Port 0 picks a free port (see .port after start())."""

    def __init__(self, host: str, port: int, get_status: Callable[[], dict],
                 get_metrics: Callable[[], bytes], *, cache_s: float = CACHE_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.host = host or "127.0.0.1"
        self.port = port
        self.status = Cached(get_status, cache_s, clock)
        self.metrics = Cached(get_metrics, cache_s, clock)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> "HealthServer":
        if self._server is not None:
            return self
        server = _Server((self.host, self.port), _Handler)
        server.owner = self
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="health-http", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def __enter__(self) -> "HealthServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
