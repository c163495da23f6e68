"""DockerWatcher against a fake engine: crash events and restart counts, exit code 4 and crash loops
quarantine the journal volume and re-create topics once healthy, our own restarts are not crashes,
a container its policy does not bring back is started, an unhealthy one is restarted."""

from __future__ import annotations

from dataclasses import dataclass

from sandbox.runner.docker_watch import DockerWatcher
from sandbox.runner.policy import RecoveryPolicy
from sandbox.runner.probe import ProbeResult


@dataclass
class Plan:
    service: str
    role: str
    name: str
    host_port: int


@dataclass
class State:
    status: str = "running"
    health: str | None = "healthy"
    exit_code: int | None = 0
    started_at: str | None = "2026-11-26T01:00:00.5Z"
    volume: str | None = "vol"
    pid: int | None = None


class FakeEngine:
    def __init__(self) -> None:
        self.plans = {"coordinator": Plan("coordinator", "coordinator", "sb-coordinator", 9093),
                      "broker-1": Plan("broker-1", "broker", "sb-broker-1", 9092)}
        self.states = {s: State() for s in self.plans}
        self.queue: list[dict] = []
        self.calls: list[tuple] = []
        self.now_ns = 1_000_000_000_000
        self.log_lines: list[str] = []

    def emit(self, service: str, action: str, exit_code: int | None = None, **attrs) -> None:
        self.now_ns += 1_000_000
        self.queue.append({"service": service, "action": action, "exit_code": exit_code,
                           "time_ns": self.now_ns, "id": service, **attrs})

    def inspect(self, service):
        return self.states.get(service)

    def events(self, since, until):
        out, self.queue = self.queue, []
        return out

    def logs(self, service, since=None, tail="all", timestamps=False):
        if not timestamps:
            return list(self.log_lines)
        return [line if line[:4].isdigit() else f"2026-12-03T10:00:00.000000001Z {line}" for line in self.log_lines]

    def measure(self, service):
        return {"rss_bytes": 1234, "disk_bytes": 99}

    def start(self, service):
        self.calls.append(("start", service))
        self.states[service] = State()

    def restart(self, service):
        self.calls.append(("restart", service))

    def stop(self, service):
        self.calls.append(("stop", service))
        self.states[service].status = "exited"

    def quarantine(self, service, wall):
        self.calls.append(("quarantine", service))
        return "vol", "vol-new"

    def prune_quarantines(self, service, keep):
        return []


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def make(engine, policy=None, recreated=None, probe_ok=True):
    clock = Clock()

    def probe(host, port, timeout):
        return ProbeResult(probe_ok, "api-versions", "ok" if probe_ok else "refused", 1.0 if probe_ok else None)

    def recreate(service):
        recreated.append(service)
        return ["orders"]

    w = DockerWatcher(engine, policy or RecoveryPolicy(), clock=clock, wall_clock=lambda: engine.now_ns / 1e9,
                      probe=probe, recreate_topics=recreate if recreated is not None else None)
    # the engine's events come after the watcher started
    engine.now_ns += 2_000_000_000
    return w, clock


def kinds(w, service=None):
    return [e["kind"] for e in w.events if service is None or e["service"] == service]


def test_healthy_containers_are_running_with_figures():
    eng = FakeEngine()
    w, _ = make(eng)
    w.step()
    snap = w.snapshot()
    assert [(s["name"], s["state"], s["healthy"], s["pid"], s["container"]) for s in snap["services"]] == [
        ("coordinator", "running", True, None, "sb-coordinator"), ("broker-1", "running", True, None, "sb-broker-1")]
    assert snap["services"][1]["rss_bytes"] == 1234 and snap["services"][1]["volume"] == "vol"
    assert kinds(w) == ["healthy", "healthy"]


