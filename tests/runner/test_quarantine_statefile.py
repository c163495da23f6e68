"""Quarantine moves (busy files on Windows: retried rename, copy-then-delete, never a silent delete),
the atomic state file, the recovery policy's arithmetic, and log scanning."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sandbox.runner import statefile
from sandbox.runner.logscan import scan_events, tail_lines
from sandbox.runner.policy import RecoveryPolicy, RestartWindow
from sandbox.runner.quarantine import QuarantineError, has_data, prune, quarantine, quarantines, stamp

WALL = 1_795_000_000.0


def journal(tmp_path: Path) -> Path:
    d = tmp_path / "broker-1"
    (d / "orders-0").mkdir(parents=True)
    (d / "orders-0" / "0.log").write_bytes(b"batches")
    return d


def busy(times: int):
    calls = []

    def rename(src, dst):
        calls.append((src, dst))
        if len(calls) <= times:
            raise PermissionError(13, "[simulated Windows] file in use", str(src))
        os.rename(src, dst)
    return rename, calls


def test_stamp_is_utc():
    assert stamp(0) == "19700101T000000Z"


def test_rename_retried_while_files_are_busy(tmp_path):
    d = journal(tmp_path)
    rename, calls = busy(2)
    sleeps = []
    where, how = quarantine(d, tmp_path / "q", "broker-1", WALL, sleep=sleeps.append, rename=rename)
    assert how == "renamed" and len(calls) == 3 and sleeps == [0.05, 0.1]
    assert (where / "orders-0" / "0.log").read_bytes() == b"batches"
    assert d.is_dir() and not has_data(d)


def test_copy_then_delete_as_a_last_resort(tmp_path):
    d = journal(tmp_path)
    rename, calls = busy(100)
    where, how = quarantine(d, tmp_path / "q", "broker-1", WALL, sleep=lambda s: None, rename=rename,
                            attempts=4)
    assert how == "copied" and len(calls) == 4
    assert (where / "orders-0" / "0.log").read_bytes() == b"batches"
    assert not has_data(d)


def test_nothing_is_deleted_when_the_copy_fails(tmp_path, monkeypatch):
    d = journal(tmp_path)
    rename, _ = busy(100)

    def broken_copy(*a, **k):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr("shutil.copytree", broken_copy)
    with pytest.raises(QuarantineError, match="left in place"):
        quarantine(d, tmp_path / "q", "broker-1", WALL, sleep=lambda s: None, rename=rename)
    assert (d / "orders-0" / "0.log").read_bytes() == b"batches"


def test_same_second_quarantines_do_not_collide(tmp_path):
    root = tmp_path / "q"
    a, _ = quarantine(journal(tmp_path), root, "broker-1", WALL)
    (tmp_path / "broker-1" / "f").write_text("second")
    b, _ = quarantine(tmp_path / "broker-1", root, "broker-1", WALL)
    assert a != b and b.name == a.name + ".2"
    assert quarantines(root, "broker-1") == [a, b]
    assert prune(root, "broker-1", 1) == [a] and quarantines(root, "broker-1") == [b]


def test_prune_keep_zero_and_other_names(tmp_path):
    root = tmp_path / "q"
    for n in ("20250101T000000Z-coordinator", "not-a-quarantine", "20250101T000000Z-broker-1"):
        (root / n).mkdir(parents=True)
    assert [p.name for p in prune(root, "coordinator", 0)] == ["20250101T000000Z-coordinator"]
    assert sorted(p.name for p in root.iterdir()) == ["20250101T000000Z-broker-1", "not-a-quarantine"]
    assert prune(tmp_path / "missing", "x", 1) == []


def test_state_file_replace_retried_on_permission_error(tmp_path, monkeypatch):
    real = os.replace
    fails = [2]

    def replace(src, dst):
        if fails[0]:
            fails[0] -= 1
            raise PermissionError(13, "[simulated Windows] a reader holds it open")
        real(src, dst)
    monkeypatch.setattr(statefile.os, "replace", replace)
    sleeps = []
    path = tmp_path / "state.json"
    statefile.write_state(path, {"services": []}, sleep=sleeps.append)
    assert statefile.read_state(path) == {"services": []} and len(sleeps) == 2
    fails[0] = 100
    with pytest.raises(PermissionError):
        statefile.write_state(path, {"services": [1]}, sleep=lambda s: None)
    assert statefile.read_state(path) == {"services": []}  # the old snapshot is intact
    assert not list(tmp_path.glob("*.tmp"))


def test_a_state_file_that_cannot_be_written_leaves_the_old_one_and_no_copy(tmp_path, monkeypatch):
    """A full disk while the supervisor writes its state (or the catalog): the file it had stays
    whole, and the half-written copy is removed, not left to take more of what little is left."""
    import errno
    import json
    target = tmp_path / "supervisor.json"
    statefile.write_state(target, {"v": 1})

    def full(*_a, **_k):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(json, "dump", full)
    with pytest.raises(OSError):
        statefile.write_state(target, {"v": 2})
    monkeypatch.undo()
    assert statefile.read_state(target) == {"v": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["supervisor.json"]


def test_policy_validation_and_backoff():
    p = RecoveryPolicy(backoff_initial_s=0.2, backoff_max_s=5)
    assert [p.backoff(n) for n in (0, 1, 2, 3, 6, 100)] == [0.0, 0.2, 0.4, 0.8, 5, 5]
    with pytest.raises(ValueError, match="on_crash"):
        RecoveryPolicy(on_crash="sometimes")
    with pytest.raises(ValueError, match="repair-then-wipe"):
        RecoveryPolicy(on_corrupt_journal="delete")
    with pytest.raises(ValueError, match="max_restarts"):
        RecoveryPolicy(max_restarts=-1)


def test_restart_window():
    w = RestartWindow(10, 2)
    assert [w.record(t) for t in (0, 1, 2)] == [1, 2, 3]
    assert w.looping(2) and not w.looping(11.5)


def test_scan_events_only_complete_lines_and_resumes(tmp_path):
    log = tmp_path / "b.log"
    log.write_bytes(b'x EVENT repair {"bytes": 1}\ny EVENT repair {"bytes": 2')
    found, off = scan_events(log, 0)
    assert found == [("repair", {"bytes": 1})]
    with open(log, "ab") as f:
        f.write(b'}\nz EVENT stale-lock {"pid": 3}\nEVENT repair not-json\n')
    found, off2 = scan_events(log, off)
    assert found == [("repair", {"bytes": 2}), ("stale-lock", {"pid": 3})]
    assert off2 == log.stat().st_size
    log.write_bytes(b"rotated\n")  # shorter than the offset: start over
    assert scan_events(log, off2) == ([], 8)
    assert tail_lines(tmp_path / "missing.log") == []


def test_leftovers_of_a_copied_quarantine_go_past_a_held_file_and_the_folder_is_clean_once_it_goes(
        tmp_path, monkeypatch):
    from winfiles import install

    from sandbox.runner.quarantine import LEFTOVERS, clear_leftovers

    d = journal(tmp_path)
    (d / "orders-0" / "0.index").write_bytes(b"i")
    (d / "recovery-point-offset-checkpoint").write_text("0\n0\n")
    listing = tmp_path.parent / f"{tmp_path.name}-held.txt"
    held = d / "orders-0" / "0.index"
    listing.write_text(f"{held}\n")
    sem = install(tmp_path, monkeypatch.setattr, held_by=str(listing))
    try:
        where, how = quarantine(d, tmp_path / "q", "broker-1", WALL, sleep=lambda s: None, attempts=2)
        assert how == "copied (some files still busy in the original)"
        assert (where / "orders-0" / "0.log").read_bytes() == b"batches"
        assert (d / LEFTOVERS).exists() and has_data(d)
        assert clear_leftovers(d) in (str(held), str(held.parent))   # the folder holding it, in the stand-in
        assert not (d / "recovery-point-offset-checkpoint").exists() and held.exists()
        assert (d / LEFTOVERS).exists()
        listing.write_text("")
        assert clear_leftovers(d) is None and list(d.iterdir()) == []
        assert clear_leftovers(d) is None
    finally:
        sem.active = False
