"""LogDir: lock file, checkpoint files, opening partitions, Windows-safe partition deletion."""
import subprocess
import sys

import pytest

from sandbox.log import LogConfig, LogDir, UnrecoverableJournalError
from sandbox.log.manager import (
    LOG_START_CHECKPOINT, RECOVERY_CHECKPOINT, parse_partition_dir, read_checkpoint, write_checkpoint,
)

from .logkit import batch, offsets


class Events(list):
    def __call__(self, kind, info):
        self.append((kind, info))


def cfg():
    return LogConfig(segment_bytes=1024, index_interval_bytes=128)


def test_parse_partition_dir():
    assert parse_partition_dir("my.topic_name-with-dash-12") == ("my.topic_name-with-dash", 12)
    assert parse_partition_dir("orders-0") == ("orders", 0)
    assert parse_partition_dir("orders") is None
    assert parse_partition_dir("orders-0.abcdef0123-delete") is None


def test_checkpoint_file_round_trip(tmp_path):
    p = tmp_path / "cp"
    data = {("a.b-c_d", 0): 5, ("x", 12): 0}
    write_checkpoint(p, data)
    assert p.read_text().splitlines()[:2] == ["0", "2"]
    assert "a.b-c_d 0 5" in p.read_text()
    assert read_checkpoint(p) == data
    assert read_checkpoint(tmp_path / "missing") == {}
    p.write_text("0\n3\nx 1 2\n")
    with pytest.raises(ValueError):
        read_checkpoint(p)


def test_logdir_round_trip_with_checkpoints(tmp_path):
    root = tmp_path / "broker-1"
    ld = LogDir(root, cfg())
    assert ld.open() == {}
    a = ld.create("orders.v1-x", 0)
    b = ld.create("orders.v1-x", 1)
    for i in range(20):
        a.append(batch(2))
    b.append(batch(3))
    a.delete_records_before(7)
    ld.close()
    assert not (root / ".lock").exists()
    assert read_checkpoint(root / RECOVERY_CHECKPOINT) == {("orders.v1-x", 0): 40, ("orders.v1-x", 1): 3}
    assert read_checkpoint(root / LOG_START_CHECKPOINT)[("orders.v1-x", 0)] == 7
    ev = Events()
    ld = LogDir(root, cfg(), on_event=ev)
    logs = ld.open()
    assert set(logs) == {("orders.v1-x", 0), ("orders.v1-x", 1)}
    a = ld.get("orders.v1-x", 0)
    assert a.log_start_offset == 7 and a.log_end_offset == 40 and a.recovery_point == 40
    assert offsets(a.read(7, 1 << 20).tobytes())[0] <= 7
    assert ld.get("nope", 0) is None
    assert ev == []
    ld.close()


def test_checkpoint_is_flush_free(tmp_path):
    ld = LogDir(tmp_path, cfg())
    ld.open()
    log = ld.create("t", 0)
    log.append(batch(2))
    ld.checkpoint()
    assert read_checkpoint(tmp_path / RECOVERY_CHECKPOINT) == {("t", 0): 0}
    ld.flush_all()
    assert read_checkpoint(tmp_path / RECOVERY_CHECKPOINT) == {("t", 0): 2}
    ld.close()


def test_live_lock_refused(tmp_path):
    ld = LogDir(tmp_path, cfg())
    ld.open()
    with pytest.raises(UnrecoverableJournalError, match="locked"):
        LogDir(tmp_path, cfg()).open()
    ld.close()
    ld2 = LogDir(tmp_path, cfg())
    ld2.open()
    ld2.close()


def test_stale_lock_removed(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / ".lock").write_text(str(dead.pid))
    ev = Events()
    ld = LogDir(tmp_path, cfg(), on_event=ev)
    ld.open()
    assert [k for k, _ in ev] == ["stale-lock-removed"] and ev[0][1]["pid"] == dead.pid
    assert (tmp_path / ".lock").read_text().split()[0] == str(__import__("os").getpid())
    ld.close()


