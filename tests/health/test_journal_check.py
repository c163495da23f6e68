"""status's own check of a journal folder: a real write. On a full disk it says so with the fix,
also while a broker's own "disk full" line cannot reach its log (the log is on that disk)."""

from __future__ import annotations

import errno
import os

from sandbox.health import status
from sandbox.health.status import journal_check


def test_a_full_disk_is_told_with_its_fix_and_another_failure_without(tmp_path, monkeypatch):
    assert journal_check(tmp_path)[0] is True
    failure = {"errno": errno.ENOSPC, "text": "No space left on device"}

    def refused(_folder, _size=2):
        raise OSError(failure["errno"], failure["text"])
    monkeypatch.setattr(status, "try_write", refused)
    writable, _free, problem = journal_check(tmp_path)
    assert writable is False
    assert problem == f"journal folder {tmp_path} is not writable: No space left on device; free space on that disk"
    failure.update(errno=errno.EACCES, text="Permission denied")
    assert journal_check(tmp_path)[2] == f"journal folder {tmp_path} is not writable: Permission denied"


def test_status_and_the_supervisor_probing_one_folder_at_once_do_not_trip_each_other(tmp_path, monkeypatch):
    """Each process (and thread) probes with a file of its own: before, all wrote `.write-probe`,
    and one's removal could take another's file away ("not writable: No such file or
    directory"), or on Windows fail on the other's open handle."""
    import threading

    from sandbox import folder_probe

    monkeypatch.setattr(os, "getpid", lambda: 1)
    other = folder_probe.probe_path(tmp_path)    # another process's probe, open right now
    with open(other, "wb"):
        monkeypatch.setattr(os, "getpid", lambda: 2)
        assert folder_probe.probe_path(tmp_path) != other
        assert journal_check(tmp_path)[0] is True
        assert other.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [other.name]   # its own probe is gone
    paths = []
    t = threading.Thread(target=lambda: paths.append(folder_probe.probe_path(tmp_path)))
    t.start()
    t.join()
    assert paths[0] != folder_probe.probe_path(tmp_path)   # the supervisor's loop and its HTTP thread


def test_a_disk_with_less_than_a_megabyte_free_is_told_full_though_the_probe_fitted(tmp_path, monkeypatch):
    """Found by the disk-full campaign: a moment after a service freed a few bytes, status's probe
    fitted and it said "has only 0 MB free", which did not tell a full disk."""
    from collections import namedtuple

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(status.shutil, "disk_usage", lambda _p: usage(1 << 30, (1 << 30) - 8192, 8192))
    writable, free, problem = journal_check(tmp_path)
    assert writable is True and free == 8192
    assert problem == f"journal folder {tmp_path}: disk full (8 KB free); free space on that disk"
    monkeypatch.setattr(status.shutil, "disk_usage", lambda _p: usage(1 << 30, 0, 100 << 20))
    assert journal_check(tmp_path)[2] == f"journal folder {tmp_path} has only 100 MB free"
