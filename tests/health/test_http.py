"""HealthServer on 127.0.0.1 with a fake status: codes, content types, parsable metrics, caching."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from sandbox.health.http import Cached, HealthServer
from sandbox.health.metrics import render_metrics

from .fake_status import status


def get(url: str) -> tuple[int, str, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.headers["Content-Type"], r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers["Content-Type"], e.read()


class Fake:
    def __init__(self) -> None:
        self.st = status()
        self.calls = 0

    def __call__(self) -> dict:
        self.calls += 1
        return self.st


@pytest.fixture
def served():
    fake = Fake()
    clock = [0.0]
    srv = HealthServer("127.0.0.1", 0, fake, lambda: render_metrics(srv.status()),
                       clock=lambda: clock[0])
    srv.start()
    try:
        yield srv, fake, clock
    finally:
        srv.stop()


def test_endpoints(served):
    srv, fake, _ = served
    assert srv.port and srv.url.startswith("http://127.0.0.1:")
    code, ctype, body = get(srv.url + "/healthz")
    assert (code, body) == (200, b"ok\n") and ctype.startswith("text/plain")
    code, ctype, body = get(srv.url + "/status")
    assert code == 200 and ctype == "application/json"
    assert json.loads(body)["services"][1]["name"] == "broker-1"
    code, ctype, body = get(srv.url + "/metrics")
    assert code == 200 and ctype.startswith("text/plain") and "version=0.0.4" in ctype
    names = {f.name for f in text_string_to_metric_families(body.decode())}
    assert {"sandbox_healthy", "sandbox_service_up", "sandbox_group_lag"} <= names
    code, _, body = get(srv.url + "/nope")
    assert code == 404 and b"/healthz" in body


def test_unhealthy_is_503_with_reasons(served):
    srv, fake, clock = served
    fake.st = status(healthy=False, problems=["topic orders has 1 partitions without a leader"])
    fake.st["services"][1].update(state="crashed", healthy=False)
    clock[0] += 5
    code, _, body = get(srv.url + "/healthz")
    assert code == 503
    assert b"broker-1 is crashed" in body and b"without a leader" in body


def test_status_is_computed_at_most_once_per_second(served):
    srv, fake, clock = served
    for _ in range(5):
        get(srv.url + "/status")
        get(srv.url + "/healthz")
        get(srv.url + "/metrics")
    assert fake.calls == 1
    clock[0] += 1.0
    get(srv.url + "/healthz")
    assert fake.calls == 2


def test_a_failing_status_is_a_503_not_a_dead_server():
    def boom() -> dict:
        raise RuntimeError("no state yet")

    with HealthServer("127.0.0.1", 0, boom, lambda: b"") as srv:
        code, _, body = get(srv.url + "/healthz")
        assert code == 503 and b"no state yet" in body
        code, _, _ = get(srv.url + "/metrics")
        assert code == 200


def test_stop_releases_the_port():
    srv = HealthServer("127.0.0.1", 0, Fake(), lambda: b"").start()
    port = srv.port
    srv.stop()
    srv.stop()   # idempotent
    again = HealthServer("127.0.0.1", port, Fake(), lambda: b"").start()
    try:
        assert get(again.url + "/healthz")[0] == 200
    finally:
        again.stop()


def test_cached_clock():
    t = [0.0]
    n = []
    c = Cached(lambda: n.append(1) or len(n), ttl=1.0, clock=lambda: t[0])
    assert c() == 1 and c() == 1
    t[0] = 0.99
    assert c() == 1
    t[0] = 1.0
    assert c() == 2
