"""Quarantine of a journal path that cannot be used, under Windows file rules (the autouse
`windows_files` fixture: a file that is open cannot be renamed or removed): a file where the
journal folder should be is moved into quarantine once its holder lets go, copied (never deleted)
while it is still held, and the supervisor starts the service clean either way or says why."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.runner_fakes import FakeClock, FakeProbe, FakeSpawner, kinds, spec

from sandbox.runner.native import RecoveryPolicy, Supervisor
from sandbox.runner.quarantine import QuarantineError, path_problem, quarantine


def test_a_file_in_place_of_the_folder_is_moved_once_its_holder_closes_it(tmp_path, windows_files):
    journal = tmp_path / "broker-1"
    journal.write_text("half a copy")
    assert path_problem(journal) == "it is a file, not a folder"
    holder = open(journal, "rb")          # a sync tool still has it open
    waits = []

    def sleep(s):
        waits.append(s)
        if len(waits) == 2:
            holder.close()                # ...and lets go a moment later

    where, how = quarantine(journal, tmp_path / "quarantine", "broker-1", 1_795_000_000.0, sleep=sleep)
    assert how == "renamed" and windows_files.vetoes >= 1
    assert (where / "broker-1").read_text() == "half a copy"
    assert journal.is_dir() and path_problem(journal) is None


def test_a_file_held_open_throughout_is_copied_and_never_deleted(tmp_path, windows_files):
    journal = tmp_path / "broker-1"
    journal.write_text("half a copy")
    with open(journal, "rb"):
        with pytest.raises(QuarantineError, match="still held open"):
            quarantine(journal, tmp_path / "quarantine", "broker-1", 1_795_000_000.0, sleep=lambda s: None)
        assert journal.read_text() == "half a copy"
        kept = list((tmp_path / "quarantine").glob("*-broker-1/broker-1"))
        assert kept and kept[0].read_text() == "half a copy"


def test_the_supervisor_starts_the_service_clean_after_moving_the_file(tmp_path, windows_files):
    clock, spawner, probe = FakeClock(), FakeSpawner(), FakeProbe()
    s = spec(tmp_path, "broker-1")
    s.data_dir.parent.mkdir(parents=True)
    s.data_dir.write_text("not a folder")
    sup = Supervisor([s], RecoveryPolicy(), spawner=spawner, clock=clock, probe=probe,
                     quarantine_root=tmp_path / ".sandbox" / "quarantine", sleep=lambda x: None)
    sup.step()
    assert kinds(sup.events) == ["wipe", "start"]
    wipe = sup.events[0]
    assert wipe["rule"] == "unusable-path" and "it is a file, not a folder" in wipe["detail"]
    assert s.data_dir.is_dir() and len(spawner.handles("broker-1")) == 1
    assert (Path(wipe["path"]) / "broker-1").read_text() == "not a folder"


def test_a_file_that_stays_held_stops_only_that_service_with_one_sentence(tmp_path, windows_files):
    clock, spawner, probe = FakeClock(), FakeSpawner(), FakeProbe()
    bad, good = spec(tmp_path, "broker-1"), spec(tmp_path, "broker-2", port=9093)
    bad.data_dir.parent.mkdir(parents=True)
    bad.data_dir.write_text("not a folder")
    with open(bad.data_dir, "rb"):
        sup = Supervisor([bad, good], RecoveryPolicy(), spawner=spawner, clock=clock, probe=probe,
                         quarantine_root=tmp_path / ".sandbox" / "quarantine", sleep=lambda x: None)
        for _ in range(5):
            sup.step()
            clock.advance(1)
    assert len(spawner.handles("broker-2")) == 1 and not spawner.handles("broker-1")
    st = sup.service("broker-1")
    assert st["state"] == "crashed" and "cannot be used" in st["problem"] and "held open" in st["problem"]
    assert kinds(sup.events).count("config-error") == 1
