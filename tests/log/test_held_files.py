"""A file another program holds (Windows: a virus scanner, the search indexer, a backup agent)
cannot be removed or renamed until it lets go. Found with the fault campaign's `--held-files`
(scripts/chaos.py): a follower's truncation stopped by one held segment had already closed the
segments above it, kept them in the log, and appended after them, so the records it had to cut
stayed and a hole opened below them. Now the log stays whole and contiguous at every step: a
cut that stops part way ends where the held segment ends, and goes on when asked again."""

from __future__ import annotations

import time

import pytest

from sandbox.log import LogConfig, PartitionLog, iter_records

from .logkit import batch


@pytest.fixture
def hold(windows_files, tmp_path):
    """hold(path, ...): those files are held by another program until hold() again."""
    listing = tmp_path.parent / f"{tmp_path.name}-held.txt"
    listing.write_text("")
    windows_files.held_by = str(listing)

    def set_held(*paths):
        listing.write_text("".join(f"{p}\n" for p in paths))
    return set_held


def _log(tmp_path) -> PartitionLog:
    plog = PartitionLog(tmp_path / "t-0", LogConfig(segment_bytes=300))
    for i in range(10):
        plog.append(batch(3, tag=f"b{i}", ts=int(time.time() * 1000)), leader_epoch=i // 5)
    return plog


def _offsets(plog: PartitionLog) -> list[int]:
    return [r[0] for r in iter_records(plog.read(0, 1 << 20).tobytes())]


def _refuse_writes(monkeypatch, held) -> None:
    """sandbox.log.files cannot open `held` but to read it (a holder refusing writers too), until
    monkeypatch.undo()."""
    from sandbox.log import files
    real_open = open

    def refusing_open(p, mode="r", *a, **k):
        if str(p) == str(held) and mode != "rb":
            raise PermissionError(13, "the holder refuses writes too", str(p))
        return real_open(p, mode, *a, **k)
    monkeypatch.setattr(files, "open", refusing_open, raising=False)


def test_a_truncation_stopped_by_a_held_segment_leaves_a_whole_log_and_finishes_when_asked_again(tmp_path, hold):
    plog = _log(tmp_path)
    bases = [s.base_offset for s in plog._segments]
    assert len(bases) >= 4 and plog.log_end_offset == 30
    held = plog._segments[-2]
    hold(held.log_path)
    with pytest.raises(PermissionError):
        plog.truncate_to(6)
    # the segments above the held one are gone; the held one and all below are whole and readable
    assert plog.log_end_offset == held.next_offset
    assert _offsets(plog) == list(range(plog.log_end_offset))
    assert not held.closed
    assert plog._bases == [s.base_offset for s in plog._segments]
    hold()
    plog.truncate_to(6)
    assert plog.log_end_offset == 6 and _offsets(plog) == list(range(6))
    plog.append(batch(2, tag="new"), leader_epoch=3)
    plog.close()
    again = PartitionLog(tmp_path / "t-0", LogConfig(segment_bytes=300))
    assert _offsets(again) == list(range(8))
    assert again.replica.end_offset_for_epoch(3) == (3, 8)
    again.close()


def test_retention_stopped_by_a_held_segment_keeps_a_whole_log_and_goes_on_later(tmp_path, hold):
    plog = PartitionLog(tmp_path / "t-0", LogConfig(segment_bytes=300, retention_bytes=300))
    for i in range(10):
        plog.append(batch(3, tag=f"b{i}"))
    second = plog._segments[1]
    hold(second.log_path)
    with pytest.raises(PermissionError):
        plog.housekeeping.apply_retention()
    assert plog.log_start_offset == second.base_offset      # the first went, the held one stays
    assert _offsets_from(plog) == list(range(second.base_offset, plog.log_end_offset))
    hold()
    plog.housekeeping.apply_retention()
    assert plog.log_start_offset > second.base_offset
    plog.close()


def _offsets_from(plog: PartitionLog) -> list[int]:
    return [r[0] for r in iter_records(plog.read(plog.log_start_offset, 1 << 20).tobytes())]


def test_delete_records_takes_effect_though_a_segment_is_held_and_its_file_goes_later(tmp_path, hold):
    plog = _log(tmp_path)
    first = plog._segments[0]
    hold(first.log_path)
    assert plog.delete_records_before(first.next_offset + 1) == first.next_offset + 1
    assert first.log_path.exists()                           # held: not removed yet
    hold()
    plog.housekeeping.apply_retention()                      # the next check removes it
    assert not first.log_path.exists()
    assert plog.log_start_offset == first.next_offset + 1
    plog.close()


def test_a_new_epoch_whose_file_cannot_be_saved_fails_the_append_whole(tmp_path, hold):
    plog = _log(tmp_path)
    leo = plog.log_end_offset
    hold(tmp_path / "t-0" / "leader-epoch-checkpoint")
    with pytest.raises(PermissionError):
        plog.append(batch(1, tag="e5"), leader_epoch=5)
    assert plog.log_end_offset == leo and plog.replica.latest_epoch == 1   # nothing written, epoch undone
    hold()
    plog.append(batch(1, tag="e5"), leader_epoch=5)
    plog.close()
    again = PartitionLog(tmp_path / "t-0", LogConfig(segment_bytes=300))
    assert again.replica.latest_epoch == 5 and again.replica.end_offset_for_epoch(1) == (1, leo)
    again.close()


def test_a_cut_whose_epoch_file_is_held_appends_nothing_until_the_file_says_what_the_log_holds(tmp_path, hold):
    """Found by review: cut while its leader-epoch file was held, a follower kept the old file
    (an epoch starting at 15), appended another leader's epoch-0 records from 15 on, and after a
    restart answered OffsetForLeaderEpoch for epoch 1 from a file no batch agreed with."""
    leader = PartitionLog(tmp_path / "l-0", LogConfig(segment_bytes=300))
    follower = PartitionLog(tmp_path / "t-0", LogConfig(segment_bytes=300))
    now = int(time.time() * 1000)
    for i in range(10):
        leader.append(batch(3, tag=f"l{i}", ts=now), leader_epoch=0)
        follower.append(batch(3, tag=f"f{i}", ts=now), leader_epoch=0 if i < 5 else 1)
    hold(tmp_path / "t-0" / "leader-epoch-checkpoint")
    follower.truncate_to(15)
    assert follower.log_end_offset == 15 and follower.replica.latest_epoch == 0
    theirs = leader.read(15, 1 << 20).tobytes()
    with pytest.raises(PermissionError):
        follower.replica.append(theirs)       # not before the file says the cut
    assert follower.log_end_offset == 15
    hold()
    follower.replica.append(theirs)
    assert follower.log_end_offset == 30
    follower.close()
    again = PartitionLog(tmp_path / "t-0", LogConfig(segment_bytes=300))
    assert again.replica.latest_epoch == 0 and again.replica.end_offset_for_epoch(0) == (0, 30)   # epoch 1 is gone for good
    again.close()
    leader.close()


def test_a_cut_whose_producer_snapshot_is_held_still_rebuilds_the_producer_state(tmp_path, hold):
    """Found by review: a held snapshot stopped the cut's rebuild of the producer state, which
    still knew sequences of cut batches: their resend was answered "duplicate" at offsets past
    the log end, acknowledged and never written."""
    plog = PartitionLog(tmp_path / "t-0", LogConfig(segment_bytes=300))
    now = int(time.time() * 1000)
    for i in range(10):
        plog.append(batch(3, tag=f"p{i}", ts=now, producer_id=7, producer_epoch=0, base_sequence=3 * i))
    plog.housekeeping.flush()   # a snapshot at the log end (30)
    snaps = sorted((tmp_path / "t-0").glob("*.snapshot"))
    assert snaps
    hold(*snaps)
    plog.truncate_to(12)
    assert plog.log_end_offset == 12
    again = plog.append(batch(3, tag="again", ts=now, producer_id=7, producer_epoch=0, base_sequence=12))
    assert not again.duplicate and again.first_offset == 12   # written, not taken for a duplicate
    hold()
    plog.close()
    reopened = PartitionLog(tmp_path / "t-0", LogConfig(segment_bytes=300))
    assert reopened.log_end_offset == 15
    dup = reopened.append(batch(3, tag="again", ts=now, producer_id=7, producer_epoch=0, base_sequence=12))
    assert dup.duplicate   # the state after the reopen is the log's, not the held snapshot's
    reopened.close()


def test_a_deleted_partition_whose_folder_is_held_is_never_opened_again_after_a_restart(tmp_path, hold):
    """The broker remembers a doomed folder while it runs (broker/refused_folders.py); a restart
    while the file is still held used to open the deleted partition's folder again, so a topic
    made again under that name (or put back after a replaced coordinator journal) served the
    deleted one's records. The folder now carries DELETED_MARK until it is gone."""
    from sandbox.log import LogDir
    from sandbox.partition_metadata import DELETED_MARK, folder_topic_id

    root = tmp_path / "journal"
    ld = LogDir(root, LogConfig())
    ld.open()
    plog = ld.create("t", 0)
    plog.append(batch(3, tag="old"), leader_epoch=0)
    segment = plog._segments[0].log_path
    hold(segment)
    with pytest.raises(PermissionError):
        ld.delete_partition("t", 0, retries=1)
    folder = root / "t-0"
    assert (folder / DELETED_MARK).exists()
    assert folder_topic_id(folder) is None     # names no topic to a restore
    ld.close()

    again = LogDir(root, LogConfig())
    assert ("t", 0) not in again.open()        # still held: not opened, noted for the broker
    assert again.refused_deletions == {("t", 0)}
    with pytest.raises(PermissionError):
        again.create("t", 0)                   # nor made on top of the deleted one's records
    hold()                                     # let go
    fresh = again.create("t", 0)
    assert fresh.log_end_offset == 0 and again.refused_deletions == set()
    assert not (folder / DELETED_MARK).exists()
    fresh.append(batch(2, tag="new"), leader_epoch=0)
    again.close()

    third = LogDir(root, LogConfig())
    assert third.open()[("t", 0)].log_end_offset == 2
    third.close()


def test_a_folder_marked_deleted_goes_at_the_next_start_once_let_go(tmp_path, hold):
    from sandbox.log import LogDir

    root = tmp_path / "journal"
    ld = LogDir(root, LogConfig())
    ld.open()
    ld.create("t", 0).append(batch(3, tag="old"), leader_epoch=0)
    hold(ld.get("t", 0)._segments[0].log_path)
    with pytest.raises(PermissionError):
        ld.delete_partition("t", 0, retries=1)
    ld.close()
    hold()
    again = LogDir(root, LogConfig())
    assert again.open() == {} and again.refused_deletions == set()
    assert not (root / "t-0").exists()
    assert not any(p.name.endswith("-delete") for p in root.iterdir())
    again.close()


def test_a_held_leftover_of_a_deletion_does_not_stop_the_start(tmp_path, hold):
    """A `-delete` folder left by a crash whose file another program holds used to fail open()
    (and so the broker's start) until it was let go; it is now left for the next open."""
    from sandbox.log import LogDir

    root = tmp_path / "journal"
    leftover = root / "t-0.0123abcd-delete"
    leftover.mkdir(parents=True)
    (leftover / "00000000000000000000.log").write_bytes(b"x")
    hold(leftover / "00000000000000000000.log")
    ld = LogDir(root, LogConfig())
    assert ld.open() == {}
    assert leftover.exists()
    ld.close()
    hold()
    again = LogDir(root, LogConfig())
    again.open()
    assert not leftover.exists()
    again.close()


def test_a_cut_snapshot_held_by_a_program_that_also_refuses_writes_is_never_loaded(tmp_path, hold, monkeypatch):
    """Left open last session: a held snapshot beyond a cut is emptied, but a holder that refuses
    writes too (a backup agent opening it exclusively) left its content, silently. Once the log
    grew past it again, a crash made the next open load it: the producer state of cut batches
    (here the resend of the next sequence was refused as out of order). It is now marked stale
    and skipped."""
    from sandbox.log import files

    folder = tmp_path / "t-0"
    plog = PartitionLog(folder, LogConfig(segment_bytes=1 << 20))
    now = int(time.time() * 1000)
    for i in range(10):
        plog.append(batch(3, tag=f"p{i}", ts=now, producer_id=7, producer_epoch=0, base_sequence=3 * i))
    plog.housekeeping.flush()   # a snapshot at the log end (30)
    (snap,) = folder.glob("*.snapshot")
    hold(snap)
    _refuse_writes(monkeypatch, snap)
    plog.truncate_to(12)
    monkeypatch.undo()
    assert snap.exists() and snap.stat().st_size > 0 and files.stale_mark(snap).exists()
    plog.append(batch(3, tag="again", ts=now, producer_id=7, producer_epoch=0, base_sequence=12))
    for i in range(6):                      # the log grows past the stale snapshot's offset
        plog.append(batch(3, tag=f"q{i}", ts=now, producer_id=8, producer_epoch=0, base_sequence=3 * i))
    assert plog.log_end_offset == 33
    # a crash: no snapshot at the log end is written; the next open reads what is on disk
    crashed = PartitionLog(folder, LogConfig(segment_bytes=1 << 20))
    nxt = crashed.append(batch(3, tag="next", ts=now, producer_id=7, producer_epoch=0, base_sequence=15))
    assert nxt.first_offset == 33 and not nxt.duplicate
    hold()
    crashed.close()
    plog.close()


def test_a_marker_is_not_written_while_the_index_of_cut_batches_cannot_be_emptied(tmp_path, hold, monkeypatch):
    """Found by review: refusing the index entry after the abort marker was written lost the
    entry (the transaction was closed already, so the coordinator's resend added none) and
    read_committed consumers read the aborted records. The marker's append now fails whole
    before anything is written, while the index still says what a cut removed."""
    from sandbox.log import files
    from sandbox.log.batch import ATTR_TRANSACTIONAL, build_control_batch

    folder = tmp_path / "t-0"
    now = int(time.time() * 1000)
    first = PartitionLog(folder, LogConfig(segment_bytes=1 << 20))
    first.append(batch(1, tag="x", ts=now))
    first.close()
    path = folder / "00000000000000000000.txnindex"
    path.write_bytes(b"x" * 34)            # an index of cut batches a holder kept, from a run before
    st = path.stat()
    files.stale_mark(path).write_text(f"{st.st_size} {st.st_mtime_ns}")
    plog = PartitionLog(folder, LogConfig(segment_bytes=1 << 20))
    assert plog._producers.txns.path(0) == path
    hold(f"exclusive\t{path}")
    _refuse_writes(monkeypatch, path)
    plog.append(batch(2, tag="a", ts=now, producer_id=9, producer_epoch=0, base_sequence=0,
                      attributes=ATTR_TRANSACTIONAL))
    end = plog.log_end_offset
    with pytest.raises(PermissionError):
        plog.append(build_control_batch(9, 0, False, 0, timestamp_ms=now))
    assert plog.log_end_offset == end      # nothing written
    monkeypatch.undo()
    hold()
    plog.append(build_control_batch(9, 0, False, 0, timestamp_ms=now))
    assert [e.producer_id for e in plog._producers.txns.entries] == [9]
    assert not files.stale_mark(path).exists()
    plog.close()
    again = PartitionLog(folder, LogConfig(segment_bytes=1 << 20))
    assert [(e.producer_id, e.first_offset) for e in again._producers.txns.entries] == [(9, 1)]
    again.close()


def test_a_stale_mark_naming_an_earlier_file_hides_nothing(tmp_path, hold):
    """Found by review: a mark that could not be removed (itself held) once its file was written
    anew hid the new file's entries, and the next write removed them."""
    from sandbox.log import files
    from sandbox.log.transactions import AbortedTxn, TxnIndex

    idx = TxnIndex(tmp_path)
    path = idx.path(0)
    path.write_bytes(b"old")
    st = path.stat()
    files.stale_mark(path).write_text(f"{st.st_size} {st.st_mtime_ns}")
    assert idx.files() == []               # the file the mark names: skipped
    hold(files.stale_mark(path))           # the mark itself held: it cannot be removed
    path.unlink()
    idx.add(AbortedTxn(2, 5, 9, 5), 0)     # written anew beside a mark left behind
    fresh = TxnIndex(tmp_path)
    assert fresh.load([0], 100) and fresh.entries == [AbortedTxn(2, 5, 9, 5)]
    assert files.stale_mark(path).exists()   # still there, naming a file that is gone
