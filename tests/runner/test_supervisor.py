"""Supervisor basics with a fake clock, spawner and probe: start order, crashes, health, stop, state file."""

from __future__ import annotations

import os

import pytest

from runner.runner_fakes import FakeClock, FakeHandle, FakeProbe, FakeSpawner, append_log, kinds, spec

from sandbox.runner.native import RecoveryPolicy, Supervisor
from sandbox.runner.statefile import read_state


def make(tmp_path, services=None, policy=None, probe="fake", **kw):
    clock, spawner = FakeClock(), FakeSpawner()
    fprobe = FakeProbe() if probe == "fake" else None
    services = services or [spec(tmp_path, "broker-1")]
    sup = Supervisor(services, policy or RecoveryPolicy(), spawner=spawner, clock=clock,
                     wall_clock=lambda: 1_795_000_000.0 + clock.t, probe=fprobe,
                     quarantine_root=tmp_path / ".sandbox" / "quarantine", sleep=lambda s: None, **kw)
    return sup, clock, spawner, fprobe


def test_brokers_start_with_the_coordinator_but_restart_only_once_it_is_healthy(tmp_path):
    """First start: all at once (a broker waits for the coordinator by itself, and its Python start
    overlaps the coordinator's). A restart waits for a healthy coordinator, so a broker that died
    because the coordinator was gone is not counted into a crash loop that would wipe its journal."""
    services = [spec(tmp_path, "broker-1"), spec(tmp_path, "coordinator", "coordinator", 9093)]
    sup, clock, spawner, probe = make(tmp_path, services)
    sup.step()
    assert [c[0] for c in spawner.calls if c[1] == "spawn"] == ["coordinator", "broker-1"]
    spawner.current("broker-1").code = 3        # gave up waiting for the coordinator
    for _ in range(8):   # well past the broker's backoff, within unhealthy_after_s of the coordinator
        clock.advance(1)
        sup.step()
    assert [c[0] for c in spawner.calls if c[1] == "spawn"] == ["coordinator", "broker-1"]
    assert sup.service("broker-1")["state"] == "recovering" and sup.service("broker-1")["pid"] is None
    probe.ok["coordinator"] = True
    clock.advance(1)
    sup.step()
    assert [c[0] for c in spawner.calls if c[1] == "spawn"] == ["coordinator", "broker-1", "broker-1"]
    assert sup.service("coordinator")["state"] == "running"
    probe.ok["broker-1"] = True
    sup.step()
    assert sup.service("broker-1")["healthy"] and sup.service("broker-1")["state"] == "running"


def test_without_a_probe_a_running_process_is_healthy_and_brokers_follow(tmp_path):
    services = [spec(tmp_path, "coordinator", "coordinator", 9093), spec(tmp_path, "broker-1")]
    sup, clock, spawner, _ = make(tmp_path, services, probe=None)
    sup.step()
    sup.step()
    assert [c[0] for c in spawner.calls if c[1] == "spawn"] == ["coordinator", "broker-1"]


def test_crash_restarts_with_exponential_backoff_and_counts(tmp_path):
    sup, clock, spawner, probe = make(tmp_path, probe=None,
                                      policy=RecoveryPolicy(backoff_initial_s=0.2, backoff_max_s=0.5))
    sup.step()
    delays = []
    for n in range(1, 4):
        spawner.current("broker-1").code = 1
        sup.step()
        st = sup.service("broker-1")
        assert st["state"] == "recovering" and st["restarts"] == n and st["last_exit_code"] == 1
        assert st["pid"] is None
        waited = 0.0
        while len(spawner.handles("broker-1")) == n:
            clock.advance(0.1)
            waited += 0.1
            sup.step()
        delays.append(round(waited, 1))
    assert delays == [0.2, 0.4, 0.5]  # 0.2, 0.4, then capped at backoff_max_s
    assert kinds(sup.events) == ["start"] + ["crash", "restart"] * 3  # no probe: healthy one pass later
    restart = [e for e in sup.events if e["kind"] == "restart"][0]
    assert "backoff 0.2s" in restart["detail"] and restart["pid"] == spawner.handles("broker-1")[1].pid


