"""The supervisor's control protocol (runner/control.py) on a fake clock: waiting until ready,
restart, stop, and the kill/pause requests, with the supervisor played by the test through its
state file and the request files it would read."""

from __future__ import annotations

import os
import threading

import pytest

from runner.runner_fakes import FakeClock
from sandbox.config import load_config
from sandbox.runner import control, inbox, stack
from sandbox.runner.detach import write_pid_file
from sandbox.runner.statefile import write_state

SUP_PID = 424242


def make_cfg(tmp_path):
    cfg = load_config(None, cwd=tmp_path)
    cfg.data_dir.mkdir(parents=True, exist_ok=True)
    cfg.logs_dir.mkdir(parents=True, exist_ok=True)
    return cfg


def svc(name, state="running", healthy=True, pid=1000, **kw):
    return {"name": name, "role": "coordinator" if name == "coordinator" else "broker", "state": state,
            "healthy": healthy, "pid": pid, **kw}


def publish(cfg, services, pid=SUP_PID):
    write_state(cfg.data_dir / stack.STATE_FILE, {"supervisor_pid": pid, "services": services})


def running_cfg(tmp_path):
    """A sandbox whose "supervisor" (this process) runs coordinator pid 1 and broker-1 pid 2."""
    cfg = make_cfg(tmp_path)
    write_pid_file(cfg.data_dir / stack.PID_FILE, os.getpid())
    publish(cfg, [svc("coordinator", pid=1), svc("broker-1", pid=2)])
    return cfg


class Supervisor:
    """The other side, stepped by the waiter's sleep: `on_sleep` is called with the clock's time."""

    def __init__(self, on_sleep=None, alive=True):
        self.clock = FakeClock()
        self.slept = 0.0
        self.on_sleep = on_sleep or (lambda now: None)
        self.is_alive = alive

    def sleep(self, dt):
        self.slept += dt
        self.clock.advance(dt)
        self.on_sleep(self.clock.t)

    def waiter(self):
        return control.Waiter(clock=self.clock, sleep=self.sleep, alive=lambda pid: self.is_alive)


def test_wait_ready_returns_once_every_service_is_running_and_healthy(tmp_path):
    cfg = make_cfg(tmp_path)
    publish(cfg, [svc("coordinator"), svc("broker-1", state="starting", healthy=False)])
    start = FakeClock().t
    sup = Supervisor(lambda now: now - start >= 2.0 and publish(cfg, [svc("coordinator"), svc("broker-1")]))
    state = control.wait_ready(cfg, SUP_PID, 10.0, waiter=sup.waiter())
    assert [s["state"] for s in state["services"]] == ["running", "running"]
    assert 2.0 <= sup.slept < 2.2


def test_wait_ready_with_no_time_left_still_looks_once(tmp_path):
    """`up --docker` gives it what its --timeout has left after the containers' own health wait,
    0 when that took it all: a stack healthy by then is ready, not "did not become healthy"."""
    cfg = make_cfg(tmp_path)
    publish(cfg, [svc("coordinator"), svc("broker-1")])
    sup = Supervisor()
    assert [s["state"] for s in control.wait_ready(cfg, SUP_PID, 0.0, waiter=sup.waiter())["services"]] == \
        ["running", "running"]
    publish(cfg, [svc("coordinator"), svc("broker-1", state="starting", healthy=False)])
    with pytest.raises(control.ControlError, match="did not become healthy in time"):
        control.wait_ready(cfg, SUP_PID, 0.0, waiter=sup.waiter())
    assert sup.slept == 0


def test_wait_ready_ignores_the_state_of_an_earlier_supervisor_and_times_out_naming_what_is_unhealthy(tmp_path):
    cfg = make_cfg(tmp_path)
    publish(cfg, [svc("coordinator"), svc("broker-1")], pid=SUP_PID + 1)   # all healthy, but not ours
    sup = Supervisor()
    with pytest.raises(control.ControlError) as e:
        control.wait_ready(cfg, SUP_PID, 5.0, waiter=sup.waiter())
    assert e.value.code == 1 and "did not become healthy in time" in e.value.message
    assert sup.slept == pytest.approx(5.0, abs=0.11)
    publish(cfg, [svc("coordinator"), svc("broker-1", state="starting", healthy=False)])
    with pytest.raises(control.ControlError) as e:
        control.wait_ready(cfg, SUP_PID, 3.0, waiter=Supervisor().waiter())
    assert "broker-1: starting (see `sandbox logs broker-1`)" in e.value.message
    assert "coordinator" not in e.value.message