def test_crash_restarted_by_policy_is_counted_and_reported():
    eng = FakeEngine()
    w, clock = make(eng)
    assert not w.snapshot()["was_ready"]
    w.step()
    assert w.snapshot()["was_ready"]   # `up` on the running stack: degraded from now on, not starting
    eng.log_lines = ["boom"]
    eng.emit("broker-1", "die", 137)
    eng.emit("broker-1", "start")
    w.step()
    assert w.snapshot()["was_ready"]
    crash = [e for e in w.events if e["kind"] == "crash"][0]
    assert crash["exit_code"] == 137 and crash["log_tail"] == ["boom"]
    assert "restart" in kinds(w, "broker-1")
    assert w.snapshot()["services"][1]["restarts"] == 1
    assert ("quarantine", "broker-1") not in eng.calls


def test_unrepairable_journal_quarantines_the_volume_and_recreates_topics():
    eng = FakeEngine()
    recreated: list[str] = []
    w, clock = make(eng, recreated=recreated)
    w.step()
    eng.emit("broker-1", "die", 4)
    w.step()
    assert ("quarantine", "broker-1") in eng.calls
    wipe = [e for e in w.events if e["kind"] == "wipe"][0]
    assert "vol quarantined (kept)" in wipe["detail"] and wipe["volume"] == "vol-new"
    # the re-created container turns healthy: the topics come back once
    eng.states["broker-1"] = State(started_at="2026-11-26T01:00:09Z")
    w.step()
    w.step()
    assert recreated == ["broker-1"]
    assert kinds(w, "broker-1")[-1] == "topics-recreated"


def test_crash_loop_repairs_once_then_quarantines():
    eng = FakeEngine()
    w, clock = make(eng, policy=RecoveryPolicy(max_restarts=2, restart_window_s=60))
    w.step()
    for _ in range(3):
        eng.emit("broker-1", "die", 1)
        clock.t += 1
        w.step()
    assert "crash-loop" in kinds(w, "broker-1") and ("quarantine", "broker-1") not in eng.calls
    eng.emit("broker-1", "die", 1)
    w.step()
    assert ("quarantine", "broker-1") in eng.calls


def test_usage_errors_are_never_wiped():
    eng = FakeEngine()
    w, clock = make(eng, policy=RecoveryPolicy(max_restarts=1, on_corrupt_journal="wipe"))
    w.step()
    for _ in range(4):
        eng.emit("broker-1", "die", 2)
        w.step()
    assert ("quarantine", "broker-1") not in eng.calls


def test_a_configuration_error_stops_the_container_with_its_sentence_and_never_wipes():
    eng = FakeEngine()
    w, clock = make(eng, policy=RecoveryPolicy(max_restarts=1, on_corrupt_journal="wipe"))
    w.step()
    eng.log_lines = ['EVENT config-error {"message": "0.0.0.0:9092 is already in use by another program; '
                     'stop it or choose another port", "reason": "port-taken"}']
    eng.emit("broker-1", "die", 78)
    w.step()
    assert ("stop", "broker-1") in eng.calls and ("quarantine", "broker-1") not in eng.calls
    ev = [e for e in w.events if e["kind"] == "config-error"]
    assert len(ev) == 1 and ev[0]["reason"] == "port-taken" and "already in use" in ev[0]["detail"]
    st = [s for s in w.snapshot()["services"] if s["name"] == "broker-1"][0]
    assert st["state"] == "crashed" and "already in use" in st["problem"]
    for _ in range(3):                   # not restarted, not counted into a crash loop
        clock.t += 5
        w.step()
    assert "crash-loop" not in kinds(w) and "wipe" not in kinds(w)


def test_our_own_restart_is_not_a_crash():
    eng = FakeEngine()
    w, _ = make(eng)
    w.step()
    w.restart("broker-1")
    eng.emit("broker-1", "die", 0)
    eng.now_ns -= 400_000_000          # within the half second after our action
    eng.emit("broker-1", "start")
    w.step()
    assert "crash" not in kinds(w) and ("restart", "broker-1") in eng.calls


