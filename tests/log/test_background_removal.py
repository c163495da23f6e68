"""Big deletions off the caller's thread (files.REMOVER): a LogDir opened with
background_removal renames a deleted partition folder or big segment out of the way at once and
leaves the unlink, which the filesystem makes slow for big files, to a worker thread; a clean
close waits for it, and what a crash leaves is cleaned at the next open. Under Windows' file
rules (the autouse `windows_files` fixture), as the broker runs."""
from __future__ import annotations

import os
import threading

import pytest

from sandbox.log import LogConfig, LogDir, build_batch
from sandbox.log.files import BACKGROUND_MIN_BYTES, REMOVER, BackgroundRemover, safe_delete


@pytest.fixture
def held():
    """REMOVER in use, its thread held on a gate until the test opens it (so what was queued is
    seen still queued), then drained."""
    gate = threading.Event()
    REMOVER.acquire()
    assert REMOVER.submit(lambda: gate.wait(10))
    yield gate
    gate.set()
    assert REMOVER.release(10)


def big_batch(i: int) -> bytes:
    return build_batch([(b"k%d" % i, b"v" * (BACKGROUND_MIN_BYTES // 2))], timestamp_ms=1_000)


def test_a_remover_without_users_queues_nothing():
    r = BackgroundRemover()
    assert not r.submit(lambda: None)
    ran = []
    r.acquire()
    assert r.submit(lambda: ran.append(threading.current_thread().name))
    assert r.release(5)
    assert ran == ["sandbox-remover"]
    assert not r.submit(lambda: None)


def test_a_failed_removal_does_not_stop_the_thread():
    r = BackgroundRemover()
    r.acquire()
    ran = []

    def fail():
        raise PermissionError("held by another program")
    assert r.submit(fail) and r.submit(lambda: ran.append(1))
    assert r.release(5) and ran == [1]


def test_big_file_is_renamed_at_once_and_removed_by_the_thread(tmp_path, held):
    big, small = tmp_path / "00000000000000000000.log", tmp_path / "00000000000000000000.index"
    big.write_bytes(b"x" * BACKGROUND_MIN_BYTES)
    small.write_bytes(b"x" * 100)
    assert safe_delete(big) and safe_delete(small)
    assert not big.exists() and not small.exists()
    assert (tmp_path / "00000000000000000000.log.deleted").exists()        # queued behind the gate
    assert not (tmp_path / "00000000000000000000.index.deleted").exists()  # small: removed at once
    held.set()
    assert REMOVER.drain(10)
    assert list(tmp_path.iterdir()) == []


def cfg(**kw) -> LogConfig:
    return LogConfig(segment_bytes=2 * BACKGROUND_MIN_BYTES, index_interval_bytes=4096, **kw)


def test_deleted_partition_folder_is_removed_in_the_background(tmp_path, windows_files):
    ld = LogDir(tmp_path, cfg(), background_removal=True)
    ld.open()
    log = ld.create("doomed", 0)
    ld.create("kept", 0).append(big_batch(0))
    for i in range(4):
        log.append(big_batch(i))
    gate = threading.Event()
    assert REMOVER.submit(lambda: gate.wait(10))
    try:
        ld.delete_partition("doomed", 0)
        assert not (tmp_path / "doomed-0").exists() and ld.get("doomed", 0) is None
        left = [p.name for p in tmp_path.iterdir() if p.name.endswith("-delete")]
        assert len(left) == 1 and left[0].startswith("doomed-0.")   # not removed on this thread
        ld.create("doomed", 0).append(big_batch(9))   # the name is free at once
    finally:
        gate.set()
    assert REMOVER.drain(10)
    assert not any(p.name.endswith("-delete") for p in tmp_path.iterdir())
    ld.close()
    ld = LogDir(tmp_path, cfg())
    assert set(ld.open()) == {("kept", 0), ("doomed", 0)}
    ld.close()


def test_close_waits_for_what_is_queued(tmp_path):
    ld = LogDir(tmp_path, cfg(), background_removal=True)
    ld.open()
    for i in range(3):
        ld.create("t", i).append(big_batch(i))
    gate = threading.Event()
    assert REMOVER.submit(lambda: gate.wait(10))
    for i in range(3):
        ld.delete_partition("t", i)
    threading.Timer(0.2, gate.set).start()
    ld.close()
    assert not any(p.name.endswith("-delete") for p in tmp_path.iterdir())


def test_retention_of_a_big_segment_leaves_it_to_the_thread(tmp_path, windows_files):
    ld = LogDir(tmp_path, cfg(retention_bytes=2 * BACKGROUND_MIN_BYTES), background_removal=True)
    ld.open()
    log = ld.create("r", 0)
    for i in range(8):   # about 4 segments of 2 MiB
        log.append(big_batch(i))
    gate = threading.Event()
    assert REMOVER.submit(lambda: gate.wait(10))
    try:
        assert log.housekeeping.apply_retention() > 0
        assert log.log_start_offset > 0
        assert any(p.name.endswith(".log.deleted") for p in (tmp_path / "r-0").iterdir())
    finally:
        gate.set()
    assert REMOVER.drain(10)
    assert not any(p.name.endswith(".deleted") for p in (tmp_path / "r-0").iterdir())
    ld.close()


def test_a_crash_with_removals_queued_is_cleaned_at_the_next_open(tmp_path, held):
    ld = LogDir(tmp_path, cfg(), background_removal=True)
    ld.open()
    ld.create("gone", 0).append(big_batch(0))
    ld.delete_partition("gone", 0)
    assert any(p.name.endswith("-delete") for p in tmp_path.iterdir())
    ld._release_lock()   # the process died: nothing waited for the queue
    ld._logs.clear()
    ld2 = LogDir(tmp_path, cfg())
    assert ld2.open() == {}
    assert not any(p.name.endswith("-delete") for p in tmp_path.iterdir())
    ld2.close()


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="names an fd's file through /proc")
def test_a_deleted_partition_is_not_flushed_first(tmp_path, monkeypatch):
    """Its unflushed segments are not fsynced on the way out: that was up to seconds of disk
    writes on the broker's loop for data deleted a moment later."""
    ld = LogDir(tmp_path, cfg(), background_removal=True)
    ld.open()
    log = ld.create("doomed", 0)
    for i in range(4):
        log.append(big_batch(i))
    assert log.housekeeping.dirty   # a plain close would fsync it
    synced = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(os.readlink(f"/proc/self/fd/{fd}")), real(fd))[1])
    ld.delete_partition("doomed", 0)
    assert synced and not [p for p in synced if "doomed-0" in p]   # the checkpoint files only
    monkeypatch.undo()
    ld.close()


def test_a_folder_the_thread_cannot_remove_is_reported_and_left_for_the_next_open(tmp_path, monkeypatch):
    """Windows: another program (an antivirus, an indexer) holds a file of the deleted folder
    past every retry: the event says so, as when the removal ran on the caller's thread."""
    import shutil
    events = []
    ld = LogDir(tmp_path, cfg(), background_removal=True, on_event=lambda kind, info: events.append((kind, info)))
    ld.open()
    ld.create("held", 0).append(big_batch(0))
    real = shutil.rmtree

    def refuse(path, *a, **kw):
        if str(path).endswith("-delete"):
            raise PermissionError(13, "held by another program", str(path))
        return real(path, *a, **kw)
    monkeypatch.setattr(shutil, "rmtree", refuse)
    ld.delete_partition("held", 0)
    assert REMOVER.drain(10)
    assert [k for k, _ in events].count("delete-deferred") == 1
    assert any(p.name.endswith("-delete") for p in tmp_path.iterdir())
    monkeypatch.undo()
    ld.close()
    ld = LogDir(tmp_path, cfg())
    assert ld.open() == {}
    assert not any(p.name.endswith("-delete") for p in tmp_path.iterdir())
    ld.close()
