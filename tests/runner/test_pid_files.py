"""A service's pid file (`.sandbox/run/<service>.json`) that cannot be written or removed is
logged, never raised: the service has started (or stopped) and the supervisor must still record
it; `down` finds such a service by its command line."""

from __future__ import annotations

import logging

from runner.runner_fakes import spec
from sandbox.runner import orphans
from sandbox.runner.stack import _note_pid


def test_a_pid_file_that_cannot_be_written_is_logged_not_raised(tmp_path, caplog):
    s = spec(tmp_path, "broker-1")
    (tmp_path / ".sandbox").mkdir()
    (tmp_path / ".sandbox" / "run").write_text("a file where the folder goes")
    with caplog.at_level(logging.WARNING):
        _note_pid(s, 4242)      # raised NotADirectoryError / FileExistsError before
        _note_pid(s, None)
    said = [r.getMessage() for r in caplog.records]
    assert any("broker-1: pid file not written" in m for m in said), said
    assert not orphans.pid_file(s).exists()


def test_a_pid_file_is_written_and_removed(tmp_path):
    s = spec(tmp_path, "broker-1")
    _note_pid(s, 4242)
    assert '"pid": 4242' in orphans.pid_file(s).read_text()
    _note_pid(s, None)
    assert not orphans.pid_file(s).exists()