def test_crash_event_carries_exit_code_and_the_last_20_log_lines(tmp_path):
    sup, clock, spawner, _ = make(tmp_path, probe=None)
    s = spec(tmp_path, "broker-1")
    append_log(s.log_path, "line from an earlier run")
    sup.step()
    for i in range(25):
        append_log(s.log_path, f"line {i}")
    spawner.current("broker-1").code = -9
    sup.step()
    crash = [e for e in sup.events if e["kind"] == "crash"][0]
    assert crash["detail"] == "exit code -9" and crash["exit_code"] == -9
    assert crash["log_tail"] == [f"line {i}" for i in range(5, 25)]
    assert crash["service"] == "broker-1" and crash["time"].endswith("Z")


def test_on_crash_off_leaves_it_crashed(tmp_path):
    sup, clock, spawner, _ = make(tmp_path, probe=None, policy=RecoveryPolicy(on_crash="off"))
    sup.step()
    spawner.current("broker-1").code = 3
    sup.step()
    clock.advance(120)
    sup.step()
    assert len(spawner.handles("broker-1")) == 1
    st = sup.service("broker-1")
    assert st["state"] == "crashed" and st["restarts"] == 0 and st["last_exit_code"] == 3


def test_spawn_failure_is_a_crash_event_not_an_exception(tmp_path):
    sup, clock, spawner, _ = make(tmp_path, probe=None)
    spawner.fail.add("broker-1")
    sup.step()
    assert sup.service("broker-1")["state"] == "crashed"
    assert "could not start" in sup.events[-1]["detail"]


def test_repair_lines_in_the_log_become_repair_events(tmp_path):
    sup, clock, spawner, probe = make(tmp_path)
    s = spec(tmp_path, "broker-1")
    append_log(s.log_path, '2026 WARNING x EVENT repair {"bytes": 999, "segment": "old-run"}')
    spawner.log_on_start["broker-1"] = [
        '2026-11-25 21:00:00 WARNING sandbox.broker.state EVENT repair {"bytes": 38, "offset": 7, '
        '"segment": "orders-0/00000000000000000000.log"}',
        '2026-11-25 21:00:00 WARNING sandbox.broker.state EVENT stale-lock-removed {"path": "x/.lock", "pid": 77}',
        "an ordinary line",
    ]
    sup.step()
    sup.step()
    repairs = [e for e in sup.events if e["kind"] == "repair"]
    assert len(repairs) == 2  # the line written before this start is not reported
    assert repairs[0]["bytes"] == 38 and "38 bytes" in repairs[0]["detail"]
    assert "orders-0" in repairs[0]["detail"]
    assert repairs[1]["source"] == "stale-lock-removed" and "pid 77" in repairs[1]["detail"]
    sup.step()
    assert len([e for e in sup.events if e["kind"] == "repair"]) == 2  # not reported twice
    # written by a service that then dies: reported before its crash
    append_log(s.log_path, 'x EVENT repair {"bytes": 5, "segment": "s"}')
    spawner.current("broker-1").code = 1
    sup.step()
    assert kinds(sup.events)[-2:] == ["repair", "crash"]


def test_probe_failing_longer_than_unhealthy_after_restarts_it(tmp_path):
    sup, clock, spawner, probe = make(tmp_path, policy=RecoveryPolicy(unhealthy_after_s=10, grace_s=4))
    probe.ok["broker-1"] = True
    sup.step()
    sup.step()
    assert sup.service("broker-1")["healthy"]
    probe.ok["broker-1"] = False
    clock.advance(1)
    sup.step()
    assert not sup.service("broker-1")["healthy"] and sup.service("broker-1")["state"] == "running"
    clock.advance(6)
    sup.step()
    assert "unhealthy" not in kinds(sup.events)
    clock.advance(5)
    sup.step()
    ev = [e for e in sup.events if e["kind"] == "unhealthy"]
    assert len(ev) == 1 and ev[0]["probe"] == "api-versions"
    assert "probe api-versions failing for 11.0s" in ev[0]["detail"]
    first = spawner.handles("broker-1")[0]
    assert ("broker-1", "saw stop file", "unhealthy") in spawner.calls and first.code == 0
    assert not first.terminated
    st = sup.service("broker-1")
    assert st["state"] == "recovering" and st["restarts"] == 1
    clock.advance(0.2)
    probe.ok["broker-1"] = True
    sup.step()
    sup.step()
    assert len(spawner.handles("broker-1")) == 2
    assert kinds(sup.events)[-4:] == ["unhealthy", "stop", "restart", "healthy"]