def test_a_container_its_policy_leaves_exited_is_started():
    eng = FakeEngine()
    w, _ = make(eng)
    w.step()
    eng.states["broker-1"] = State(status="exited", health=None, exit_code=137)
    for _ in range(3):
        w.step()
    assert ("start", "broker-1") in eng.calls
    assert any("did not bring it back" in e["detail"] for e in w.events)


def test_a_removed_container_is_created_again():
    eng = FakeEngine()
    w, _ = make(eng)
    w.step()
    del eng.states["broker-1"]
    w.step()
    assert ("start", "broker-1") in eng.calls


def test_unhealthy_for_too_long_is_restarted_and_named():
    eng = FakeEngine()
    w, clock = make(eng, policy=RecoveryPolicy(unhealthy_after_s=5))
    w.step()
    eng.states["broker-1"].health = "unhealthy"
    w.step()
    clock.t += 6
    w.step()
    ev = [e for e in w.events if e["kind"] == "unhealthy"][0]
    assert ev["probe"] == "docker healthcheck" and ("restart", "broker-1") in eng.calls


def test_repair_lines_in_the_container_log_become_events():
    eng = FakeEngine()
    eng.log_lines = ['2026 WARNING sandbox.broker: EVENT repair {"bytes": 38, "segment": "t-0/0.log"}']
    w, _ = make(eng)
    w.step()
    rep = [e for e in w.events if e["kind"] == "repair"]
    assert rep and rep[0]["bytes"] == 38 and "38 bytes" in rep[0]["detail"]


def test_events_logged_while_a_broker_runs_are_followed_once_each():
    """Expired offsets and refused SASL logins happen while a broker runs: read from its log every
    few seconds (the engine's `since` is whole seconds, so lines already read come again and are
    skipped by their timestamps), as native mode reads the log file."""
    eng = FakeEngine()
    w, clock = make(eng)
    login = ('EVENT sasl-login-failed {"listener": "SASL_PLAINTEXT", "mechanism": "SCRAM-SHA-256", '
             '"peer": "172.17.0.1:40000", "reason": "wrong password for user \'alice\'"}')
    expired = 'EVENT offsets-expired {"group": "billing", "offsets": 3, "retention_minutes": 1}'
    eng.log_lines = [f"2026-12-03T10:00:00.5Z {login}"]   # logged before the first look: read by it
    w.step()
    assert kinds(w, "broker-1").count("sasl-login-failed") == 1
    eng.log_lines += [f"2026-12-03T10:00:01.25Z {expired}", f"2026-12-03T10:00:01.3Z {login}"]
    clock.t += 1.0
    w.step()   # not yet: the log is read every FOLLOW_EVERY_S
    assert "offsets-expired" not in kinds(w, "broker-1")
    clock.t += 3.0
    w.step()
    clock.t += 3.0
    w.step()   # the same lines again from the engine: not reported twice
    assert kinds(w, "broker-1").count("offsets-expired") == 1 and kinds(w, "broker-1").count("sasl-login-failed") == 2
    shown = [e["detail"] for e in w.events if e["kind"] == "sasl-login-failed" and e["service"] == "broker-1"]
    assert shown[-1] == ("SASL login from 172.17.0.1:40000 (SCRAM-SHA-256) refused: wrong password for user 'alice'")
    assert [e["detail"] for e in w.events if e["kind"] == "offsets-expired" and e["service"] == "broker-1"] == [
        "group billing: 3 committed offset(s) expired (offsets.retention.minutes=1)"]