def test_wait_ready_stops_at_once_on_a_configuration_error_or_a_dead_supervisor(tmp_path):
    cfg = make_cfg(tmp_path)
    publish(cfg, [svc("coordinator"), svc("broker-1", state="crashed", healthy=False, problem="port 9092 is taken")])
    sup = Supervisor()
    with pytest.raises(control.ControlError) as e:
        control.wait_ready(cfg, SUP_PID, 60.0, waiter=sup.waiter())
    assert e.value.message == "the sandbox cannot start: broker-1: port 9092 is taken" and sup.slept == 0
    publish(cfg, [svc("coordinator", state="starting", healthy=False)])
    sup = Supervisor(alive=False)
    with pytest.raises(control.ControlError):
        control.wait_ready(cfg, SUP_PID, 60.0, waiter=sup.waiter())
    assert sup.slept == 0


def test_wait_ready_gives_up_when_its_stop_event_is_set(tmp_path):
    cfg = make_cfg(tmp_path)
    stop = threading.Event()
    sup = Supervisor(lambda now: stop.set())
    with pytest.raises(control.Interrupted):
        control.wait_ready(cfg, SUP_PID, 60.0, stop=stop, waiter=sup.waiter())
    assert sup.slept == pytest.approx(0.1)


def test_restart_asks_through_the_restart_file_and_waits_for_new_healthy_processes(tmp_path):
    cfg = make_cfg(tmp_path)
    publish(cfg, [svc("coordinator", pid=1), svc("broker-1", pid=2)])
    seen = []

    def supervisor(now):
        req = cfg.data_dir / stack.RESTART_FILE
        if req.exists():
            seen.append(req.read_text())
            req.unlink()
            publish(cfg, [svc("coordinator", pid=1), svc("broker-1", pid=3, state="starting", healthy=False)])
        elif seen and len(seen) == 1:
            seen.append("healthy")
            publish(cfg, [svc("coordinator", pid=1), svc("broker-1", pid=3)])

    sup = Supervisor(supervisor)
    assert control.restart(cfg, "broker-1", waiter=sup.waiter()) == ["broker-1"]
    assert seen == ["broker-1", "healthy"]


def test_restart_of_an_unknown_service_or_one_that_never_comes_back(tmp_path):
    cfg = make_cfg(tmp_path)
    publish(cfg, [svc("coordinator", pid=1), svc("broker-1", pid=2)])
    with pytest.raises(control.ControlError) as e:
        control.restart(cfg, "broker-9", waiter=Supervisor().waiter())
    assert e.value.code == 2 and "no service 'broker-9'; services are coordinator, broker-1" == e.value.message
    assert not (cfg.data_dir / stack.RESTART_FILE).exists()
    sup = Supervisor()
    with pytest.raises(control.ControlError) as e:
        control.restart(cfg, None, timeout=60.0, waiter=sup.waiter())
    assert e.value.code == 1 and "did not come back healthy within 60 s" in e.value.message
    assert sup.slept == pytest.approx(60.0, abs=0.21)


def test_stop_writes_the_stop_file_and_waits_for_the_supervisor_to_exit(tmp_path):
    cfg = make_cfg(tmp_path)
    write_pid_file(cfg.data_dir / stack.PID_FILE, os.getpid())   # "the supervisor": this process
    sup = Supervisor()

    def supervisor(now):
        if (cfg.data_dir / stack.STOP_FILE).exists() and sup.slept >= 1.0:
            sup.is_alive = False

    sup.on_sleep = supervisor
    done = control.stop(cfg, waiter=sup.waiter())
    assert done.supervisor_pid == os.getpid() and done.anything and not done.left
    assert 1.0 <= sup.slept < 1.2
    assert (cfg.data_dir / stack.STOP_FILE).read_text() == "stop"