def test_a_service_that_never_gets_healthy_is_restarted_after_its_startup_allowance(tmp_path):
    sup, clock, spawner, probe = make(tmp_path, policy=RecoveryPolicy(unhealthy_after_s=3))
    sup.step()
    for _ in range(8):   # 8 s failing since its start: less than 3 x unhealthy_after_s, still replaying
        clock.advance(1)
        sup.step()
    assert "unhealthy" not in kinds(sup.events)
    assert len(spawner.handles("broker-1")) == 1
    for _ in range(3):
        clock.advance(1)
        sup.step()
    ev = [e for e in sup.events if e["kind"] == "unhealthy"]
    assert len(ev) == 1 and "since it was started" in ev[0]["detail"]
    assert len(spawner.handles("broker-1")) == 2


def test_a_slow_start_is_not_restarted_and_a_later_failure_gets_no_allowance(tmp_path):
    sup, clock, spawner, probe = make(tmp_path, policy=RecoveryPolicy(unhealthy_after_s=3, grace_s=0))
    probe.ok["broker-1"] = False
    sup.step()
    for _ in range(5):   # a start slower than unhealthy_after_s (a loaded machine): left alone
        clock.advance(1)
        sup.step()
    probe.ok["broker-1"] = True
    sup.step()
    assert sup.service("broker-1")["healthy"] and "unhealthy" not in kinds(sup.events)
    probe.ok["broker-1"] = False
    for _ in range(4):   # once it has been healthy, unhealthy_after_s alone counts
        clock.advance(1)
        sup.step()
    assert "unhealthy" in kinds(sup.events)


def test_stop_all_brokers_first_then_coordinator_escalating(tmp_path):
    services = [spec(tmp_path, "coordinator", "coordinator", 9093), spec(tmp_path, "broker-1"),
                spec(tmp_path, "broker-2", port=9094)]
    sup, clock, spawner, probe = make(tmp_path, services, probe=None, policy=RecoveryPolicy(grace_s=8))
    spawner.behaviour["broker-2"] = {"honour_stop_file": False}
    spawner.behaviour["coordinator"] = {"honour_stop_file": False, "exit_on_terminate": False}
    sup.step()
    sup.step()
    assert len(spawner.spawned) == 3
    spawner.calls.clear()
    sup.stop_all()
    calls = spawner.calls
    names = [c[0] for c in calls]
    assert names.index("coordinator") > max(i for i, n in enumerate(names) if n.startswith("broker"))
    assert ("broker-1", "saw stop file", "stop") in calls
    assert ("broker-1", "terminate") not in calls
    b2 = [c[1] for c in calls if c[0] == "broker-2"]
    assert b2.index("terminate") > b2.index("wait") and "kill" not in b2
    co = [c[1] for c in calls if c[0] == "coordinator"]
    assert co.index("wait") < co.index("terminate") < co.index("kill")
    assert ("coordinator", "wait", 4.0) in calls  # grace/2 for the stop file, grace/2 after terminate
    assert all(h.poll() is not None for h in spawner.spawned)  # nothing left running
    stops = {e["service"]: e["detail"] for e in sup.events if e["kind"] == "stop"}
    assert stops["broker-1"].startswith("stopped (stop file)")
    assert stops["broker-2"].startswith("terminated")
    assert stops["coordinator"].startswith("killed after 8s")
    assert all(s["state"] == "stopped" and s["pid"] is None for s in sup.snapshot()["services"])
    assert not any(s.stop_file.exists() for s in services)
    clock.advance(100)
    sup.step()
    assert len(spawner.spawned) == 3  # stopped services stay stopped