def test_followed_events_with_one_timestamp_are_all_told_and_older_ones_not_replayed():
    eng = FakeEngine()
    w, clock = make(eng)
    now = "1970-01-01T00:16:45"   # the fake engine's clock is at 1,000 s when the watcher starts
    before = f'{now[:-2]}20.5Z EVENT offsets-expired {{"group": "old", "offsets": 1, "retention_minutes": 1}}'
    eng.log_lines = [before]   # logged before this watcher started: the one before it told it
    w.step()
    assert "offsets-expired" not in kinds(w, "broker-1")
    same = f"{now}.25Z"
    eng.log_lines += [f'{same} EVENT offsets-expired {{"group": "a", "offsets": 1, "retention_minutes": 1}}',
                      f'{same} EVENT offsets-expired {{"group": "b", "offsets": 2, "retention_minutes": 1}}']
    clock.t += 3.0
    w.step()
    clock.t += 3.0
    w.step()
    told = [e["detail"] for e in w.events if e["kind"] == "offsets-expired" and e["service"] == "broker-1"]
    assert told == ["group a: 1 committed offset(s) expired (offsets.retention.minutes=1)",
                    "group b: 2 committed offset(s) expired (offsets.retention.minutes=1)"]


def test_a_failing_log_read_is_tried_again_and_stops_nothing_else():
    eng = FakeEngine()
    w, clock = make(eng)
    w.step()
    real = eng.logs

    def broken(*a, **kw):
        raise RuntimeError("engine went away")
    eng.logs = broken
    eng.log_lines = ['2026-12-03T10:00:02Z EVENT offsets-expired {"group": "a", "offsets": 1, "retention_minutes": 1}']
    clock.t += 3.0
    w.step()
    assert w.snapshot()["services"][1]["healthy"] and "offsets-expired" not in kinds(w, "broker-1")
    eng.logs = real
    clock.t += 3.0
    w.step()
    assert kinds(w, "broker-1").count("offsets-expired") == 1


def test_topic_catalog_is_frozen_from_the_wipe_until_the_topics_are_back():
    eng = FakeEngine()
    seen_during = []
    w, clock = make(eng, recreated=[])
    w._recreate_topics = lambda service: seen_during.append(w.catalog_epoch()) or ["orders"]
    w.step()
    assert w.catalog_epoch() == 0
    eng.emit("coordinator", "die", 4)
    eng.states["coordinator"] = State(started_at="2026-11-26T01:00:09Z")
    w.step()
    w.step()
    assert "wipe" in kinds(w, "coordinator")
    assert seen_during == [None]     # healthy, yet the empty fresh journal must not become the catalog
    assert w.catalog_epoch() == 1


def _watcher_with_state(eng, tmp_path, **kw) -> "DockerWatcher":
    """A watcher over `eng` whose state file (and owed-restore markers) live in tmp_path, whose
    probe is refused, already past the engine's first events."""
    w = DockerWatcher(eng, RecoveryPolicy(), clock=Clock(), wall_clock=lambda: eng.now_ns / 1e9,
                      state_path=tmp_path / "supervisor.json",
                      probe=lambda h, p, t: ProbeResult(False, "api-versions", "refused", None),
                      recreate_topics=lambda s: ["orders"], **kw)
    eng.now_ns += 2_000_000_000
    return w


def test_a_restore_owed_by_a_killed_watcher_is_finished_off_the_pass_by_the_next_one(tmp_path):
    """Docker mode, as native mode: the restore owed after a volume was quarantined is kept in a
    file beside the state file, so a watcher killed before the topics were back leaves it to the
    next one (found by review in native mode: the settings and cluster id were lost for good), and
    the stack's watcher runs it on a thread of its own, so a pass never waits for it."""
    import threading
    import time as _time

    eng = FakeEngine()
    w = _watcher_with_state(eng, tmp_path)
    w.step()
    eng.emit("broker-1", "die", 4)
    w.step()
    assert "wipe" in [e["kind"] for e in w.events]
    assert (tmp_path / "broker-1.restore-owed").exists()
    # killed here; the next watcher, whose restore waits on a broker that does not answer yet
    release, asked = threading.Event(), []

    def slow(service):
        asked.append(service)
        release.wait(10)
        return ["orders"]
    clock = Clock()
    nxt = DockerWatcher(eng, RecoveryPolicy(), clock=clock, wall_clock=lambda: eng.now_ns / 1e9,
                        state_path=tmp_path / "supervisor.json",
                        probe=lambda h, p, t: ProbeResult(True, "api-versions", "ok", 1.0),
                        recreate_topics=slow, recreate_in_thread=True)
    eng.states["broker-1"] = State(started_at="2026-11-26T01:00:09Z")
    for _ in range(3):
        nxt.step()
        clock.t += 1
    assert asked == ["broker-1"] and not release.is_set()   # asked, and the passes went on
    assert "topics-recreated" not in kinds(nxt, "broker-1")
    release.set()
    deadline = _time.monotonic() + 10
    while "topics-recreated" not in kinds(nxt, "broker-1") and _time.monotonic() < deadline:
        nxt.step()
        _time.sleep(0.01)
    assert kinds(nxt, "broker-1")[-1] == "topics-recreated"
    assert not (tmp_path / "broker-1.restore-owed").exists()


