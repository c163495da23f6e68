"""Crash loops and unrepairable journals under each on_corrupt_journal policy: wipe into quarantine,
clean restart, topics re-created once healthy, pruning of old quarantines; never a silent delete."""

from __future__ import annotations

from pathlib import Path

from runner.runner_fakes import FakeClock, FakeProbe, FakeSpawner, kinds, spec

from sandbox.runner.native import RecoveryPolicy, Supervisor
from sandbox.runner.quarantine import quarantines

WALL0 = 1_795_000_000.0  # 2026-11-18T...Z


def make(tmp_path, policy, probe=True, recreate=None):
    clock, spawner = FakeClock(), FakeSpawner()
    fprobe = FakeProbe() if probe else None
    recreated = []

    def recreate_topics(service):
        recreated.append(service)
        return ["orders", "payments"]

    s = spec(tmp_path, "broker-1")
    (s.data_dir / "orders-0").mkdir(parents=True)
    (s.data_dir / "orders-0" / "00000000000000000000.log").write_bytes(b"old batches")
    sup = Supervisor([s], policy, spawner=spawner, clock=clock, wall_clock=lambda: WALL0 + clock.t,
                     probe=fprobe, quarantine_root=tmp_path / ".sandbox" / "quarantine",
                     recreate_topics=recreate or recreate_topics, sleep=lambda s: None)
    return sup, clock, spawner, fprobe, s, recreated


def crash(sup, clock, spawner, code=1):
    """Make the current process exit with `code`, then step until it is running again (or not)."""
    spawner.current("broker-1").code = code
    n = len(spawner.spawned)
    sup.step()
    for _ in range(100):
        if len(spawner.spawned) > n or sup.service("broker-1")["state"] == "crashed":
            return
        clock.advance(0.1)
        sup.step()


def test_crash_loop_then_repair_attempt_then_wipe_and_topics_recreated(tmp_path):
    policy = RecoveryPolicy(max_restarts=2, restart_window_s=60)
    sup, clock, spawner, probe, s, recreated = make(tmp_path, policy)
    sup.step()
    for _ in range(2):
        crash(sup, clock, spawner)
    assert "crash-loop" not in kinds(sup.events)
    crash(sup, clock, spawner)  # 3 exits > max_restarts: one more restart to let it repair
    assert kinds(sup.events)[-3:] == ["crash", "crash-loop", "restart"]
    assert "restarting once more" in sup.events[-2]["detail"]
    assert (s.data_dir / "orders-0" / "00000000000000000000.log").exists()  # not wiped yet
    crash(sup, clock, spawner)  # the repair attempt failed too: wipe
    wipe = [e for e in sup.events if e["kind"] == "wipe"][0]
    assert wipe["rule"] == "crash-loop" and "exits within" in wipe["detail"]
    q = Path(wipe["path"])
    assert q.parent == tmp_path / ".sandbox" / "quarantine"
    assert q.name.endswith("Z-broker-1") and q.name.startswith("2026")
    assert (q / "orders-0" / "00000000000000000000.log").read_bytes() == b"old batches"
    assert s.data_dir.is_dir() and list(s.data_dir.iterdir()) == []  # clean journal
    assert sup.service("broker-1")["restarts"] == 4
    assert recreated == []  # not before it is healthy
    sup.step()
    assert recreated == []
    probe.ok["broker-1"] = True
    sup.step()
    assert recreated == ["broker-1"]
    assert kinds(sup.events)[-5:] == ["crash", "wipe", "restart", "healthy", "topics-recreated"]
    assert "clean journal" in sup.events[-3]["detail"]
    assert sup.events[-1]["topics"] == ["orders", "payments"]
    assert sup.events[-1]["detail"] == "orders, payments"
    sup.step()
    assert recreated == ["broker-1"]  # once


def test_policy_repair_never_wipes_and_keeps_restarting_with_backoff(tmp_path):
    policy = RecoveryPolicy(max_restarts=2, on_corrupt_journal="repair", backoff_max_s=1)
    sup, clock, spawner, probe, s, recreated = make(tmp_path, policy)
    sup.step()
    for _ in range(8):
        crash(sup, clock, spawner)
    crash(sup, clock, spawner, code=4)
    k = kinds(sup.events)
    assert "wipe" not in k and k.count("crash-loop") == 1
    assert "on_corrupt_journal=repair" in [e for e in sup.events if e["kind"] == "crash-loop"][0]["detail"]
    assert (s.data_dir / "orders-0" / "00000000000000000000.log").exists()
    assert not (tmp_path / ".sandbox" / "quarantine").exists()
    assert len(spawner.spawned) == 10 and sup.service("broker-1")["restarts"] == 9
    assert [e for e in sup.events if e["kind"] == "restart"][-1]["detail"].endswith("backoff 1s)")