def test_restart_one_service_gracefully(tmp_path):
    sup, clock, spawner, probe = make(tmp_path, probe=None)
    sup.step()
    first = spawner.current("broker-1")
    sup.restart("broker-1")
    assert first.code is None   # a command for the loop: nothing happens outside step()
    sup.step()
    assert first.code == 0 and len(spawner.handles("broker-1")) == 2
    assert kinds(sup.events)[-2:] == ["stop", "restart"]
    assert "requested" in sup.events[-1]["detail"]
    assert sup.service("broker-1")["restarts"] == 0
    with pytest.raises(KeyError, match="broker-1"):
        sup.restart("broker-9")


def test_state_file_is_written_on_change_and_readable(tmp_path):
    state = tmp_path / ".sandbox" / "supervisor.json"
    sup, clock, spawner, probe = make(tmp_path, probe=None, state_path=state)
    sup.step()
    sup.step()
    data = read_state(state)
    assert data["supervisor_pid"] == os.getpid()
    assert data["services"][0]["name"] == "broker-1" and data["services"][0]["state"] == "running"
    assert data["services"][0]["pid"] == spawner.current("broker-1").pid
    assert [e["kind"] for e in data["events"]] == ["start", "healthy"]
    mtime = state.stat().st_mtime_ns
    sup.step()
    assert state.stat().st_mtime_ns == mtime  # nothing changed: not rewritten
    spawner.current("broker-1").code = 1
    sup.step()
    data = read_state(state)
    assert data["services"][0]["state"] == "recovering" and data["events"][-1]["kind"] == "crash"
    assert not list(state.parent.glob("*.tmp"))
    assert read_state(tmp_path / "missing.json") is None


def test_events_are_capped(tmp_path):
    sup, clock, spawner, _ = make(tmp_path, probe=None,
                                  policy=RecoveryPolicy(on_corrupt_journal="repair", backoff_initial_s=0))
    sup.step()
    for _ in range(150):
        spawner.current("broker-1").code = 1
        sup.step()
        sup.step()
    assert len(sup.events) == 200
    assert len(sup.snapshot()["events"]) == 200


def test_was_ready_outlives_the_trimmed_events(tmp_path):
    """`up` on a running stack tells a stack still starting (wait for it) from one that was up
    and is degraded now (say so, do not wait) by the state file's `was_ready`: the `healthy`
    events it was told by before are trimmed after 200 events (here the coordinator's, by a
    broker crashing again and again), and `up` then waited for its whole timeout."""
    from sandbox.runner import control

    services = [spec(tmp_path, "coordinator", "coordinator", 9093), spec(tmp_path, "broker-1")]
    sup, clock, spawner, _ = make(tmp_path, services, probe=None,
                                  policy=RecoveryPolicy(on_corrupt_journal="repair", backoff_initial_s=0))
    sup.step()
    assert not sup.snapshot()["was_ready"] and not control.was_ready(sup.snapshot())
    sup.step()
    assert sup.snapshot()["was_ready"]
    for _ in range(150):
        spawner.current("broker-1").code = 1
        sup.step()
        sup.step()
    spawner.current("broker-1").code = 1
    sup.step()
    snap = sup.snapshot()
    assert not control.ready(snap) and control.was_ready(snap)
    assert not any(e["kind"] == "healthy" and e["service"] == "coordinator" for e in snap["events"])
    legacy = {k: v for k, v in snap.items() if k != "was_ready"}   # the events alone no longer tell
    assert not control.was_ready(legacy)


def test_on_event_sees_every_event_and_its_errors_do_not_stop_the_supervisor(tmp_path):
    seen = []

    def on_event(e):
        seen.append(e["kind"])
        raise RuntimeError("printer broke")

    sup, clock, spawner, _ = make(tmp_path, probe=None, on_event=on_event)
    sup.step()
    sup.step()
    assert seen == ["start", "healthy"]


def test_duplicate_names_and_bad_roles_are_refused(tmp_path):
    with pytest.raises(ValueError, match="unique"):
        Supervisor([spec(tmp_path, "b"), spec(tmp_path, "b")], spawner=FakeSpawner())
    with pytest.raises(ValueError, match="role"):
        spec(tmp_path, "x", role="zookeeper")


