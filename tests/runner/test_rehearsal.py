"""`sandbox kill` and `sandbox pause` in the native supervisor, on a fake clock: a kill is a crash
(restarted with a new process), a pause freezes the process until the deadline the supervisor
owns, without probes, crash counting or restarts meanwhile; stopping resumes it first."""

from __future__ import annotations

import pytest

from runner.runner_fakes import FakeClock, FakeProbe, FakeSpawner, kinds, spec
from sandbox.runner.probe import ProbeResult
from sandbox.runner.native import RecoveryPolicy, Supervisor


def make(tmp_path):
    clock, spawner, probe = FakeClock(), FakeSpawner(), FakeProbe()
    services = [spec(tmp_path, "coordinator", "coordinator", 9093), spec(tmp_path, "broker-1")]
    sup = Supervisor(services, RecoveryPolicy(), spawner=spawner, clock=clock,
                     wall_clock=lambda: 1_795_000_000.0 + clock.t, probe=probe,
                     quarantine_root=tmp_path / ".sandbox" / "quarantine", sleep=lambda s: None)
    probe.ok.update({"coordinator": True, "broker-1": True})
    sup.step()
    sup.step()
    assert sup.service("broker-1")["state"] == "running"
    return sup, clock, spawner, probe


def test_kill_is_a_crash_and_the_service_comes_back_with_a_new_process(tmp_path):
    sup, clock, spawner, probe = make(tmp_path)
    first = spawner.current("broker-1")
    sup.kill("broker-1")
    assert not first.killed   # a command for the loop: nothing happens outside step()
    sup.step()
    assert first.killed and first.code == -9
    sup.step()
    got = kinds(sup.events, "broker-1")
    assert got[got.index("kill"):][:3] == ["kill", "crash", "restart"]   # at once: a kill earns no backoff
    for _ in range(5):
        clock.advance(1)
        sup.step()
    assert len(spawner.handles("broker-1")) == 2
    assert sup.service("broker-1")["pid"] == spawner.current("broker-1").pid != first.pid
    assert sup.service("broker-1")["state"] == "running" and sup.service("broker-1")["restarts"] == 1
    with pytest.raises(KeyError, match="broker-9"):
        sup.kill("broker-9")


def test_pause_freezes_until_the_deadline_without_probes_or_restarts(tmp_path):
    sup, clock, spawner, probe = make(tmp_path)
    handle = spawner.current("broker-1")
    sup.pause("broker-1", 15.0)
    sup.step()
    assert handle.frozen and sup.service("broker-1")["state"] == "paused"
    assert not sup.service("broker-1")["healthy"]
    probe.ok["broker-1"] = False   # a frozen broker answers nothing
    probed = probe.calls.count("broker-1")
    for _ in range(14):   # far past unhealthy_after_s: still not restarted, not even probed
        clock.advance(1)
        sup.step()
        assert sup.service("broker-1")["state"] == "paused"
    assert probe.calls.count("broker-1") == probed
    assert handle.frozen and len(spawner.handles("broker-1")) == 1 and handle.code is None
    probe.ok["broker-1"] = True
    clock.advance(1)
    sup.step()   # the deadline: resumed, probed again, healthy
    assert not handle.frozen and ("broker-1", "resume") in spawner.calls
    assert sup.service("broker-1")["state"] == "running" and sup.service("broker-1")["healthy"]
    assert kinds(sup.events, "broker-1")[-3:] == ["pause", "resume", "healthy"]
    assert "crash" not in kinds(sup.events, "broker-1") and sup.service("broker-1")["restarts"] == 0
    assert sup.service("broker-1")["pid"] == handle.pid


def test_a_second_pause_moves_the_deadline_and_a_bad_duration_is_refused(tmp_path):
    sup, clock, spawner, _ = make(tmp_path)
    sup.pause("broker-1", 5.0)
    sup.step()
    clock.advance(4)
    sup.pause("broker-1", 5.0)
    sup.step()
    clock.advance(4)
    sup.step()
    assert sup.service("broker-1")["state"] == "paused"
    assert spawner.calls.count(("broker-1", "suspend")) == 1
    clock.advance(1)
    sup.step()
    assert sup.service("broker-1")["state"] != "paused"
    with pytest.raises(ValueError):
        sup.pause("broker-1", 0)