def test_exit_code_4_under_repair_then_wipe_wipes_at_once(tmp_path):
    sup, clock, spawner, probe, s, recreated = make(tmp_path, RecoveryPolicy())
    sup.step()
    crash(sup, clock, spawner, code=4)
    assert kinds(sup.events)[-3:] == ["crash", "wipe", "restart"]
    assert "cannot be repaired" in sup.events[-3]["detail"]
    assert sup.events[-2]["rule"] == "unrepairable-journal" and "exit code 4" in sup.events[-2]["detail"]
    assert len(quarantines(tmp_path / ".sandbox" / "quarantine", "broker-1")) == 1


def test_policy_wipe_wipes_at_the_first_sign_of_a_loop(tmp_path):
    sup, clock, spawner, probe, s, recreated = make(tmp_path, RecoveryPolicy(max_restarts=1,
                                                                             on_corrupt_journal="wipe"))
    sup.step()
    crash(sup, clock, spawner)
    assert "wipe" not in kinds(sup.events)
    crash(sup, clock, spawner)
    assert kinds(sup.events)[-3:] == ["crash", "wipe", "restart"]
    assert "crash-loop" not in kinds(sup.events)


def test_exits_spread_over_more_than_the_window_are_not_a_loop(tmp_path):
    sup, clock, spawner, probe, s, recreated = make(tmp_path, RecoveryPolicy(max_restarts=2,
                                                                             restart_window_s=10))
    sup.step()
    for _ in range(6):
        crash(sup, clock, spawner)
        clock.advance(6)
        sup.step()
    assert "crash-loop" not in kinds(sup.events) and "wipe" not in kinds(sup.events)


def test_usage_error_exit_code_2_is_never_wiped(tmp_path):
    sup, clock, spawner, probe, s, recreated = make(tmp_path, RecoveryPolicy(max_restarts=1,
                                                                             on_corrupt_journal="wipe"))
    sup.step()
    for _ in range(4):
        crash(sup, clock, spawner, code=2)
    assert "wipe" not in kinds(sup.events)
    assert [e for e in sup.events if e["kind"] == "crash-loop"][0]["detail"].endswith("would not help")
    assert (s.data_dir / "orders-0").exists()


def test_still_failing_with_a_fresh_journal_gives_up_instead_of_wiping_again(tmp_path):
    sup, clock, spawner, probe, s, recreated = make(tmp_path, RecoveryPolicy(max_restarts=0,
                                                                             on_corrupt_journal="wipe"))
    sup.step()
    crash(sup, clock, spawner)  # > 0 exits: wipe
    assert kinds(sup.events).count("wipe") == 1
    crash(sup, clock, spawner)  # never got healthy on the fresh journal: not a journal problem
    assert kinds(sup.events).count("wipe") == 1
    st = sup.service("broker-1")
    assert st["state"] == "crashed"
    assert "not a journal problem" in sup.events[-1]["detail"]
    sup.restart("broker-1")  # a person can still retry
    sup.step()
    assert sup.service("broker-1")["state"] == "starting" and spawner.current("broker-1").code is None


def test_keep_quarantines_prunes_only_that_services_oldest(tmp_path):
    sup, clock, spawner, probe, s, recreated = make(tmp_path, RecoveryPolicy(keep_quarantines=3))
    root = tmp_path / ".sandbox" / "quarantine"
    old = ["20240101T000000Z-broker-1", "20240102T000000Z-broker-1", "20240103T000000Z-broker-1",
           "20240101T000000Z-broker-10", "20240101T000000Z-coordinator"]
    for name in old:
        (root / name).mkdir(parents=True)
        (root / name / "x.log").write_text("kept?")
    sup.step()
    crash(sup, clock, spawner, code=4)
    mine = [p.name for p in quarantines(root, "broker-1")]
    assert len(mine) == 3
    assert mine[:2] == ["20240102T000000Z-broker-1", "20240103T000000Z-broker-1"]
    assert mine[2].startswith("2026")
    assert not (root / "20240101T000000Z-broker-1").exists()
    assert (root / "20240101T000000Z-broker-10" / "x.log").exists()
    assert (root / "20240101T000000Z-coordinator" / "x.log").exists()
    wipe = [e for e in sup.events if e["kind"] == "wipe"][0]
    assert "deleted 1 older quarantine" in wipe["detail"]
    assert wipe["pruned"] == [str(root / "20240101T000000Z-broker-1")]