def test_a_container_paused_outside_the_sandbox_is_shown_paused_and_left_paused():
    """`docker pause` (not `sandbox pause`): the engine says the container is paused, a rehearsal
    of a frozen broker, not a hang: it is shown paused (it showed "starting" for ever), never
    restarted, and healthy again once unpaused."""
    eng = FakeEngine()
    w, clock = make(eng, policy=RecoveryPolicy(unhealthy_after_s=5))
    w.step()
    eng.states["broker-1"].status = "paused"
    w.step()
    st = next(s for s in w.snapshot()["services"] if s["name"] == "broker-1")
    assert st["state"] == "paused" and not st["healthy"]
    clock.t += 60
    w.step()
    assert ("restart", "broker-1") not in eng.calls and "unhealthy" not in kinds(w, "broker-1")
    eng.states["broker-1"].status = "running"
    w.step()
    st = next(s for s in w.snapshot()["services"] if s["name"] == "broker-1")
    assert st["state"] == "running" and st["healthy"]


def test_a_starting_container_that_answers_apiversions_is_healthy_before_the_engines_first_check():
    """The engine's first healthcheck runs one interval (10 s) after the start; the watcher's own
    ApiVersions round trip (the same test) counts while the engine still says "starting"."""
    eng = FakeEngine()
    for st in eng.states.values():
        st.health = "starting"
    w, _ = make(eng)
    w.step()
    assert [(s["state"], s["healthy"]) for s in w.snapshot()["services"]] == [("running", True)] * 2
    eng2 = FakeEngine()
    for st in eng2.states.values():
        st.health = "starting"
    w2, _ = make(eng2, probe_ok=False)
    w2.step()
    assert [(s["state"], s["healthy"]) for s in w2.snapshot()["services"]] == [("starting", False)] * 2


def test_one_sandbox_kill_is_one_restart():
    """`docker kill` (what `sandbox kill` does) disables the restart policy until the next start: the
    container stays exited, the watcher starts it; the crash and that start are one restart."""
    eng = FakeEngine()
    w, _ = make(eng)
    w.step()

    def kill(service):
        eng.calls.append(("kill", service))
        eng.emit(service, "kill", signal="9")
        eng.emit(service, "die", 137)
        eng.states[service].status, eng.states[service].exit_code = "exited", 137
    eng.kill = kill
    w.kill("broker-1")
    for _ in range(4):
        w.step()
    assert eng.calls.count(("start", "broker-1")) == 1
    assert kinds(w, "broker-1").count("crash") == 1
    assert w.snapshot()["services"][1]["restarts"] == 1


def _docker_stop(eng, service="broker-1"):
    """What the engine tells of `docker stop`: SIGTERM (a kill event, signal 15), die, stop."""
    eng.emit(service, "kill", signal="15")
    eng.emit(service, "die", 143)
    eng.emit(service, "stop")


