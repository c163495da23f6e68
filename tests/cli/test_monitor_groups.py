"""A real stack in a temp project: `sandbox groups describe` shows a group's lag per partition and
`sandbox monitor` (in a tmux pane, 100x30) shows services, the topic and that lag.

Every wait is bounded; all traffic goes to 127.0.0.1; teardown always runs `sandbox down` and kills
whatever of the project is left."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import psutil
import pytest

from helpers import wait_for
from helpers import listen_port as port_block  # tests/ is on sys.path (pytest's pythonpath)

pytestmark = pytest.mark.integration

TOPIC, GROUP = "monitored-orders", "billing-monitor"
# Until app.py wires monitor/groups into the CLI, run them through this equivalent entry point.
WIRED = "from sandbox.cli.app import build_app; build_app()(prog_name='sandbox')"


def cli_prefix() -> list[str]:
    """`python -m sandbox` when it knows `monitor` and `groups`, else the WIRED entry point."""
    ok = all(subprocess.run([sys.executable, "-m", "sandbox", cmd, "--help"], capture_output=True,
                            timeout=60).returncode == 0 for cmd in ("monitor", "groups"))
    return [sys.executable, "-m", "sandbox"] if ok else [sys.executable, "-c", WIRED]


def tmux_available() -> bool:
    if shutil.which("tmux"):
        return True
    if os.geteuid() == 0 and shutil.which("apt-get"):
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "install", "-y", "-qq", "tmux"], capture_output=True, env=env, timeout=300)
        if not shutil.which("tmux"):
            subprocess.run(["apt-get", "update", "-qq"], capture_output=True, timeout=300)
            subprocess.run(["apt-get", "install", "-y", "-qq", "tmux"], capture_output=True, env=env, timeout=300)
    return shutil.which("tmux") is not None


def leftovers(root: Path) -> list[psutil.Process]:
    me, out = os.getpid(), []
    for p in psutil.process_iter(["pid", "cmdline"]):
        try:
            if p.pid == me:
                continue
            cmd = " ".join(p.info["cmdline"] or [])
            hit = str(root) in cmd
            if not hit and "sandbox" in cmd:
                try:
                    hit = p.cwd() == str(root)
                except (psutil.AccessDenied, psutil.ZombieProcess):
                    pass
            if hit and p.status() != psutil.STATUS_ZOMBIE:
                out.append(p)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return out


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = tmp_path_factory.mktemp("monitor-project")
    p = port_block(4)
    (root / "sandbox.toml").write_text(
        f'[sandbox]\nhost = "127.0.0.1"\nport = {p}\ncoordinator_port = {p + 1}\nhttp_port = {p + 2}\n'
        f'brokers = 1\ndata_dir = ".sandbox"\n\n[topics.{TOPIC}]\npartitions = 1\nreplication = 1\n',
        encoding="utf-8")
    prefix = cli_prefix()

    def run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run(prefix + list(args), cwd=root, capture_output=True, text=True,
                              timeout=timeout, env=dict(os.environ, PYTHONUNBUFFERED="1"))

    try:
        up = subprocess.run([sys.executable, "-m", "sandbox", "up", "--timeout", "60"], cwd=root,
                            capture_output=True, text=True, timeout=120)
        assert up.returncode == 0, up.stdout + up.stderr
        yield {"root": root, "bootstrap": f"127.0.0.1:{p}", "run": run, "prefix": prefix}
    finally:
        try:
            subprocess.run([sys.executable, "-m", "sandbox", "down"], cwd=root, capture_output=True,
                           text=True, timeout=120)
        finally:
            for proc in leftovers(root):
                try:
                    proc.kill()
                except psutil.Error:
                    pass


@pytest.fixture(scope="module")
def lagging_group(project):
    from confluent_kafka import Consumer, Producer, TopicPartition

    prod = Producer({"bootstrap.servers": project["bootstrap"], "linger.ms": 5,
                     "message.timeout.ms": 30000, "socket.timeout.ms": 10000})
    for i in range(200):
        prod.produce(TOPIC, value=f"record-{i}".encode(), partition=0)
    assert prod.flush(30) == 0
    cons = Consumer({"bootstrap.servers": project["bootstrap"], "group.id": GROUP,
                     "enable.auto.commit": False, "socket.timeout.ms": 10000,
                     "session.timeout.ms": 6000})
    try:
        cons.commit(offsets=[TopicPartition(TOPIC, 0, 50)], asynchronous=False)
    finally:
        cons.close()
    return GROUP


def test_groups_describe_shows_the_lag(project, lagging_group):
    r = project["run"]("groups", "describe", lagging_group)
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("TOPIC"))
    assert lines[header].split() == ["TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG",
                                     "CONSUMER-ID", "HOST", "CLIENT-ID"]
    rows = [line.split() for line in lines[header + 1:] if line.strip()]
    assert [TOPIC, "0", "50", "200", "150", "-", "-", "-"] in rows, r.stdout

    r = project["run"]("groups", "list")
    assert r.returncode == 0 and lagging_group in r.stdout and "150" in r.stdout, r.stdout + r.stderr

    r = project["run"]("groups", "describe", "no-such-group")
    assert r.returncode == 1
    assert "does not exist" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_monitor_in_tmux(project, lagging_group):
    if not tmux_available():
        pytest.skip("tmux is not installed and cannot be installed here")
    sock = f"sandbox-test-{uuid.uuid4().hex[:8]}"
    cmd = f"cd {shlex.quote(str(project['root']))} && {shlex.join(project['prefix'] + ['monitor'])}"
    tmux = ["tmux", "-L", sock, "-f", os.devnull]
    started = subprocess.run(tmux + ["new-session", "-d", "-s", "mon", "-x", "100", "-y", "30", cmd],
                             capture_output=True, text=True, timeout=30)
    assert started.returncode == 0, started.stderr
    screen = ""
    try:
        needles = ["coordinator", "broker-1", TOPIC, lagging_group]

        def shown() -> bool:
            nonlocal screen
            cap = subprocess.run(tmux + ["capture-pane", "-p", "-t", "mon"], capture_output=True,
                                 text=True, timeout=10)
            screen = cap.stdout
            group_line = next((line for line in screen.splitlines() if lagging_group in line), "")
            return all(n in screen for n in needles) and "150" in group_line.split()

        wait_for(shown, 10, interval=0.3, what=f"{needles} and a lag of 150 on the dashboard", detail=lambda: screen)
        group_line = next(line for line in screen.splitlines() if lagging_group in line)
        assert "150" in group_line.split(), screen
    finally:
        subprocess.run(tmux + ["kill-server"], capture_output=True, timeout=30)


def test_monitor_not_running_says_so(tmp_path):
    port = port_block(4)
    (tmp_path / "sandbox.toml").write_text(
        f'[sandbox]\nport = {port}\ncoordinator_port = {port + 1}\nhttp_port = {port + 2}\n', encoding="utf-8")
    r = subprocess.run(cli_prefix() + ["monitor"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert r.returncode == 3
    assert "not running" in (r.stdout + r.stderr) and len((r.stdout + r.stderr).strip().splitlines()) == 1