def test_stop_with_nothing_running(tmp_path):
    cfg = make_cfg(tmp_path)
    done = control.stop(cfg, waiter=Supervisor().waiter())
    assert not done.anything and done.supervisor_pid is None


def test_requests_are_read_once_in_the_order_they_were_sent(tmp_path):
    cfg = make_cfg(tmp_path)
    control.send(cfg, "kill", "broker-1")
    control.send(cfg, "pause", "broker-2", seconds=15.0)
    assert inbox.take(cfg.data_dir) == [{"command": "kill", "service": "broker-1"},
                                          {"command": "pause", "service": "broker-2", "seconds": 15.0}]
    assert inbox.take(cfg.data_dir) == []


def test_kill_and_pause_need_a_running_sandbox_and_a_known_service(tmp_path):
    cfg = make_cfg(tmp_path)
    with pytest.raises(control.ControlError) as e:
        control.kill(cfg, "broker-1", waiter=Supervisor().waiter())
    assert e.value.code == 3 and "is not running; start it with `sandbox up`" in e.value.message
    cfg = running_cfg(tmp_path)
    for attempt in (lambda: control.kill(cfg, "broker-7", waiter=Supervisor().waiter()),
                    lambda: control.pause(cfg, "zookeeper", 3.0, waiter=Supervisor().waiter())):
        with pytest.raises(control.ControlError) as e:
            attempt()
        assert e.value.code == 2 and "services are coordinator, broker-1" in e.value.message
    assert inbox.take(cfg.data_dir) == []


def test_kill_returns_once_the_supervisor_has_killed_it(tmp_path):
    cfg = running_cfg(tmp_path)
    got = []

    def supervisor(now):
        got.extend(inbox.take(cfg.data_dir))
        if got:
            publish(cfg, [svc("coordinator", pid=1), svc("broker-1", pid=None, state="recovering", healthy=False)])

    before = control.kill(cfg, "broker-1", waiter=Supervisor(supervisor).waiter())
    assert before["pid"] == 2 and got == [{"command": "kill", "service": "broker-1"}]


def test_pause_returns_once_paused_and_wait_resumed_once_it_runs_again(tmp_path):
    cfg = running_cfg(tmp_path)
    resume_at = []

    def supervisor(now):
        for req in inbox.take(cfg.data_dir):
            resume_at.append(now + req["seconds"])
            publish(cfg, [svc("coordinator", pid=1), svc("broker-1", pid=2, state="paused", healthy=False)])
        if resume_at and now >= resume_at[0]:
            publish(cfg, [svc("coordinator", pid=1), svc("broker-1", pid=2)])

    sup = Supervisor(supervisor)
    assert control.pause(cfg, "broker-1", 3.0, waiter=sup.waiter())["state"] == "paused"
    assert control.wait_resumed(cfg, "broker-1", 10.0, waiter=sup.waiter())["state"] == "running"
    assert sup.clock.t >= resume_at[0]
    with pytest.raises(control.ControlError) as e:
        control.pause(cfg, "broker-1", 0, waiter=sup.waiter())
    assert e.value.code == 2 and "--for" in e.value.message


