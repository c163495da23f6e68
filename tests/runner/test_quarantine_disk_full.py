"""A quarantine that must copy (the rename fails: another volume, EXDEV) and runs out of space:
the partial copy is removed (it passed for a real quarantine, and prune() could keep it and delete
a whole older one), the journal stays in place, and the error is one sentence ("no space left on
<filesystem> (N files not copied)"), not shutil.Error's list of tuples."""

from __future__ import annotations

import errno
import shutil

import pytest

from sandbox.runner import quarantine as q


def exdev(src, dst):
    raise OSError(errno.EXDEV, "Invalid cross-device link", str(src))


def fill_after(n):
    real, done = shutil.copytree, []

    def copy(s, d, **k):
        if len(done) >= n:
            raise OSError(errno.ENOSPC, "No space left on device", d)
        done.append(s)
        return shutil.copy2(s, d, **k)

    def copytree(src, dst, *args, **kw):
        if args:   # copytree's own call for a subfolder: its copy_function is already ours
            return real(src, dst, *args, **kw)
        return real(src, dst, copy_function=copy, **kw)
    return copytree


def test_a_copy_that_runs_out_of_space_leaves_no_partial_quarantine(tmp_path, monkeypatch):
    journal, root = tmp_path / "broker-1", tmp_path / "quarantine"
    for name in ("a-0/00.log", "a-0/00.index", "b-0/00.log", "meta.properties"):
        (journal / name).parent.mkdir(parents=True, exist_ok=True)
        (journal / name).write_bytes(b"x" * 100)
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "00.log").write_bytes(b"y")
    older, _ = q.quarantine(tmp_path / "old", root, "broker-1", 1000.0)   # a whole, older quarantine
    monkeypatch.setattr(q.shutil, "copytree", fill_after(1))
    with pytest.raises(q.QuarantineError) as e:
        q.quarantine(journal, root, "broker-1", 2000.0, rename=exdev, sleep=lambda s: None)
    msg = str(e.value)
    assert "no space left on /" in msg and "(3 files not copied)" in msg, msg
    assert len(msg) < 400 and "[Errno" not in msg and "('" not in msg, msg
    assert q.quarantines(root, "broker-1") == [older]   # no partial copy beside it
    assert sorted(p.name for p in journal.rglob("*") if p.is_file()) == ["00.index", "00.log", "00.log",
                                                                          "meta.properties"]
    assert q.prune(root, "broker-1", 1) == [] and older.exists()