def test_lock_with_our_own_pid_from_an_earlier_process_is_stale(tmp_path):
    """A restarted container runs its service as pid 1 again: the lock its killed predecessor left
    names our pid, but this process never wrote it."""
    import os

    (tmp_path / ".lock").write_text(f"{os.getpid()} token-of-the-killed-process")
    ev = Events()
    ld = LogDir(tmp_path, cfg(), on_event=ev)
    ld.open()
    assert [k for k, _ in ev] == ["stale-lock-removed"]
    ld.close()
    (tmp_path / ".lock").write_text(str(os.getpid()))  # the older format, pid only
    ld = LogDir(tmp_path, cfg())
    ld.open()
    ld.close()


def test_lock_held_by_this_process_still_refuses_a_second_open(tmp_path):
    ld = LogDir(tmp_path, cfg())
    ld.open()
    try:
        with pytest.raises(UnrecoverableJournalError, match="locked"):
            LogDir(tmp_path, cfg()).open()
    finally:
        ld.close()


def test_delete_partition_closes_handles_first(tmp_path, windows_files):
    ld = LogDir(tmp_path, cfg())
    ld.open()
    log = ld.create("doomed", 3)
    keep = ld.create("kept", 0)
    for i in range(20):
        log.append(batch(2))
    keep.append(batch(1))
    ld.delete_partition("doomed", 3)
    assert not (tmp_path / "doomed-3").exists()
    assert not any(p.name.endswith("-delete") for p in tmp_path.iterdir())
    assert ld.get("doomed", 3) is None
    assert ("doomed", 3) not in read_checkpoint(tmp_path / RECOVERY_CHECKPOINT)
    ld.close()
    ld = LogDir(tmp_path, cfg())
    assert set(ld.open()) == {("kept", 0)}
    ld.close()


def test_windows_semantics_would_catch_open_handles(tmp_path, windows_files):
    """Control for the test above: deleting the directory of an open log must fail."""
    import shutil
    ld = LogDir(tmp_path, cfg())
    ld.open()
    log = ld.create("held", 0)
    log.append(batch(1))
    with pytest.raises(PermissionError):
        shutil.rmtree(log.directory)
    ld.close()


def test_leftover_delete_dirs_cleaned_on_open(tmp_path):
    (tmp_path / "old-0.0123abcd-delete").mkdir()
    (tmp_path / "old-0.0123abcd-delete" / "00000000000000000000.log").write_bytes(b"x")
    ld = LogDir(tmp_path, cfg())
    assert ld.open() == {}
    assert not (tmp_path / "old-0.0123abcd-delete").exists()
    ld.close()


def test_topic_configs_applied_at_open(tmp_path):
    ld = LogDir(tmp_path, cfg())
    ld.open()
    ld.create("t", 0).append(batch(1))
    ld.close()
    special = LogConfig(retention_bytes=5)
    ld = LogDir(tmp_path, cfg())
    logs = ld.open(topic_configs={"t": special})
    assert logs[("t", 0)].config is special
    ld.close()


def test_a_partition_folder_names_its_topic_id_as_kafka_does(tmp_path):
    """partition.metadata (Kafka's name and format: the id in URL-safe base64 without padding)
    is written once per id, read back at open without opening a lazily opened log, and a torn
    or foreign file reads as no id."""
    import base64
    import uuid

    from sandbox.log.manager import PARTITION_METADATA

    topic_id = uuid.UUID("8c39d5b2-5b8f-4bfe-9a40-0f1e2d3c4b5a")
    d = LogDir(tmp_path, cfg())
    d.open()
    log = d.create("orders", 0)
    log.append(batch(1))
    assert log.topic_id is None
    d.record_topic_id("orders", 0, topic_id)
    path = tmp_path / "orders-0" / PARTITION_METADATA
    text = path.read_text()
    assert text == f"version: 0\ntopic_id: {base64.urlsafe_b64encode(topic_id.bytes).decode().rstrip('=')}\n"
    path.write_text("changed by hand")
    d.record_topic_id("orders", 0, topic_id)   # the same id again: not written again
    assert path.read_text() == "changed by hand"
    path.write_text(text)
    d.close()

    d = LogDir(tmp_path, cfg())
    logs = d.open()
    assert logs[("orders", 0)].topic_id == topic_id and not logs[("orders", 0)].opened
    d.close()
    for torn in ("version: 0\ntopic_id: AAAA", "version: 1\ntopic_id: " + text.split()[-1], "", "\xff"):
        path.write_text(torn, encoding="latin-1")
        d = LogDir(tmp_path, cfg())
        assert d.open()[("orders", 0)].topic_id is None, torn
        d.close()