def test_failing_recreate_is_reported_once_and_retried(tmp_path):
    attempts = []

    def flaky(service):
        attempts.append(service)
        if len(attempts) < 3:
            raise ConnectionError("coordinator not ready")
        return ["orders"]

    sup, clock, spawner, probe, s, recreated = make(tmp_path, RecoveryPolicy(), recreate=flaky)
    sup = sup
    sup.step()
    crash(sup, clock, spawner, code=4)
    probe.ok["broker-1"] = True
    for _ in range(4):
        clock.advance(1.5)
        sup.step()
    ev = [e for e in sup.events if e["kind"] == "topics-recreated"]
    assert [e["ok"] for e in ev] == [False, True]
    assert "will retry" in ev[0]["detail"] and ev[1]["topics"] == ["orders"]
    assert len(attempts) == 3


def test_a_failed_recreate_is_asked_again_at_the_next_pass_not_the_next_probe(tmp_path):
    """A replaced journal's topics wait for the brokers to register again; they do so within a
    second, so the re-creation is tried at every pass (0.2 s), not once a probe interval (1 s)."""
    attempts = []

    def flaky(service):
        attempts.append(clock.t)
        if len(attempts) < 2:
            raise ConnectionError("the coordinator does not know broker(s) [1]")
        return ["orders"]

    sup, clock, spawner, probe, s, recreated = make(tmp_path, RecoveryPolicy(), recreate=flaky)
    sup.step()
    crash(sup, clock, spawner, code=4)
    probe.ok["broker-1"] = True
    sup.step()
    assert len(attempts) == 1
    # a fresh journal answers every probe, but without its topics: status shows that as a problem
    shown = sup.snapshot()["services"][0]
    assert shown["healthy"] and "being put back" in shown["problem"], shown
    clock.advance(0.2)
    sup.step()
    assert len(attempts) == 2 and attempts[1] - attempts[0] < 0.5
    assert sup.snapshot()["services"][0]["problem"] is None
    assert [e["ok"] for e in sup.events if e["kind"] == "topics-recreated"] == [False, True]
    clock.advance(0.2)
    sup.step()
    assert len(attempts) == 2   # done: not asked again


def test_on_crash_off_wins_over_the_journal_policy(tmp_path):
    sup, clock, spawner, probe, s, recreated = make(tmp_path, RecoveryPolicy(on_crash="off"))
    sup.step()
    crash(sup, clock, spawner, code=4)
    assert "wipe" not in kinds(sup.events) and sup.service("broker-1")["state"] == "crashed"


def test_topic_catalog_is_frozen_from_the_wipe_until_the_topics_are_back(tmp_path):
    """The supervisor refreshes its topic catalog from the cluster only while catalog_epoch() is
    not None: a wiped journal answers with no topics, and a refresh then would erase the very list
    the re-creation reads (seen in CI: a run-time topic missing after a coordinator wipe)."""
    seen_during = []

    def recreate(service):
        seen_during.append(sup.catalog_epoch())
        if len(seen_during) < 2:
            raise ConnectionError("coordinator not ready")
        return ["orders"]

    sup, clock, spawner, probe, s, _ = make(tmp_path, RecoveryPolicy(), recreate=recreate)
    sup.step()
    assert sup.catalog_epoch() is None          # started, not healthy yet
    probe.ok["broker-1"] = True
    clock.advance(1.5)
    sup.step()
    assert sup.catalog_epoch() == 0
    crash(sup, clock, spawner, code=4)          # wiped: healthy again soon, topics not back yet
    assert sup.catalog_epoch() is None
    for _ in range(4):
        clock.advance(1.5)
        sup.step()
        if sup.service("broker-1")["healthy"] and len(seen_during) == 1:
            assert sup.catalog_epoch() is None  # healthy, but the re-creation failed once: still frozen
    assert seen_during == [None, None]
    assert sup.catalog_epoch() == 1             # one wipe since start, nothing pending



