"""`sandbox up` as a user runs it (a real process in a temp project on free 127.0.0.1 ports): an
unusable data folder is one sentence and a fix, not a traceback; a declared topic that cannot be
created makes `up` fail (exit 1) saying which and why, also an `up` on the running stack; `up --port P`
while the stack runs on another port says so instead of claiming success; an `up` that timed out
leaves the declared topics to the next `up`. Every project is torn down (nothing of it left running)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from helpers import wait_for
from integration.stack_kit import sandbox_toml

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]


def test_unusable_data_folder_is_one_sentence_for_up_and_broker(project):
    project.write_toml(project.toml.replace('data_dir = ".sandbox"', 'data_dir = "/proc/sandbox-data"'))
    r = project.up()
    assert r.returncode == 1, r.stdout + r.stderr
    assert "Traceback" not in r.stderr
    errors = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and "/proc/sandbox-data" in errors[0] and "data_dir" in errors[0], r.stderr
    b = subprocess.run([sys.executable, "-m", "sandbox", "broker", "--port", "0", "--data-dir",
                        "/proc/sandbox-data"], capture_output=True, text=True, timeout=60)
    assert b.returncode == 78 and "Traceback" not in b.stderr, b.stderr
    assert "error: the data folder /proc/sandbox-data cannot be used" in b.stderr


def test_declared_topic_that_cannot_be_created_fails_up_and_a_port_change_is_not_ignored(project):
    project.write_toml(sandbox_toml(port=project.port, coordinator_port=project.coordinator_port,
                                    http_port=project.http_port, brokers=1,
                                    # each value is sound (checked when the file is read); together
                                    # they are refused only when the topic is created
                                    topics='[topics.good]\npartitions = 1\n\n[topics.bad]\npartitions = 1\n'
                                           '[topics.bad.config]\n"min.compaction.lag.ms" = "5000"\n'
                                           '"max.compaction.lag.ms" = "1000"\n'))
    r = project.up()
    assert r.returncode == 1, r.stdout + r.stderr
    assert "bad" in r.stderr and "min.compaction.lag.ms" in r.stderr, r.stderr
    assert "is up" not in r.stdout
    other = project.port + 100
    r = project.cli("up", "--port", str(other))
    assert r.returncode == 1, r.stdout + r.stderr
    assert f"--port {other} (it runs with --port {project.port})" in r.stderr
    assert f"sandbox down` then `sandbox up --port {other}`" in r.stderr
    r = project.cli("up", "--port", str(project.port))   # running, and still a declared topic it cannot make
    assert r.returncode == 1 and "already running" in r.stdout, r.stdout + r.stderr
    assert "bad" in r.stderr and "min.compaction.lag.ms" in r.stderr, r.stderr


def test_an_up_that_timed_out_leaves_the_declared_topics_to_the_next_up(project):
    """`up --timeout` too short: the stack goes on starting (said so), and the next `up` on the
    running stack creates what sandbox.toml declares, where it used to say only "already running"."""
    project.write_toml(sandbox_toml(port=project.port, coordinator_port=project.coordinator_port,
                                    http_port=project.http_port, brokers=1,
                                    topics='[topics.orders]\npartitions = 3\n'))
    r = project.cli("up", "--timeout", "0.01")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "goes on starting in the background" in r.stderr and "sandbox up` again" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
    r = project.cli("up")
    assert r.returncode == 0 and "already running" in r.stdout, r.stdout + r.stderr
    assert "created topic orders (3 partitions)" in r.stdout, r.stdout
    listed = project.cli("topics", "list")
    assert "orders\t3 partitions" in listed.stdout, listed.stdout + listed.stderr
    # up on a stack that was up and is not healthy now (a paused broker) does not wait for it
    # long enough to be seen paused on a loaded machine (CI once saw no pause within 15 s of a 20 s one)
    pause = subprocess.Popen([sys.executable, "-m", "sandbox", "pause", "broker-1", "--for", "40s"],
                             cwd=project.root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    services: list = []

    def paused() -> bool:
        services[:] = project.status()[1].get("services", [])
        if pause.poll() is not None:   # the command gave up: say why rather than wait
            raise AssertionError(f"`sandbox pause` ended ({pause.returncode}): {pause.stdout.read()}")
        return any(s["name"] == "broker-1" and s["state"] == "paused" for s in services)

    try:
        wait_for(paused, 30, what="broker-1 paused",
                 detail=lambda: str([(s["name"], s["state"]) for s in services]))
        r = project.cli("up", "--timeout", "45")
        assert r.returncode == 0 and "already running" in r.stdout, r.stdout + r.stderr
        assert "not every service is healthy now (broker-1: paused)" in r.stdout, r.stdout
    finally:
        pause.wait(120)   # resumed by the supervisor after its 40 s


def test_ctrl_c_during_foreground_start_up_is_honoured_at_once(project):
    import os
    import signal
    import threading
    import time

    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    p = subprocess.Popen([sys.executable, "-m", "sandbox", "up", "--foreground"], cwd=project.root, env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[tuple[float, str]] = []

    def read() -> None:
        for line in p.stdout:
            lines.append((time.monotonic(), line.rstrip()))

    threading.Thread(target=read, daemon=True).start()
    try:
        wait_for(lambda: any("broker-1 start:" in ln for _, ln in lines), 30, interval=0.02,
                 what="`broker-1 start:` in the output", detail=lambda: str(lines))
        sent = time.monotonic()
        p.send_signal(signal.SIGINT)
        p.wait(30)
        took = time.monotonic() - sent
    finally:
        if p.poll() is None:
            p.kill()
            p.wait(10)
    said = [t - sent for t, ln in lines if "stopping sandbox" in ln]
    assert said and said[0] < 1.0, lines
    assert took < 3.0, (took, lines)
    assert p.returncode == 0, lines


def test_a_restart_asked_of_a_supervisor_that_died_is_void_at_the_next_up(project):
    """`sandbox restart` writes `supervisor.restart` for the supervisor to take; one left behind by
    a supervisor that died first was carried out by the next one, restarting a healthy broker
    right after `up` (session 33's fix, tested here)."""
    import time

    project.data_dir.mkdir(parents=True, exist_ok=True)
    (project.data_dir / "supervisor.restart").write_text("broker-1")
    r = project.up()
    assert r.returncode == 0, r.stdout + r.stderr
    _, st = project.status()
    pid = {s["name"]: s["pid"] for s in st["services"]}["broker-1"]
    time.sleep(3)   # the supervisor's control pass runs every few hundred ms
    _, st = project.status()
    broker = {s["name"]: s for s in st["services"]}["broker-1"]
    assert broker["pid"] == pid and broker["restarts"] == 0, broker
    assert not any(e["service"] == "broker-1" and e["kind"] == "stop" for e in st["events"]), st["events"]
    assert not (project.data_dir / "supervisor.restart").exists()