def test_a_stray_partition_set_aside_keeps_its_records_out_of_the_partitions(tmp_path):
    """set_aside renames the folder `<topic>-<partition>.<hex>-stray` (Kafka's name for a stray
    log it keeps): the records stay on disk, the next open() takes it for no partition, and the
    same partition can be made anew beside it."""
    d = LogDir(tmp_path, cfg())
    d.open()
    d.create("orders", 0).append(batch(3))
    aside = d.set_aside("orders", 0)
    assert aside is not None and aside.name.startswith("orders-0.") and aside.name.endswith("-stray")
    assert not (tmp_path / "orders-0").exists() and list(aside.glob("*.log"))
    assert d.get("orders", 0) is None and d.set_aside("orders", 0) is None
    d.create("orders", 0)
    d.close()
    d = LogDir(tmp_path, cfg())
    logs = d.open()
    assert list(logs) == [("orders", 0)] and logs[("orders", 0)].log_end_offset == 0
    assert aside.exists()   # not cleaned as a leftover
    d.close()


def test_a_checkpoint_snapshot_written_after_a_newer_one_does_not_undo_it(tmp_path):
    """The broker writes its checkpoint files from a worker thread while the event loop may write
    them too (a topic deleted, the journal closed): a snapshot taken before a DeleteRecords and
    written after the newer one must not put the old log start back, which would show the
    deleted records again after a restart."""
    ld = LogDir(tmp_path, cfg())
    ld.open()
    log = ld.create("t", 0)
    log.append(batch(10))
    older = ld.snapshot()
    assert log.delete_records_before(6) == 6
    newer = ld.snapshot()
    ld.write_snapshot(newer)
    ld.write_snapshot(older)          # the worker thread's write, finishing last
    assert read_checkpoint(tmp_path / LOG_START_CHECKPOINT) == {("t", 0): 6}
    hw_only = ld.snapshot(high_watermarks_only=True)
    assert set(hw_only[1]) == {"replication-offset-checkpoint"}
    ld.write_snapshot(hw_only)        # a newer snapshot of one file leaves the others as they are
    assert read_checkpoint(tmp_path / LOG_START_CHECKPOINT) == {("t", 0): 6}
    ld.close()
    ld = LogDir(tmp_path, cfg())
    assert ld.open()[("t", 0)].log_start_offset == 6
    ld.close()


def test_a_checkpoint_write_left_behind_by_a_closed_journal_writes_nothing(tmp_path, monkeypatch):
    """A worker thread's write that outlives LogDir.close (its task cancelled at a stop) must not
    write into a folder whose lock is released: another broker process may own it by then. Here
    close's own checkpoint failed (a full disk), so only the close itself can stop it."""
    from sandbox.log import manager
    ld = LogDir(tmp_path, cfg())
    ld.open()
    ld.create("t", 0).append(batch(10))
    left_behind = ld.snapshot()
    real = manager.write_checkpoint

    def full(path, offsets):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(manager, "write_checkpoint", full)
    assert ld.close() == ["checkpoint files: No space left on device"]   # said, not raised
    monkeypatch.setattr(manager, "write_checkpoint", real)
    assert not (tmp_path / ".lock").exists()
    ld.write_snapshot(left_behind)
    assert not (tmp_path / RECOVERY_CHECKPOINT).exists()


