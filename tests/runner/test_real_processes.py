"""The supervisor with real child processes: the stop file is honoured, terminate escalates to kill,
nothing is left behind, a crash carries its log, and kafka_probe talks to a real `sandbox broker`."""

from __future__ import annotations

import os
import socket
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest

from sandbox.runner.detach import pid_alive, read_pid_file, remove_pid_file, spawn_detached, write_pid_file
from sandbox.runner.native import RecoveryPolicy, RealSpawner, ServiceSpec, Supervisor, kafka_probe, port_owner

from helpers import free_port, listen_port, wait_for

WATCH_STOP_FILE = """
import pathlib, sys, time
d = pathlib.Path(sys.argv[1])
print("ready", flush=True)
while True:
    stop = d / "stop"
    if stop.exists():
        stop.unlink()
        print("stopping: stop file", flush=True)
        sys.exit(0)
    time.sleep(0.05)
"""

IGNORE_SIGNALS = """
import signal, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
if hasattr(signal, "SIGBREAK"):
    signal.signal(signal.SIGBREAK, signal.SIG_IGN)
print("ready", flush=True)
while True:
    time.sleep(0.1)
"""

CRASH = """
import sys
for i in range(3):
    print(f"working {i}", flush=True)
print("EVENT repair {\\"bytes\\": 38, \\"segment\\": \\"t-0/0.log\\"}", file=sys.stderr, flush=True)
sys.exit(3)
"""


def script_spec(tmp_path: Path, name: str, code: str, port: int = 0) -> ServiceSpec:
    data = tmp_path / name
    return ServiceSpec(name=name, role="broker", argv=[sys.executable, "-c", code, str(data)], port=port,
                       data_dir=data, log_path=tmp_path / "logs" / f"{name}.log")



def log_has(spec: ServiceSpec, text: str) -> bool:
    try:
        return text in spec.log_path.read_text(errors="replace")
    except OSError:
        return False


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_stop_file_is_honoured_and_signals_escalate_to_kill(tmp_path):
    polite = script_spec(tmp_path, "polite", WATCH_STOP_FILE)
    stubborn = script_spec(tmp_path, "stubborn", IGNORE_SIGNALS)
    sup = Supervisor([polite, stubborn], RecoveryPolicy(), spawner=RealSpawner(), probe=None,
                     quarantine_root=tmp_path / "quarantine")
    try:
        sup.step()
        pids = {s["name"]: s["pid"] for s in sup.snapshot()["services"]}
        wait_for(lambda: log_has(polite, "ready") and log_has(stubborn, "ready"), 15.0, interval=0.05, what="both ready")
        sup.step()
        assert all(s["state"] == "running" for s in sup.snapshot()["services"])
        t0 = time.monotonic()
        sup.stop_all(grace_s=2.0)
        elapsed = time.monotonic() - t0
    finally:
        sup.stop_all(grace_s=0.5)
    stops = {e["service"]: e for e in sup.events if e["kind"] == "stop"}
    assert stops["polite"]["detail"] == "stopped (stop file), exit code 0"
    assert log_has(polite, "stopping: stop file") and not polite.stop_file.exists()
    assert stops["stubborn"]["detail"].startswith("killed after 2s")
    assert stops["stubborn"]["exit_code"] == (-9 if os.name != "nt" else 1)
    assert 1.5 < elapsed < 8
    assert all(gone(pid) for pid in pids.values())  # no process left behind


def test_real_crash_carries_exit_code_log_lines_and_repair_event(tmp_path):
    s = script_spec(tmp_path, "crasher", CRASH)
    sup = Supervisor([s], RecoveryPolicy(on_crash="off"), spawner=RealSpawner(), probe=None,
                     quarantine_root=tmp_path / "quarantine")
    try:
        sup.step()
        wait_for(lambda: (sup.step() or sup.service("crasher")["state"] == "crashed"), 15.0, interval=0.05, what="the crash")
    finally:
        sup.stop_all(grace_s=0.5)
    crash = [e for e in sup.events if e["kind"] == "crash"][0]
    assert crash["exit_code"] == 3 and crash["detail"] == "exit code 3"
    assert crash["log_tail"][:3] == ["working 0", "working 1", "working 2"]
    repair = [e for e in sup.events if e["kind"] == "repair"][0]
    assert repair["bytes"] == 38