def test_docker_stop_by_hand_is_left_stopped_not_a_crash():
    eng = FakeEngine()
    w, _ = make(eng)
    w.step()
    _docker_stop(eng)
    eng.states["broker-1"].status, eng.states["broker-1"].exit_code = "exited", 143
    for _ in range(5):
        w.step()
    b = w.snapshot()["services"][1]
    assert (b["state"], b["healthy"], b["restarts"]) == ("stopped", False, 0)
    assert "`sandbox restart broker-1`" in b["problem"]
    assert "crash" not in kinds(w, "broker-1") and "stop" in kinds(w, "broker-1")
    assert ("start", "broker-1") not in eng.calls
    w.restart("broker-1")
    assert ("restart", "broker-1") in eng.calls and w.snapshot()["services"][1]["problem"] is None


def test_docker_restart_by_hand_is_said_as_such_and_watched_again():
    """`docker restart`: SIGTERM (kill 15), die, stop, then start; not the restart policy's doing."""
    eng = FakeEngine()
    w, _ = make(eng)
    w.step()
    _docker_stop(eng)
    eng.emit("broker-1", "start")
    w.step()
    b = w.snapshot()["services"][1]
    assert b["problem"] is None and b["restarts"] == 0
    last = [e for e in w.events if e["service"] == "broker-1" and e["kind"] == "restart"][-1]
    assert "outside the sandbox (docker start or docker restart)" in last["detail"], last
    assert "crash" not in kinds(w, "broker-1")


def test_a_pause_for_is_released_when_the_watcher_ends():
    import threading

    eng = FakeEngine()
    eng.pause = lambda s: eng.calls.append(("pause", s))
    eng.unpause = lambda s: eng.calls.append(("unpause", s))
    w, _ = make(eng)
    w.step()
    w.pause("broker-1", 600)
    stop = threading.Event()
    stop.set()
    w.run(stop, interval=0.01)
    assert ("unpause", "broker-1") in eng.calls
    assert "resume" in kinds(w, "broker-1")


def test_an_oom_kill_is_said_in_the_crash_event():
    eng = FakeEngine()
    w, _ = make(eng)
    w.step()
    eng.emit("broker-1", "oom")
    eng.emit("broker-1", "die", 137)
    eng.emit("broker-1", "start")
    w.step()
    crash = [e for e in w.events if e["kind"] == "crash"][-1]
    assert crash["detail"] == "exit code 137, killed for want of memory (OOM)" and crash["oom"] is True
    eng.states["broker-1"].oom_killed = True   # no oom event seen (before this watcher): the engine's State
    eng.emit("broker-1", "die", 137)
    w.step()
    assert [e for e in w.events if e["kind"] == "crash"][-1]["detail"].endswith("(OOM)")
    eng.states["broker-1"].oom_killed = False
    eng.emit("broker-1", "die", 1)
    w.step()
    assert [e for e in w.events if e["kind"] == "crash"][-1]["detail"] == "exit code 1"


def test_an_unhealthy_status_found_while_paused_does_not_restart_the_resumed_container():
    """An engine healthcheck that ran while `sandbox pause` froze the container fails (no exec into
    a paused container) and leaves "unhealthy" until its next run, 10 s on: with unhealthy_after_s
    shorter than that the watcher restarted a broker that answered (the real-engine rehearsal test
    saw 2 restarts where 1 was expected, about 1 run in 8)."""
    eng = FakeEngine()
    eng.pause = eng.unpause = lambda s: None
    w, clock = make(eng, policy=RecoveryPolicy(unhealthy_after_s=5))
    w.step()
    w.pause("broker-1", 3)
    clock.t += 3.5
    eng.states["broker-1"].health = "unhealthy"
    for _ in range(8):   # 8 s after the resume: the engine's next check has not run yet
        w.step()
        clock.t += 1
    assert ("restart", "broker-1") not in eng.calls and "unhealthy" not in kinds(w, "broker-1")
    eng.states["broker-1"].health = "healthy"
    w.step()
    assert next(s for s in w.snapshot()["services"] if s["name"] == "broker-1")["healthy"]