def test_a_full_disk_never_moves_a_journal_aside_and_the_start_waits_for_space(tmp_path, monkeypatch):
    """Found by review: a broker that crashed while the disk was full had its healthy journal
    quarantined (the supervisor's write test failed with ENOSPC, taken for an unusable folder) and
    came back empty once there was space. A full disk is a `disk-full` problem: the start is put
    off and tried again, the journal stays where it is."""
    import errno

    sup, clock, spawner, probe, s, _ = make(tmp_path, RecoveryPolicy(max_restarts=2, restart_window_s=60))
    sup.step()
    from sandbox.runner import quarantine as quarantine_mod
    real_write = quarantine_mod.try_write
    full = {"on": True}

    def try_write(folder, size=2):
        if full["on"]:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(folder, size)
    monkeypatch.setattr(quarantine_mod, "try_write", try_write)
    n = len(spawner.spawned)
    spawner.current("broker-1").code = 1
    for _ in range(100):     # 10 s: its backoff and a few tries of the start
        clock.advance(0.1)
        sup.step()
    assert "wipe" not in kinds(sup.events) and quarantines(tmp_path / ".sandbox" / "quarantine", "broker-1") == []
    assert (s.data_dir / "orders-0" / "00000000000000000000.log").read_bytes() == b"old batches"
    assert len(spawner.spawned) == n                       # not started on a disk that takes nothing
    svc = sup.service("broker-1")
    assert svc["problem"].startswith("disk full") and svc["state"] == "recovering"
    assert kinds(sup.events).count("disk-full") == 1       # told once, not at every try
    assert not list(s.data_dir.glob(".write-probe*"))
    full["on"] = False                                     # space again: it starts on its own journal
    for _ in range(60):
        clock.advance(0.1)
        sup.step()
    assert len(spawner.spawned) == n + 1 and sup.service("broker-1")["problem"] is None
    assert (s.data_dir / "orders-0" / "00000000000000000000.log").read_bytes() == b"old batches"
    assert sup.events[-1]["kind"] in ("disk-full", "restart", "start") and any(
        e["kind"] == "disk-full" and e.get("resolved") for e in sup.events)


def test_a_quarantine_that_fails_leaves_no_fresh_journal_behind(tmp_path, monkeypatch):
    """Found by review: when the journal could not be moved aside (here `.sandbox/quarantine` is a
    file), the supervisor still took the journal for a fresh one: it started on the damaged one,
    said its topics were being put back, and then gave up on "a fresh journal". Now it stops and
    says the journal could not be moved; a restart after the fix tries the quarantine again."""
    policy = RecoveryPolicy(max_restarts=2, restart_window_s=60)
    sup, clock, spawner, probe, s, _ = make(tmp_path, policy)
    (tmp_path / ".sandbox").mkdir(exist_ok=True)
    (tmp_path / ".sandbox" / "quarantine").write_text("not a folder")
    sup.step()
    for _ in range(4):
        crash(sup, clock, spawner)
    svc = sup.service("broker-1")
    assert svc["state"] == "crashed" and "could not be moved aside" in svc["problem"]
    assert "wipe" not in kinds(sup.events)
    assert (s.data_dir / "orders-0" / "00000000000000000000.log").read_bytes() == b"old batches"
    record = next(r for r in sup._services if r.spec.name == "broker-1")
    assert not record.fresh_journal and not record.recreate_pending