def test_a_paused_service_is_resumed_before_it_is_stopped_or_killed(tmp_path):
    sup, clock, spawner, _ = make(tmp_path)
    handle = spawner.current("broker-1")
    sup.pause("broker-1", 60.0)
    sup.step()
    sup.kill("broker-1")
    sup.step()
    assert spawner.calls.index(("broker-1", "resume")) < spawner.calls.index(("broker-1", "kill"))
    assert not handle.frozen and sup.service("broker-1")["state"] != "paused"
    sup2, _, spawner2, _ = make(tmp_path / "two")
    sup2.pause("broker-1", 60.0)
    sup2.step()
    sup2.stop_all(grace_s=2.0)
    assert not spawner2.current("broker-1").frozen
    assert spawner2.current("broker-1").code == 0   # it read its stop file: it was not frozen


def test_pausing_a_service_that_does_not_run_is_an_event_not_a_failure(tmp_path):
    sup, clock, spawner, _ = make(tmp_path)
    spawner.current("broker-1").code = 1
    sup.step()   # crashed, restart pending after backoff
    sup.pause("broker-1", 5.0)
    sup.step()
    assert sup.events[-1]["kind"] == "error" and "cannot pause broker-1" in sup.events[-1]["detail"]


# ---- docker mode: the watcher owns the pause deadline too --------------------------------------

class _Plan:
    def __init__(self, service, role, port):
        self.service, self.role, self.name, self.host_port = service, role, f"sb-{service}", port


class _State:
    def __init__(self, status="running"):
        self.status, self.health, self.exit_code = status, "healthy", 0
        self.started_at, self.volume, self.pid = "2026-11-26T01:00:00.5Z", "vol", None


class FakeEngine:
    def __init__(self):
        self.plans = {"coordinator": _Plan("coordinator", "coordinator", 9093), "broker-1": _Plan("broker-1", "broker", 9092)}
        self.states = {s: _State() for s in self.plans}
        self.calls: list[tuple] = []

    def inspect(self, service):
        return self.states[service]

    def events(self, since, until):
        return []

    def logs(self, service, since=None, tail="all", timestamps=False):
        return []

    def measure(self, service):
        return {}

    def _act(self, what, service, status=None):
        self.calls.append((what, service))
        if status:
            self.states[service].status = status

    def start(self, service):
        self._act("start", service, "running")

    def restart(self, service):
        self._act("restart", service)

    def stop(self, service):
        self._act("stop", service, "exited")

    def kill(self, service):
        self._act("kill", service, "exited")

    def pause(self, service):
        self._act("pause", service, "paused")

    def unpause(self, service):
        self._act("unpause", service, "running")


def test_docker_watcher_pauses_until_its_deadline_without_restarting(tmp_path):
    from sandbox.runner.docker_watch import DockerWatcher

    clock = FakeClock()
    engine = FakeEngine()
    answers = {"ok": True}
    watcher = DockerWatcher(engine, RecoveryPolicy(), clock=clock, wall_clock=lambda: 1_795_000_000.0 + clock.t,
                            probe=lambda host, port, timeout: ProbeResult(answers["ok"], "api-versions", "probe", 0.5))
    watcher.step()
    assert {s["name"]: s["state"] for s in watcher.snapshot()["services"]}["broker-1"] == "running"
    watcher.pause("broker-1", 10.0)
    answers["ok"] = False   # a frozen broker answers nothing
    for _ in range(9):   # past unhealthy_after_s: not restarted, still paused
        clock.advance(1)
        watcher.step()
        assert next(s for s in watcher.snapshot()["services"] if s["name"] == "broker-1")["state"] == "paused"
    assert [c for c in engine.calls if c[1] == "broker-1"] == [("pause", "broker-1")]
    answers["ok"] = True
    clock.advance(1)
    watcher.step()
    assert engine.calls[-1] == ("unpause", "broker-1")
    svc = next(s for s in watcher.snapshot()["services"] if s["name"] == "broker-1")
    assert svc["state"] == "running" and svc["restarts"] == 0
    assert [e["kind"] for e in watcher.events if e["service"] == "broker-1"][-3:] == ["pause", "resume", "healthy"]
    watcher.kill("broker-1")
    assert engine.calls[-1] == ("kill", "broker-1")