@pytest.mark.integration
def test_supervised_real_broker_is_probed_healthy_then_stopped(tmp_path):
    port = listen_port()
    data = tmp_path / ".sandbox" / "broker-1"
    spec = ServiceSpec(name="broker-1", role="broker", port=port, data_dir=data,
                       log_path=tmp_path / ".sandbox" / "logs" / "broker-1.log",
                       argv=[sys.executable, "-m", "sandbox", "broker", "--port", str(port),
                             "--data-dir", str(data)])
    state = tmp_path / ".sandbox" / "supervisor.json"
    assert not kafka_probe(spec).ok
    sup = Supervisor([spec], RecoveryPolicy(grace_s=6), spawner=RealSpawner(), probe=kafka_probe,
                     quarantine_root=tmp_path / ".sandbox" / "quarantine", state_path=state)
    stop = threading.Event()
    runner = threading.Thread(target=sup.run, args=(stop, 0.1), daemon=True)
    runner.start()
    try:
        wait_for(lambda: sup.service("broker-1")["healthy"], 30, interval=0.05, what="a healthy broker")
        status = sup.service("broker-1")
        pid = status["pid"]
        result = kafka_probe(spec)
        assert result.ok and result.probe == "api-versions" and result.latency_ms is not None
        assert 0 < result.latency_ms < 1000
        assert status["state"] == "running" and status["latency_ms"] is not None
        owner = port_owner(port)
        assert owner is not None and f"pid {pid}" in owner
    finally:
        stop.set()
        runner.join(30)
    assert not runner.is_alive()
    assert gone(pid)
    assert kinds_of(sup.events) [:2] == ["start", "healthy"] and sup.events[-1]["kind"] == "stop"
    assert port_owner(port) is None


def kinds_of(events):
    return [e["kind"] for e in events]


def test_kafka_probe_reports_a_closed_port():
    port = free_port()
    r = kafka_probe(ServiceSpec("b", "broker", [], port, Path("."), Path("x.log")))
    assert not r.ok and r.probe == "api-versions" and str(port) in r.detail


def test_port_owner_names_a_listener_in_this_process():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        owner = port_owner(port)
        assert owner is not None and (f"pid {os.getpid()}" in owner or owner == "another program")
    assert port_owner(free_port()) is None


def test_detached_process_and_pid_file(tmp_path):
    log = tmp_path / "logs" / "supervisor.log"
    pid = spawn_detached([sys.executable, "-c", "import time; print('detached', flush=True); time.sleep(60)"],
                         log, cwd=tmp_path)
    try:
        assert pid_alive(pid)
        wait_for(lambda: log.exists() and "detached" in log.read_text(), 15.0, interval=0.05, what="the detached log line")
        if os.name != "nt":
            assert os.getsid(pid) == pid  # its own session: no terminal, survives ours
        pid_file = tmp_path / "supervisor.pid"
        write_pid_file(pid_file, pid)
        assert read_pid_file(pid_file) == pid
        data = pid_file.read_text().replace('"create_time": ', '"create_time": 1')  # another process's time
        (tmp_path / "recycled.pid").write_text(data.replace('"cmdline": [', '"cmdline": ["another-program", '))
        assert read_pid_file(tmp_path / "recycled.pid") is None
        # the same process after the wall clock was set back or forward: its create time moved with
        # the boot time, its command line did not (sandbox down left such a supervisor running)
        (tmp_path / "clock-stepped.pid").write_text(data)
        assert read_pid_file(tmp_path / "clock-stepped.pid") == pid
        write_pid_file(tmp_path / "me.pid")
        assert read_pid_file(tmp_path / "me.pid") == os.getpid()
    finally:
        p = psutil.Process(pid)
        p.kill()
        p.wait(10)
    assert not pid_alive(pid)
    assert read_pid_file(tmp_path / "supervisor.pid") is None
    remove_pid_file(tmp_path / "supervisor.pid")
    assert read_pid_file(tmp_path / "supervisor.pid") is None
    assert read_pid_file(tmp_path / "garbage.pid") is None