def test_native_and_docker_supervisors_share_one_interface_and_one_state_writer(tmp_path):
    """Both publish a snapshot naming their own process (pid + create time) and a heartbeat that
    is rewritten every second even when nothing else changes (readers call a stale one dead)."""
    import psutil

    from sandbox.runner.docker_watch import DockerWatcher
    from sandbox.runner.service import StackSupervising

    state = tmp_path / ".sandbox" / "supervisor.json"
    sup, clock, spawner, probe = make(tmp_path, probe=None, state_path=state)

    class NoEngine:
        plans: dict = {}

        def __getattr__(self, name):
            raise AssertionError(f"not used: {name}")

    watcher = DockerWatcher(NoEngine(), RecoveryPolicy(), state_path=tmp_path / "docker.json", clock=clock)
    for s in (sup, watcher):
        assert isinstance(s, StackSupervising)
    sup.step()
    sup.step()    # started, then healthy: settled
    first = read_state(state)
    assert first["supervisor_pid"] == os.getpid()
    assert first["supervisor_create_time"] == psutil.Process().create_time()
    clock.advance(0.5)
    sup.step()
    assert read_state(state)["heartbeat"] == first["heartbeat"]     # nothing changed, not due
    clock.advance(0.6)
    sup.step()
    assert read_state(state)["heartbeat"] > first["heartbeat"]      # the heartbeat is due
    watcher._flush(force=True)
    docker = read_state(tmp_path / "docker.json")
    assert docker["supervisor_pid"] == os.getpid() and docker["heartbeat"] > 0


def test_a_full_disk_reported_by_a_service_is_a_problem_until_writes_succeed_again(tmp_path):
    sup, clock, spawner, probe = make(tmp_path, probe=None)
    s = spec(tmp_path, "broker-1")
    sup.step()
    sup.step()    # started and healthy
    append_log(s.log_path, 'x WARNING sandbox.broker: EVENT storage-error {"errno": 28, '
                           '"message": "No space left on device", "path": "/d/orders-0"}')
    sup.step()
    st = sup.service("broker-1")
    assert st["problem"].startswith("disk full or failing: No space left on device")
    assert kinds(sup.events)[-1] == "disk-full" and sup.events[-1]["path"] == "/d/orders-0"
    assert st["state"] == "running" and len(spawner.handles("broker-1")) == 1   # nothing restarted
    append_log(s.log_path, "x WARNING sandbox.broker: EVENT storage-ok {}")
    sup.step()
    assert sup.service("broker-1")["problem"] is None
    assert sup.events[-1]["kind"] == "disk-full" and sup.events[-1]["resolved"] is True
    assert not (tmp_path / ".sandbox" / "quarantine").exists()


def test_a_failure_shorter_than_unhealthy_after_is_told_by_the_healthy_event_that_ends_it(tmp_path):
    """No "unhealthy" event before unhealthy_after_s (a blip restarts nothing), so the "healthy"
    event that ends a shorter failure says how long the service did not answer: before, a 9 s hang
    left only a bare "healthy"."""
    sup, clock, spawner, probe = make(tmp_path, policy=RecoveryPolicy(unhealthy_after_s=10))
    probe.ok["broker-1"] = True
    sup.step()
    sup.step()
    probe.ok["broker-1"] = False
    for _ in range(6):
        clock.advance(1)
        sup.step()
    probe.ok["broker-1"] = True
    clock.advance(1)
    sup.step()
    ev = [e for e in sup.events if e["kind"] == "healthy" and e.get("service") == "broker-1"]
    assert "unhealthy" not in kinds(sup.events)
    assert "answering again after 6.0s of failed probes" in ev[-1]["detail"], ev
    assert "answering again" not in ev[0]["detail"]   # the first, at its start, is a plain one


def test_an_adopted_service_counts_its_uptime_from_its_own_start(tmp_path):
    """SPEC: uptime_s is the seconds since the service started; an adopted one (started by a
    supervisor that died) showed the seconds since the adoption."""
    calls: list = []

    def adopt(s):
        h = FakeHandle(4242, s, calls)
        h.started_wall = 1_795_000_000.0 - 300   # five minutes before this supervisor's clock starts
        return h

    sup, clock, spawner, probe = make(tmp_path, adopt=adopt)
    probe.ok["broker-1"] = True
    sup.step()
    clock.advance(2)
    sup.step()
    st = sup.service("broker-1")
    assert st["pid"] == 4242 and st["uptime_s"] == pytest.approx(300 + clock.t)