def test_a_restore_owed_by_a_killed_supervisor_is_finished_by_the_next_one(tmp_path):
    """Found by review: the restore owed after a wipe lived only in the supervisor's memory. Killed
    before the service was healthy again, the next supervisor (adopting the services) never put
    the topics' settings back, and its topic catalog, refreshed from the stripped cluster, lost
    them for good. The owed restore is now a file beside the journal, read by the next one."""
    from sandbox.runner.service import catalog_epoch, owed_marker

    policy = RecoveryPolicy(max_restarts=2, restart_window_s=60)
    sup, clock, spawner, probe, s, recreated = make(tmp_path, policy)
    sup.step()
    for _ in range(4):
        crash(sup, clock, spawner)
    assert "wipe" in kinds(sup.events) and recreated == []
    assert owed_marker(s).exists()
    # SIGKILL: no goodbye; `sandbox up` starts the next supervisor over the same folders
    again, spawner2, probe2 = [], FakeSpawner(), FakeProbe()
    sup2 = Supervisor([s], policy, spawner=spawner2, clock=clock, wall_clock=lambda: WALL0 + clock.t,
                      probe=probe2, quarantine_root=tmp_path / ".sandbox" / "quarantine",
                      recreate_topics=lambda name: again.append(name) or ["orders"], sleep=lambda s: None)
    assert catalog_epoch(sup2._events, sup2._services) is None   # the catalog stays as it was
    sup2.step()
    probe2.ok["broker-1"] = True
    clock.advance(1)
    sup2.step()
    assert again == ["broker-1"] and kinds(sup2.events)[-1] == "topics-recreated"
    assert not owed_marker(s).exists()
    sup3 = Supervisor([s], policy, spawner=FakeSpawner(), clock=clock, wall_clock=lambda: WALL0 + clock.t,
                      probe=FakeProbe(), quarantine_root=tmp_path / ".sandbox" / "quarantine",
                      recreate_topics=lambda name: again.append(name) or [], sleep=lambda s: None)
    assert not any(r.recreate_pending for r in sup3._services)    # owed no more


def test_a_slow_restore_runs_off_the_supervisors_pass(tmp_path):
    """Found by review: the restore after a wipe (network calls with 5 s timeouts) ran inside
    the supervisor's pass: with a broker frozen one pass took 6 s, no other crash was healed
    meanwhile and `status` called the supervisor wedged. The stack's supervisor now runs it on a
    thread of its own; passes go on, and a later one takes its answer (a failure is retried)."""
    import threading
    import time as _time

    release, calls = threading.Event(), []

    def slow_restore(name):
        calls.append(name)
        if len(calls) == 1:
            release.wait(10)
            raise RuntimeError("broker-2 did not answer")
        return ["orders"]

    policy = RecoveryPolicy(max_restarts=2, restart_window_s=60)
    sup, clock, spawner, probe, s, _ = make(tmp_path, policy, recreate=slow_restore)
    sup.recreate_in_thread = True
    sup.step()
    for _ in range(4):
        crash(sup, clock, spawner)
    assert "wipe" in kinds(sup.events)
    probe.ok["broker-1"] = True
    for _ in range(5):
        clock.advance(1)
        sup.step()                                   # none of these waits for the restore
    assert calls == ["broker-1"] and not release.is_set()
    assert sup.service("broker-1")["problem"] is not None and "topics-recreated" not in kinds(sup.events)
    release.set()
    deadline = _time.monotonic() + 10
    while kinds(sup.events).count("topics-recreated") < 2 and _time.monotonic() < deadline:
        clock.advance(1)
        sup.step()
        _time.sleep(0.01)
    done = [e for e in sup.events if e["kind"] == "topics-recreated"]
    assert [e["ok"] for e in done] == [False, True] and "broker-2 did not answer" in done[0]["detail"]
    assert calls == ["broker-1", "broker-1"] and sup.service("broker-1")["problem"] is None


def test_a_crash_loop_that_never_reaches_the_journal_keeps_it_and_says_so(tmp_path):
    """A service that dies before it opens its journal (a broken Python environment, a missing
    dependency) crash-loops too; quarantining its journal then lost every record it held and
    cured nothing. Its log shows whether a run got as far as the journal."""
    from sandbox.lifecycle import JOURNAL_OPENING
    policy = RecoveryPolicy(max_restarts=2, restart_window_s=60)
    sup, clock, spawner, probe, s, recreated = make(tmp_path, policy)
    spawner.log_on_start["broker-1"] = ["Traceback (most recent call last):", "ImportError: no module named x"]
    sup.step()
    for _ in range(4):
        crash(sup, clock, spawner)
    assert "wipe" not in kinds(sup.events)
    assert (s.data_dir / "orders-0" / "00000000000000000000.log").read_bytes() == b"old batches"
    st = sup.service("broker-1")
    assert st["state"] == "crashed" and "exits before it opens its journal" in st["problem"]
    assert "sandbox restart broker-1" in st["problem"]
    # the same loop once it reached its journal: quarantined as before
    sup2, clock2, spawner2, _p, s2, _r = make(tmp_path / "b", policy)
    spawner2.log_on_start["broker-1"] = [f"{JOURNAL_OPENING} {s2.data_dir}", "Traceback (most recent call last):"]
    sup2.step()
    for _ in range(4):
        crash(sup2, clock2, spawner2)
    assert "wipe" in kinds(sup2.events)
