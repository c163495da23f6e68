"""status's own check of a journal folder: a real write. On a full disk it says so with the fix,
also while a broker's own "disk full" line cannot reach its log (the log is on that disk)."""

from __future__ import annotations

import errno
from pathlib import Path

from sandbox.health.status import journal_check


def test_a_full_disk_is_told_with_its_fix_and_another_failure_without(tmp_path, monkeypatch):
    assert journal_check(tmp_path)[0] is True
    failure = {"errno": errno.ENOSPC, "text": "No space left on device"}

    def refused(self, _data):
        raise OSError(failure["errno"], failure["text"])
    monkeypatch.setattr(Path, "write_bytes", refused)
    writable, _free, problem = journal_check(tmp_path)
    assert writable is False
    assert problem == f"journal folder {tmp_path} is not writable: No space left on device; free space on that disk"
    failure.update(errno=errno.EACCES, text="Permission denied")
    assert journal_check(tmp_path)[2] == f"journal folder {tmp_path} is not writable: Permission denied"
