"""`sandbox kill` and `sandbox pause` in docker mode, against a REAL engine (skipped without one, as
test_docker_engine.py's tests are): the killed broker's container is started again and serves; the
paused one is a paused container for the duration, running afterwards, and was not restarted."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from test_docker_engine import _all_healthy, _service, engine, project  # noqa: F401  (fixtures)

pytestmark = pytest.mark.integration


@pytest.mark.timeout(900)
def test_kill_and_pause_a_broker_container(project, engine):   # noqa: F811
    p = project(brokers=1)
    r = p.cli("up", "--docker", "--timeout", "120", timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    st = p.wait_status(_all_healthy, 60, "a healthy docker sandbox")
    container = p.container("broker-1")
    started = container.attrs["State"]["StartedAt"]

    r = p.cli("kill", "broker-1")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "killed broker-1 (container sandbox-" in r.stdout, r.stdout

    def started_again(code, st) -> bool:
        container.reload()
        return _all_healthy(code, st) and container.attrs["State"]["StartedAt"] != started

    st = p.wait_status(started_again, 120, "broker-1's container started again")
    assert any(e["kind"] == "kill" for e in st["events"]) and any(e["kind"] == "crash" for e in st["events"])
    assert p.cli("topics", "list").returncode == 0   # the broker serves
    restarts = _service(st, "broker-1")["restarts"]

    t0 = time.monotonic()
    pausing = subprocess.Popen([sys.executable, "-m", "sandbox", "pause", "broker-1", "--for", "3s"], cwd=p.root,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            container.reload()
            if container.status == "paused":
                break
            time.sleep(0.1)
        assert container.status == "paused"
        out, err = pausing.communicate(timeout=90)
    finally:
        if pausing.poll() is None:
            pausing.kill()
            pausing.wait(10)
    assert pausing.returncode == 0, out + err
    assert time.monotonic() - t0 >= 3.0 and "resumed broker-1" in out, out
    container.reload()
    assert container.status == "running"
    st = p.wait_status(_all_healthy, 60, "healthy again after the pause")
    assert _service(st, "broker-1")["restarts"] == restarts
    assert p.cli("topics", "list").returncode == 0   # the broker serves