def test_a_partition_that_cannot_be_opened_leaves_no_half_made_folder(tmp_path, monkeypatch):
    """Its folder made, its first segment not (no file handles left): an empty folder left behind
    would outlive a deletion of the topic, and be taken for a partition at a later start."""
    import errno

    from sandbox.log import manager
    ld = LogDir(tmp_path, cfg())
    ld.open()

    def no_handles(directory, *_a, **_k):
        directory.mkdir(parents=True)
        (directory / "00000000000000000000.log").write_bytes(b"")   # its first segment, made before
        raise OSError(errno.EMFILE, "Too many open files")
    monkeypatch.setattr(manager, "PartitionLog", no_handles)
    with pytest.raises(OSError):
        ld.create("t", 0)
    assert not (tmp_path / "t-0").exists()
    ld.close()


def _crash(ld, root):
    """The process dies (no flush, no checkpoint), as after a kill or an OS crash; its lock is stale."""
    import os
    for log in ld.logs.values():
        for seg in log.__dict__.get("_segments", []):
            seg.close()
    (root / ".lock").write_text(f"{os.getpid()} token-of-the-crashed-process")


def test_a_cut_writes_the_lowered_recovery_point_so_what_a_crash_lost_after_it_is_repaired(tmp_path):
    """Kafka's truncateTo checkpoints the recovery point at once. Left at its older, higher value,
    the next start only walks the framing of the segments below it: records appended after the
    cut, rolled but never fsynced, lost by an OS crash, stopped the broker for good."""
    root = tmp_path / "b"
    ld = LogDir(root, cfg())
    ld.open()
    log = ld.create("t", 0)
    for i in range(30):
        log.append(batch(2, tag=f"old{i}-"))
    ld.flush_all()
    assert read_checkpoint(root / RECOVERY_CHECKPOINT)[("t", 0)] == 60
    log.truncate_to(20)                      # a follower's cut at a leader change
    log.append(batch(2, tag="new-"))         # the files are written before it
    assert read_checkpoint(root / RECOVERY_CHECKPOINT)[("t", 0)] == 20
    for i in range(29):
        log.append(batch(2, tag=f"new{i}-"))
    # an OS crash loses the unsynced second half of a segment appended after the cut, below 60
    seg = next(s for s in log._segments if s.base_offset > 20 and s.next_offset < 60)
    lost_from = seg.base_offset
    path, size = seg.log_path, seg.size
    _crash(ld, root)
    with open(path, "r+b") as f:
        f.truncate(size // 2)
        f.seek(size // 2)
        f.write(b"\0" * (size - size // 2))
    ld = LogDir(root, cfg())
    ld.open()                                # before: UnrecoverableJournalError
    again = ld.get("t", 0)
    assert lost_from <= again.log_end_offset < lost_from + 12
    assert offsets(again.read(0, 1 << 20, max_offset=again.log_end_offset).tobytes()) == list(range(again.log_end_offset))
    ld.close()


def _journal(tmp_path):
    """An open journal with one log, t-0, of 20 records (not flushed)."""
    root = tmp_path / "b"
    ld = LogDir(root, cfg())
    ld.open()
    log = ld.create("t", 0)
    for _ in range(10):
        log.append(batch(2))
    return root, ld, log


def test_a_new_partition_in_a_deleted_ones_name_survives_a_crash_before_the_next_checkpoint(tmp_path):
    """Deleted without the checkpoint files rewritten (a stray folder set aside), made again,
    written to, then a crash: the files' entries for the old partition (log start 14) had the
    next start empty the new one at 14 (a log start past its log end), losing its records."""
    root, ld, log = _journal(tmp_path)
    log.delete_records_before(14)
    ld.flush_all()
    assert read_checkpoint(root / LOG_START_CHECKPOINT)[("t", 0)] == 14
    ld.delete_partition("t", 0, checkpoint=False)
    new = ld.create("t", 0)
    for i in range(3):
        new.append(batch(2, tag=f"new{i}-"))
    new.housekeeping.flush()                 # its records on disk; the files not written since
    assert read_checkpoint(root / LOG_START_CHECKPOINT).get(("t", 0), 0) == 0
    assert read_checkpoint(root / RECOVERY_CHECKPOINT)[("t", 0)] == 0
    _crash(ld, root)
    ld = LogDir(root, cfg())
    ld.open()
    again = ld.get("t", 0)
    assert (again.log_start_offset, again.log_end_offset) == (0, 6)
    ld.close()


def _flushed_then_cut(tmp_path):
    """A journal with one log of 20 records, all flushed and checkpointed, then cut at 8."""
    root, ld, log = _journal(tmp_path)
    ld.flush_all()
    log.truncate_to(8)
    return root, ld, log


def test_a_cut_whose_checkpoint_cannot_be_written_refuses_the_next_append_until_it_is(tmp_path, monkeypatch):
    import errno
    import sandbox.log.manager as manager
    root, ld, log = _flushed_then_cut(tmp_path)
    real = manager.write_checkpoint

    def full(path, offsets):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))
    monkeypatch.setattr(manager, "write_checkpoint", full)
    with pytest.raises(OSError):
        log.append(batch(2))
    assert log.log_end_offset == 8          # nothing written past the cut
    monkeypatch.setattr(manager, "write_checkpoint", real)
    assert log.append(batch(2)).first_offset == 8
    assert read_checkpoint(root / RECOVERY_CHECKPOINT)[("t", 0)] == 8
    ld.close()


def test_a_high_watermark_file_that_cannot_be_written_does_not_stop_appends_after_a_cut(tmp_path, monkeypatch):
    import errno
    import sandbox.log.manager as manager
    root, ld, log = _flushed_then_cut(tmp_path)
    real = manager.write_checkpoint

    def held(path, offsets):
        if path.name == manager.HW_CHECKPOINT:   # another program holds it (Windows)
            raise PermissionError(errno.EACCES, "held", str(path))
        real(path, offsets)
    monkeypatch.setattr(manager, "write_checkpoint", held)
    assert log.append(batch(2)).first_offset == 8
    assert read_checkpoint(root / RECOVERY_CHECKPOINT)[("t", 0)] == 8
    monkeypatch.setattr(manager, "write_checkpoint", real)
    ld.close()


def test_a_log_whose_open_a_held_file_stops_is_opened_at_its_first_use_not_the_whole_journal(tmp_path, monkeypatch):
    """Windows: the log start is past the recovered log end, and emptying the log there meets a
    segment another program holds: that log waits for its first use; the others are served."""
    from sandbox.log import PartitionLog
    root = tmp_path / "b"
    ld = LogDir(root, cfg())
    ld.open()
    for name in ("held", "other"):
        log = ld.create(name, 0)
        for _ in range(30):
            log.append(batch(2))
    ld.flush_all()
    assert len(ld.get("held", 0)._segments) > 1
    _crash(ld, root)
    # the log start it had checkpointed is past what recovery keeps (records deleted, then the
    # unsynced end below it lost)
    starts = read_checkpoint(root / LOG_START_CHECKPOINT)
    write_checkpoint(root / LOG_START_CHECKPOINT, {**starts, ("held", 0): 75})
    real = PartitionLog._reset_to

    def refused(self, offset):
        raise PermissionError(13, "held by another program")
    monkeypatch.setattr(PartitionLog, "_reset_to", refused)
    ld = LogDir(root, cfg())
    ld.open()                                 # before: PermissionError, no broker
    assert not ld.get("held", 0).opened and ld.get("other", 0).log_end_offset == 60
    monkeypatch.setattr(PartitionLog, "_reset_to", real)
    held = ld.get("held", 0)
    assert (held.log_start_offset, held.log_end_offset) == (75, 75)
    ld.close()
