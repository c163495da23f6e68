"""`sandbox kill` and `sandbox pause` against a real native stack (a temp project on free 127.0.0.1
ports, always torn down): a killed broker comes back with a new pid and serves; a paused one is a
stopped process ('T') for the duration, runs again afterwards with the same pid, and was neither
counted as crashed nor restarted. Unknown services and no running sandbox are one sentence."""

from __future__ import annotations

import subprocess
import sys
import time

import psutil
import pytest

from helpers import wait_for
from integration.stack_kit import events, service
from sandbox.client import KafkaClient

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]


def serves(bootstrap: str) -> bool:
    try:
        with KafkaClient(bootstrap, timeout=3.0) as c:
            c.metadata()
        return True
    except Exception:
        return False


def one_sentence(text: str) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in text, text
    return lines[0]


def test_kill_then_pause_a_broker(project):
    r = project.up()
    assert r.returncode == 0, r.stdout + r.stderr
    old = project.service_pid("broker-1")

    r = project.cli("kill", "broker-1")
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"killed broker-1 (pid {old})" in r.stdout
    wait_for(lambda: not psutil.pid_exists(old) or psutil.Process(old).status() == psutil.STATUS_ZOMBIE,
             10, what="the killed broker's process to be gone")

    def back() -> bool:
        s = service(project.state_file(), "broker-1")
        return s["state"] == "running" and s["healthy"] and s["pid"] not in (None, old)
    wait_for(back, 60, what="broker-1 restarted with a new pid")
    new = service(project.state_file(), "broker-1")["pid"]
    assert serves(project.bootstrap)
    st = project.state_file()
    assert events(st, service="broker-1", kind="kill") and events(st, service="broker-1", kind="crash")
    project.seen_pids.add(new)

    cmd = [sys.executable, "-m", "sandbox", "pause", "broker-1", "--for", "3s"]
    t0 = time.monotonic()
    pausing = subprocess.Popen(cmd, cwd=project.root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: psutil.Process(new).status() == psutil.STATUS_STOPPED, 15, what="broker-1 stopped ('T')")
        # the supervisor publishes the pause right after freezing the process (within its step,
        # before the step's probes): status says so while the 3 s pause lasts
        wait_for(lambda: service(project.state_file(), "broker-1")["state"] == "paused", 2.5,
                 what="status to say broker-1 is paused while it is stopped")
        out, err = pausing.communicate(timeout=60)
    finally:
        if pausing.poll() is None:
            pausing.kill()
            pausing.wait(10)
    assert pausing.returncode == 0, out + err
    assert time.monotonic() - t0 >= 3.0
    assert f"paused broker-1 (pid {new}) for 3 s" in out and "resumed broker-1" in out, out
    assert psutil.Process(new).status() != psutil.STATUS_STOPPED
    wait_for(lambda: service(project.state_file(), "broker-1")["state"] == "running", 30, what="broker-1 running again")
    st = project.state_file()
    s = service(st, "broker-1")
    assert s["pid"] == new and s["restarts"] == 1, s   # the kill's restart only: the pause was none
    assert len(events(st, service="broker-1", kind="crash")) == 1
    assert events(st, service="broker-1", kind="resume")
    assert serves(project.bootstrap)


def test_the_pause_ends_even_when_the_command_is_interrupted(project):
    r = project.up()
    assert r.returncode == 0, r.stdout + r.stderr
    pid = project.service_pid("broker-1")
    cmd = [sys.executable, "-m", "sandbox", "pause", "broker-1", "--for", "2s"]
    pausing = subprocess.Popen(cmd, cwd=project.root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: psutil.Process(pid).status() == psutil.STATUS_STOPPED, 15, what="broker-1 stopped")
    finally:
        pausing.kill()
        pausing.wait(10)
    wait_for(lambda: psutil.Process(pid).status() != psutil.STATUS_STOPPED, 10, what="broker-1 resumed by the supervisor")
    wait_for(lambda: service(project.state_file(), "broker-1")["state"] == "running", 30, what="broker-1 running")
    assert service(project.state_file(), "broker-1")["pid"] == pid


def test_unknown_service_and_no_running_sandbox_are_one_sentence(project):
    for args in (["kill", "broker-1"], ["pause", "broker-1", "--for", "1s"]):
        r = project.cli(*args)
        assert r.returncode == 3, r.stdout + r.stderr
        assert "is not running; start it with `sandbox up`" in one_sentence(r.stderr)
    r = project.cli("pause", "broker-1", "--for", "soon")
    assert r.returncode == 2 and "15s" in one_sentence(r.stderr)
    r = project.up()
    assert r.returncode == 0, r.stdout + r.stderr
    for args in (["kill", "broker-7"], ["pause", "zookeeper", "--for", "1s"]):
        r = project.cli(*args)
        assert r.returncode == 2, r.stdout + r.stderr
        assert "services are coordinator, broker-1" in one_sentence(r.stderr)
