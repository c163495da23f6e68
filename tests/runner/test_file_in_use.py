"""A start refused a file another program holds (Windows: a virus scanner, the search indexer, an
editor keeps it open, so it cannot be removed or renamed). Found by the fault campaign's
`--held-files`: a broker killed while a scanner held its stale `.lock` exited with "the data
folder cannot be used; choose another data_dir", and the supervisor never started it again."""

from __future__ import annotations

import errno
import os

from runner.runner_fakes import kinds, supervisor_over_a_journal

from sandbox.folder_probe import held_by_another_program
from sandbox.lifecycle import EXIT_CONFIG, event_line
from sandbox.runner.native import RecoveryPolicy
from sandbox.runner.quarantine import quarantines

HELD = event_line("config-error", {"reason": "file-in-use", "path": "/x/broker-1/.lock", "message":
                                   "/x/broker-1/.lock cannot be removed or renamed (Permission denied): another "
                                   "program holds it open (a virus scanner, the search indexer, an editor) or it "
                                   "is read-only"})


def _make(tmp_path, policy: RecoveryPolicy | None = None):
    return supervisor_over_a_journal(tmp_path, policy)


def test_a_start_refused_a_held_file_is_tried_every_second_never_counted_as_a_crash_loop(tmp_path):
    sup, clock, spawner, probe, s = _make(tmp_path)
    spawner.log_on_start["broker-1"] = [HELD]   # every start meets the held file
    sup.step()
    for _ in range(12):                          # 12 refused starts, far over max_restarts (2)
        spawner.current("broker-1").code = EXIT_CONFIG
        n = len(spawner.spawned)
        for _ in range(30):
            clock.advance(0.1)
            sup.step()
            if len(spawner.spawned) > n:
                break
        assert len(spawner.spawned) == n + 1, "not started again within 3 s"
    events = kinds(sup.events)
    assert "wipe" not in events and "crash-loop" not in events and "config-error" not in events
    assert quarantines(tmp_path / ".sandbox" / "quarantine", "broker-1") == []
    assert (s.data_dir / "orders-0" / "00000000000000000000.log").read_bytes() == b"old batches"
    assert events.count("file-in-use") == 1      # told once, not at every try
    assert events.count("restart") == 0          # nor a restart event a second (200 events are kept)
    svc = sup.service("broker-1")
    assert svc["problem"].startswith("a file is held by another program: /x/broker-1/.lock")
    spawner.log_on_start["broker-1"] = []        # let go: it starts and answers
    probe.ok["broker-1"] = True
    for _ in range(30):
        clock.advance(0.1)
        sup.step()
    svc = sup.service("broker-1")
    assert svc["state"] == "running" and svc["healthy"] and svc["problem"] is None
    assert sup.events[-1]["kind"] == "file-in-use" and sup.events[-1].get("resolved")


def test_a_real_configuration_error_still_stops_the_service(tmp_path):
    sup, clock, spawner, probe, s = _make(tmp_path)
    sup.step()
    spawner.log_on_start["broker-1"] = [event_line("config-error", {"reason": "data-folder", "message": "nope"})]
    spawner.current("broker-1").code = 1
    for _ in range(30):
        clock.advance(0.1)
        sup.step()
    spawner.current("broker-1").code = EXIT_CONFIG
    for _ in range(30):
        clock.advance(0.1)
        sup.step()
    assert sup.service("broker-1")["state"] == "crashed" and "config-error" in kinds(sup.events)