def test_a_resumed_service_that_stays_silent_gets_the_usual_allowance_not_a_starts(tmp_path):
    sup, clock, spawner, probe = make(tmp_path)   # unhealthy_after_s 10 (the default)
    sup.pause("broker-1", 5.0)
    sup.step()
    probe.ok["broker-1"] = False   # resumed, but wedged: it never answers again
    for _ in range(6):
        clock.advance(1)
        sup.step()
    assert sup.service("broker-1")["state"] != "paused"
    for _ in range(11):   # 11 s failing: past unhealthy_after_s, well within 3 x of a start
        clock.advance(1)
        sup.step()
    ev = [e for e in sup.events if e["kind"] == "unhealthy" and e.get("service") == "broker-1"]
    assert len(ev) == 1 and "since it was started" not in ev[0]["detail"]


def test_a_pause_is_in_the_state_file_before_the_same_pass_probes_anything(tmp_path):
    """`sandbox status` reads the state file: a service the supervisor has just frozen must not
    be shown running while that pass's probes (up to a second each) are still to come."""
    import json

    state = tmp_path / ".sandbox" / "state.json"
    clock, spawner, probe = FakeClock(), FakeSpawner(), FakeProbe()
    services = [spec(tmp_path, "coordinator", "coordinator", 9093), spec(tmp_path, "broker-1")]
    sup = Supervisor(services, RecoveryPolicy(), spawner=spawner, clock=clock,
                     wall_clock=lambda: 1_795_000_000.0 + clock.t, probe=probe, state_path=state,
                     quarantine_root=tmp_path / ".sandbox" / "quarantine", sleep=lambda s: None)
    probe.ok.update({"coordinator": True, "broker-1": True})
    sup.step()
    sup.step()
    seen = []

    def probing(s):   # what status would show while the coordinator is being probed
        doc = json.loads(state.read_text())
        seen.append(next(x["state"] for x in doc["services"] if x["name"] == "broker-1"))
        return FakeProbe.__call__(probe, s)
    sup._probe = probing
    clock.advance(2)   # probes are due again
    sup.pause("broker-1", 15.0)
    sup.step()
    assert spawner.current("broker-1").frozen
    assert seen and seen[0] == "paused", seen


def test_kills_on_request_never_add_up_to_a_crash_loop_that_wipes_the_journal(tmp_path):
    """`sandbox kill` is a rehearsal: eight in a minute (max_restarts is 5) counted as crashes
    quarantined a healthy broker's journal, and with it every record it held."""
    sup, clock, spawner, probe = make(tmp_path)
    (tmp_path / ".sandbox" / "broker-1").mkdir(parents=True, exist_ok=True)
    (tmp_path / ".sandbox" / "broker-1" / "orders-0").mkdir(exist_ok=True)
    for _ in range(8):
        sup.kill("broker-1")
        sup.step()
        for _ in range(3):
            clock.advance(1)
            sup.step()
    assert "wipe" not in kinds(sup.events) and "crash-loop" not in kinds(sup.events)
    assert len(spawner.handles("broker-1")) == 9 and sup.service("broker-1")["state"] == "running"
    assert (tmp_path / ".sandbox" / "broker-1" / "orders-0").is_dir()


def test_a_paused_service_reports_no_probe_latency(tmp_path):
    """Frozen, it answers nothing: its last round trip is not a figure of now."""
    sup, clock, spawner, probe = make(tmp_path)
    assert sup.service("broker-1")["latency_ms"] == 0.5
    sup.pause("broker-1", 15.0)
    sup.step()
    assert sup.service("broker-1")["state"] == "paused" and sup.service("broker-1")["latency_ms"] is None
