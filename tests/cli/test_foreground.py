"""`sandbox up --foreground` (SPEC: stays attached with the live monitor; Ctrl-C stops everything):
on a terminal (a tmux pane) the dashboard takes the screen once healthy; in a pipe every event is
a line. Either way Ctrl-C (SIGINT) stops every service and leaves no process behind."""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import uuid

import pytest

from cli.test_monitor_groups import tmux_available
from helpers import wait_for
from integration.kit import produce_all, producer
from integration.stack_kit import make_project, read_lines_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


@pytest.fixture
def project(tmp_path):
    proj = make_project(tmp_path / "fg", topics="[topics.live]\npartitions = 2\n")
    yield proj
    problems = proj.teardown()
    assert not problems, problems


def test_during_foreground_start_up_status_and_a_second_up_agree_it_runs(project):
    proc = subprocess.Popen([sys.executable, "-m", "sandbox", "up", "--foreground"], cwd=project.root,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    try:
        read_lines_until(proc, lines, lambda got: any(" supervisor start: " in line for line in got), 60)
        code, st = project.status()
        assert code != 3 and st["services"], (code, st)      # starting or running, never "not running"
        again = project.cli("up")
        assert again.returncode == 0 and "already running" in again.stdout, again.stdout + again.stderr
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_foreground_in_a_pipe_prints_events_and_ctrl_c_stops_everything(project):
    proc = subprocess.Popen([sys.executable, "-m", "sandbox", "up", "--foreground"], cwd=project.root,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    try:
        read_lines_until(proc, lines, lambda got: any("is up; bootstrap" in line for line in got), 60)
        produce_all(producer(project.bootstrap), "live", [(None, b"v%d" % i) for i in range(10)], timeout=30)
        pids = [s["pid"] for s in project.status()[1]["services"]]
        os.kill(pids[-1], signal.SIGKILL)   # a crash while attached: the event shows up as a line
        read_lines_until(proc, lines, lambda got: any(" crash: " in line for line in got)
                         and any(" restart: " in line for line in got), 60)
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = "".join(lines) + rest
    assert proc.returncode == 0, text
    assert "coordinator healthy" in text and "broker-1 healthy" in text and "created topic live" in text
    assert re.fullmatch(r"sandbox \S+ stopped", text.splitlines()[-1]), text
    assert not project.leftovers(), project.leftovers()
    assert project.cli("status", "--json").returncode == 3


def test_foreground_on_a_terminal_shows_the_monitor_until_ctrl_c(project):
    if not tmux_available():
        pytest.skip("tmux is not installed and cannot be installed here")
    sock = f"sandbox-fg-{uuid.uuid4().hex[:8]}"
    tmux = ["tmux", "-L", sock, "-f", os.devnull]
    marker = project.root / "exit-code"
    cmd = (f"cd {shlex.quote(str(project.root))} && {shlex.quote(sys.executable)} -m sandbox up --foreground; "
           f"echo $? > {shlex.quote(str(marker))}; sleep 30")
    started = subprocess.run(tmux + ["new-session", "-d", "-s", "fg", "-x", "100", "-y", "30", cmd],
                             capture_output=True, text=True, timeout=30)
    assert started.returncode == 0, started.stderr
    screen = ""
    try:
        def dashboard() -> str | None:
            nonlocal screen
            screen = subprocess.run(tmux + ["capture-pane", "-p", "-t", "fg"], capture_output=True, text=True,
                                    timeout=10).stdout
            return screen if all(n in screen for n in ("coordinator", "broker-1", "live", "running")) else None

        wait_for(dashboard, 60, interval=0.3, what="the dashboard with every service running", detail=lambda: screen)
        assert "INFO" not in screen, screen   # log lines go to the log file, not over the dashboard
        subprocess.run(tmux + ["send-keys", "-t", "fg", "C-c"], capture_output=True, timeout=10)
        wait_for(marker.exists, 60, interval=0.3, what="`sandbox up --foreground` to stop on Ctrl-C")
        assert marker.read_text().strip() == "0"
    finally:
        subprocess.run(tmux + ["kill-server"], capture_output=True, timeout=30)
    # kill-server returns before the tmux server process has finished exiting
    wait_for(lambda: not project.leftovers(), 10, interval=0.2, what="no process left",
             detail=lambda: str(project.leftovers()))


def test_foreground_that_never_gets_healthy_stops_everything_and_exits_1(project):
    r = subprocess.run([sys.executable, "-m", "sandbox", "up", "--foreground", "--timeout", "0.05"], cwd=project.root,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "did not become healthy in time" in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert not project.leftovers(), project.leftovers()