def test_what_counts_as_a_file_held_by_another_program(tmp_path, monkeypatch):
    def sharing(path):
        e = PermissionError(errno.EACCES, "The process cannot access the file", str(path))
        e.winerror = 32   # Windows says so itself
        return e
    assert held_by_another_program(sharing(tmp_path / ".lock"), tmp_path)
    assert not held_by_another_program(sharing(tmp_path.parent / "elsewhere" / ".lock"), tmp_path)   # not in it
    assert not held_by_another_program(sharing(tmp_path), tmp_path)                              # the folder itself
    assert not held_by_another_program(OSError(errno.EIO, "I/O error", str(tmp_path / "x")), tmp_path)
    assert not held_by_another_program(PermissionError(errno.EACCES, "Permission denied"), tmp_path)   # no file
    # off Windows a plain "permission denied" is the file's owner or mode: a configuration error
    plain = PermissionError(errno.EACCES, "Permission denied", str(tmp_path / ".lock"))
    assert not held_by_another_program(plain, tmp_path)
    # on Windows "access denied" on a file of a folder that takes a write is taken for a held one
    monkeypatch.setattr(os, "name", "nt")
    monkeypatch.setattr("sandbox.folder_probe.try_write", lambda folder: None)
    assert held_by_another_program(plain, tmp_path)

    def refused(folder):
        raise PermissionError(errno.EACCES, "Access is denied", str(folder))
    monkeypatch.setattr("sandbox.folder_probe.try_write", refused)
    assert not held_by_another_program(plain, tmp_path)   # the folder takes no write: its own problem


def _refused_start(tmp_path, policy=None):
    """A supervisor whose broker's start met a held file, 1.5 s later."""
    sup, clock, spawner, probe, s = _make(tmp_path, policy)
    spawner.log_on_start["broker-1"] = [HELD]
    sup.step()
    spawner.current("broker-1").code = EXIT_CONFIG
    _steps(sup, clock, 15)
    return sup, clock, spawner


def _steps(sup, clock, n: int) -> None:
    for _ in range(n):
        clock.advance(0.1)
        sup.step()


def test_on_crash_off_is_honoured_for_a_held_file_and_another_exit_clears_its_problem(tmp_path):
    sup, clock, spawner = _refused_start(tmp_path, RecoveryPolicy(on_crash="off"))
    _steps(sup, clock, 15)
    svc = sup.service("broker-1")
    assert svc["state"] == "crashed" and len(spawner.spawned) == 1, svc   # not started again
    assert svc["problem"].startswith("a file is held by another program")

    sup, clock, spawner = _refused_start(tmp_path / "other")
    spawner.log_on_start["broker-1"] = []
    spawner.current("broker-1").code = 1          # the file was let go; this exit is a crash of its own
    _steps(sup, clock, 15)
    svc = sup.service("broker-1")
    assert not (svc["problem"] or "").startswith("a file is held"), svc
    assert "crash" in kinds(sup.events)


def test_a_journal_copied_aside_while_a_file_of_it_is_held_is_not_started_on_until_it_is_gone(tmp_path, monkeypatch):
    """Found by review of the quarantine's copy fallback: a journal that could not be renamed aside
    (a file of it held) was copied, its files removed but the held one, and the service started
    "clean" on what was left (a stale checkpoint file would set a re-created topic's log start past
    its records, a stale segment would be read as the partition's). It now waits, tried every
    second, until the leftover is gone."""
    from winfiles import install

    from sandbox.runner.policy import EXIT_UNREPAIRABLE
    from sandbox.runner.quarantine import LEFTOVERS

    sup, clock, spawner, probe, s = _make(tmp_path)
    stale = s.data_dir / "log-start-offset-checkpoint"
    stale.write_text("0\n1\norders 0 5\n")
    listing = tmp_path.parent / f"{tmp_path.name}-held.txt"
    listing.write_text(f"{stale}\n")
    sem = install(tmp_path, monkeypatch.setattr, held_by=str(listing))
    try:
        sup.step()
        assert len(spawner.spawned) == 1
        spawner.current("broker-1").code = EXIT_UNREPAIRABLE   # the journal cannot be repaired: wiped
        for _ in range(30):
            clock.advance(0.1)
            sup.step()
        (where,) = quarantines(tmp_path / ".sandbox" / "quarantine", "broker-1")
        assert (where / "orders-0" / "00000000000000000000.log").read_bytes() == b"old batches"
        assert stale.exists() and (s.data_dir / LEFTOVERS).exists()
        assert not (s.data_dir / "orders-0").exists()
        assert len(spawner.spawned) == 1, "started on the leftover of its quarantined journal"
        svc = sup.service("broker-1")
        assert svc["problem"].startswith("a file is held by another program: ") and str(stale) in svc["problem"]
        listing.write_text("")                                  # let go
        probe.ok["broker-1"] = True
        for _ in range(30):
            clock.advance(0.1)
            sup.step()
        assert len(spawner.spawned) == 2
        assert list(s.data_dir.iterdir()) == []   # started on a clean folder
        svc = sup.service("broker-1")
        assert svc["state"] == "running" and svc["problem"] is None
    finally:
        sem.active = False