def test_with_the_disk_full_stop_takes_the_supervisor_down_and_kill_is_one_sentence(tmp_path, monkeypatch):
    """Found by review: on a full disk `sandbox down` and `sandbox kill` printed an OSError
    traceback (the stop file and the request files could not be written). Now a request is refused
    with one sentence, and a stop that cannot ask the supervisor ends it at once (its services are
    then stopped one by one, as those of a killed supervisor)."""
    import errno
    import pathlib
    import subprocess
    import sys

    cfg = running_cfg(tmp_path)
    real = pathlib.Path.write_text

    def full(self, *a, **kw):
        if self.parent == cfg.data_dir or self.parent.name == inbox.INBOX_DIR:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, *a, **kw)
    with pytest.raises(control.ControlError) as e:
        monkeypatch.setattr(pathlib.Path, "write_text", full)
        control.kill(cfg, "broker-1", waiter=Supervisor().waiter())
    assert "could not be written (No space left on device)" in e.value.message and "free space" in e.value.message
    monkeypatch.setattr(pathlib.Path, "write_text", real)
    stand_in = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        write_pid_file(cfg.data_dir / stack.PID_FILE, stand_in.pid)
        monkeypatch.setattr(pathlib.Path, "write_text", full)
        sup = Supervisor()
        sup.waiter = lambda: control.Waiter(clock=sup.clock, sleep=sup.sleep, alive=lambda pid: stand_in.poll() is None)
        done = control.stop(cfg, waiter=sup.waiter())
        assert done.supervisor_pid == stand_in.pid and sup.slept < 1.0   # not the 60 s wait for a stop file
        assert stand_in.wait(10) is not None
    finally:
        stand_in.kill()
        stand_in.wait()


def test_a_request_held_by_another_program_is_taken_once_when_let_go(tmp_path, monkeypatch):
    """Windows: a virus scanner holding a new request file makes it impossible to remove (or
    rename) for a while; read and left in place, `sandbox kill` was carried out at every pass."""
    from winfiles import install

    listing = tmp_path.parent / f"{tmp_path.name}-held.txt"
    listing.write_text("")
    sem = install(tmp_path, monkeypatch.setattr, held_by=str(listing))
    try:
        inbox.send(tmp_path, "kill", "broker-1")
        (held,) = (tmp_path / inbox.INBOX_DIR).glob("*.json")
        listing.write_text(f"{held}\n")
        assert inbox.take(tmp_path) == [] and inbox.take(tmp_path) == []   # held: not yet, and not twice
        listing.write_text("")
        assert inbox.take(tmp_path) == [{"command": "kill", "service": "broker-1"}]
        assert inbox.take(tmp_path) == []
    finally:
        sem.active = False


def test_a_held_stop_or_restart_file_is_taken_once_let_go_and_never_raises(tmp_path, monkeypatch):
    """Found by review: the supervisor unlinked the stop and restart files in place; one a virus
    scanner held raised PermissionError out of its loop and ended the supervisor."""
    from winfiles import install

    listing = tmp_path.parent / f"{tmp_path.name}-held2.txt"
    listing.write_text("")
    sem = install(tmp_path, monkeypatch.setattr, held_by=str(listing))
    try:
        stop = tmp_path / stack.STOP_FILE
        stop.write_text("stop", encoding="utf-8")
        listing.write_text(f"{stop}\n")
        assert inbox.take_file(stop) is None and stop.exists()     # held: later, and no exception
        listing.write_text("")
        assert inbox.take_file(stop) == "stop" and not stop.exists()
        assert inbox.take_file(stop) is None                       # taken once
    finally:
        sem.active = False


def test_restart_kill_and_pause_end_at_once_when_the_sandbox_is_stopped_meanwhile(tmp_path):
    """Found by review: a `sandbox restart` during a `sandbox down` waited its full 60 s, then said
    "did not come back healthy". Now the wait sees the supervisor gone and says so at once."""
    cfg = running_cfg(tmp_path)
    for state, ask in (("running", lambda w: control.restart(cfg, "broker-1", waiter=w)),
                       ("running", lambda w: control.restart(cfg, None, waiter=w)),
                       ("running", lambda w: control.kill(cfg, "broker-1", waiter=w)),
                       ("running", lambda w: control.pause(cfg, "broker-1", 3.0, waiter=w)),
                       ("paused", lambda w: control.wait_resumed(cfg, "broker-1", 30.0, waiter=w))):
        publish(cfg, [svc("coordinator", pid=1), svc("broker-1", pid=2, state=state)])
        sup = Supervisor()

        def down(now, sup=sup):
            sup.is_alive = False   # `sandbox down` ended the supervisor after its first look
        sup.on_sleep = down
        with pytest.raises(control.ControlError) as e:
            ask(sup.waiter())
        assert "the sandbox was stopped (by `sandbox down`) before the" in e.value.message
        assert e.value.code == control.NOT_RUNNING and sup.slept < 1.0