def test_a_folder_quarantined_as_unusable_with_a_file_held_is_not_started_on_its_leftovers(tmp_path, monkeypatch):
    """Found by review: after a quarantine for an unusable path (here a write probe refused once)
    that left a held file, the service started at once on the leftovers, and the next start
    removed everything in the folder, records written since included."""
    from winfiles import install

    import sandbox.runner.recovery as recovery
    from sandbox.runner.quarantine import LEFTOVERS

    sup, clock, spawner, probe, s = _make(tmp_path)
    stale = s.data_dir / "log-start-offset-checkpoint"
    stale.write_text("0\n1\norders 0 5\n")
    listing = tmp_path.parent / f"{tmp_path.name}-held.txt"
    listing.write_text(f"{stale}\n")
    real, calls = recovery.path_problem, []

    def refused_once(d):
        calls.append(d)
        return "it cannot be written (Permission denied)" if len(calls) == 1 else real(d)
    monkeypatch.setattr(recovery, "path_problem", refused_once)
    sem = install(tmp_path, monkeypatch.setattr, held_by=str(listing))
    try:
        sup.step()
        assert spawner.spawned == [] and (s.data_dir / LEFTOVERS).exists() and stale.exists()
        assert sup.service("broker-1")["problem"].startswith("a file is held by another program: ")
        listing.write_text("")
        for _ in range(20):
            clock.advance(0.1)
            sup.step()
        assert len(spawner.spawned) == 1 and list(s.data_dir.iterdir()) == []
        (s.data_dir / "new-0").mkdir()
        (s.data_dir / "new-0" / "00000000000000000000.log").write_bytes(b"written since")
        spawner.current("broker-1").code = 1   # an ordinary crash later
        for _ in range(50):
            clock.advance(0.1)
            sup.step()
        assert len(spawner.spawned) == 2
        assert (s.data_dir / "new-0" / "00000000000000000000.log").read_bytes() == b"written since"
        assert sup.service("broker-1")["restarts"] == 1   # the start put off counted none
    finally:
        sem.active = False


def test_a_log_file_that_cannot_be_opened_is_waited_for_not_left_crashed(tmp_path):
    """Found by review: a broker whose log file could not be opened (Windows: held by another
    program; an immutable file) was left crashed for good, "could not start ...: [Errno 1]" and no
    fix; it is now tried every second, said once, and runs once the file opens."""
    sup, clock, spawner, probe, s = _make(tmp_path)
    real = spawner.spawn
    refused = [True]

    def spawn(spec):
        if spec.name == "broker-1" and refused[0]:
            raise PermissionError(1, "Operation not permitted", str(spec.log_path))
        return real(spec)

    spawner.spawn = spawn
    for _ in range(30):
        clock.advance(0.1)
        sup.step()
    svc = sup.service("broker-1")
    assert svc["state"] == "recovering" and "cannot be opened (Operation not permitted)" in svc["problem"], svc
    assert kinds(sup.events).count("file-in-use") == 1 and "crash" not in kinds(sup.events)
    refused[0] = False
    probe.ok["broker-1"] = True
    for _ in range(30):
        clock.advance(0.1)
        sup.step()
    svc = sup.service("broker-1")
    assert svc["state"] == "running" and svc["healthy"] and svc["problem"] is None, svc
