"""The log's side of replication: a follower appends a leader's batches byte for byte, the
leader-epoch cache answers where an epoch ended, truncation to a divergence point (also under
Windows file rules), the high watermark kept apart from the log end and checkpointed."""

import pytest

from sandbox.log import CorruptRecordError, LogConfig, LogDir, PartitionLog, build_batch
from sandbox.log.epochs import FILE_NAME, LeaderEpochCache
from sandbox.log.manager import HW_CHECKPOINT, read_checkpoint

from .logkit import batch, offsets, values


def cfg(**kw):
    kw.setdefault("segment_bytes", 600)
    kw.setdefault("index_interval_bytes", 64)
    return LogConfig(**kw)


def leader_with(tmp_path, epochs_and_counts, name="leader") -> PartitionLog:
    log = PartitionLog(tmp_path / name, cfg())
    for i, (epoch, n) in enumerate(epochs_and_counts):
        log.append(batch(n, tag=f"{name}{i}-"), leader_epoch=epoch)
    return log


def test_follower_holds_the_leaders_bytes_offsets_and_epochs(tmp_path):
    leader = leader_with(tmp_path, [(0, 3), (0, 2), (4, 5)])
    follower = PartitionLog(tmp_path / "follower", cfg())
    follower.replica.set_replicated(True)
    pos = 0
    while pos < leader.log_end_offset:   # in fetch-sized pieces, as the fetcher does
        data = leader.read(pos, 200).tobytes()
        follower.replica.append(data)
        pos = follower.log_end_offset
    assert follower.read(0, 1 << 20).tobytes() == leader.read(0, 1 << 20).tobytes()
    assert follower.log_end_offset == leader.log_end_offset == 10
    assert follower.high_watermark == 0      # replicated: only the leader's word moves it
    assert follower.replica.latest_epoch == 4
    assert follower.replica.end_offset_for_epoch(0) == (0, 5)
    assert follower.replica.end_offset_for_epoch(3) == (0, 5)    # the largest epoch <= 3 is 0
    assert follower.replica.end_offset_for_epoch(4) == (4, 10)
    assert follower.replica.end_offset_for_epoch(9) == (-1, -1)   # newer than any: Kafka's UNDEFINED


def test_a_batch_before_the_log_end_is_refused_and_one_past_it_taken_as_a_compacted_gap(tmp_path):
    """As Kafka's follower: a batch overlapping what the log holds is refused; one starting past
    the log end is taken (compaction removed what the leader had between)."""
    leader = leader_with(tmp_path, [(0, 3), (0, 3)])
    follower = PartitionLog(tmp_path / "follower", cfg())
    damaged = bytearray(leader.read(0, 1).tobytes())
    damaged[-1] ^= 0xFF
    with pytest.raises(CorruptRecordError):
        follower.replica.append(bytes(damaged))
    assert follower.log_end_offset == 0
    second = leader.read(3, 1).tobytes()
    assert follower.replica.append(second) == 6
    with pytest.raises(CorruptRecordError):
        follower.replica.append(leader.read(0, 1).tobytes())
    assert follower.log_end_offset == 6


def test_divergent_tail_is_cut_where_the_new_leaders_epoch_ends(tmp_path):
    # old leader wrote 0-4 in epoch 0 and 5-7 in epoch 1 that nobody replicated; the new leader
    # (epoch 2) has 0-4 and then its own 5-9
    old = leader_with(tmp_path, [(0, 5), (1, 3)], "old")
    new = PartitionLog(tmp_path / "new", cfg())
    new.replica.append(old.read(0, 1 << 20, max_offset=5).tobytes())
    new.replica.begin_epoch(2)
    new.append(batch(5, tag="new"), leader_epoch=2)
    epoch, end = new.replica.end_offset_for_epoch(old.replica.latest_epoch)
    assert (epoch, end) == (0, 5)            # the new leader never saw epoch 1
    target = min(end, old.replica.end_offset_for_epoch(epoch)[1], old.log_end_offset)
    old.truncate_to(target)
    assert old.log_end_offset == 5 and old.replica.latest_epoch == 0
    old.replica.append(new.read(5, 1 << 20).tobytes())
    assert old.read(0, 1 << 20).tobytes() == new.read(0, 1 << 20).tobytes()
    assert values(old.read(5, 1 << 20).tobytes())[0] == b"value-new-0"


def test_epoch_cache_survives_reopen_and_is_rebuilt_when_missing(tmp_path):
    log = leader_with(tmp_path, [(0, 2), (3, 2), (5, 2)])
    entries = list(log._epochs.entries)
    log.close()
    again = PartitionLog(tmp_path / "leader", cfg())
    assert again._epochs.entries == entries == [(0, 0), (3, 2), (5, 4)]
    again.close()
    (tmp_path / "leader" / FILE_NAME).unlink()
    rebuilt = PartitionLog(tmp_path / "leader", cfg())
    assert rebuilt._epochs.entries == entries
    assert (tmp_path / "leader" / FILE_NAME).read_text().split() == ["0", "3", "0", "0", "3", "2", "5", "4"]


def test_damaged_epoch_file_reads_as_empty_and_is_rebuilt(tmp_path):
    log = leader_with(tmp_path, [(0, 2), (2, 2)])
    log.close()
    (tmp_path / "leader" / FILE_NAME).write_text("0\n2\n0 0\n")   # count says 2, one entry
    assert LeaderEpochCache(tmp_path / "leader").entries == []
    assert PartitionLog(tmp_path / "leader", cfg())._epochs.entries == [(0, 0), (2, 2)]


def test_an_epoch_that_wrote_nothing_gives_way_to_the_next(tmp_path):
    cache = LeaderEpochCache(tmp_path)
    cache.assign(1, 10)
    cache.assign(2, 10)     # epoch 1 led but wrote nothing
    cache.assign(2, 12)     # not newer: ignored
    assert cache.entries == [(2, 10)]
    # older than every epoch known: it ended where the first known began (Kafka's endOffsetFor)
    assert cache.end_offset_for(1, 20) == (1, 10) and cache.end_offset_for(0, 20) == (0, 10)
    assert cache.end_offset_for(-1, 20) == (-1, -1) and cache.end_offset_for(3, 20) == (-1, -1)


def test_epoch_for_offset_is_the_epoch_that_wrote_it(tmp_path):
    """Kafka's LeaderEpochFileCache.epochForOffset: the latest epoch starting at or before the
    offset; -1 before every known epoch (or with none known)."""
    cache = LeaderEpochCache(tmp_path)
    assert cache.epoch_for_offset(0) == -1
    cache.assign(2, 5)
    cache.assign(4, 10)
    assert [cache.epoch_for_offset(o) for o in (4, 5, 9, 10, 11, 1 << 40)] == [-1, 2, 2, 4, 4, 4]
    log = PartitionLog(tmp_path / "p", LogConfig())
    log.append(build_batch([(None, b"a")] * 2), leader_epoch=1)
    log.append(build_batch([(None, b"b")]), leader_epoch=3)
    assert [log.replica.epoch_for_offset(o) for o in range(4)] == [1, 1, 3, 3]
    log.close()


def test_high_watermark_apart_from_the_log_end_and_checkpointed(tmp_path):
    ld = LogDir(tmp_path, cfg())
    ld.open()
    log = ld.create("t", 0)
    log.replica.set_replicated(True)
    log.append(batch(4), leader_epoch=0)
    assert (log.log_end_offset, log.high_watermark) == (4, 0)
    log.replica.high_watermark = 3
    log.replica.high_watermark = 99                  # clamped to the log end
    assert log.high_watermark == 4
    log.replica.high_watermark = 3
    ld.close()
    assert read_checkpoint(tmp_path / HW_CHECKPOINT) == {("t", 0): 3}
    ld = LogDir(tmp_path, cfg())
    logs = ld.open()
    again = logs[("t", 0)]
    assert again.high_watermark == 3         # a restarted replica shows no more than was committed
    again.replica.set_replicated(False)              # one replica after all: everything is committed
    assert again.high_watermark == 4
    ld.close()


@pytest.mark.parametrize("lost", ["deleted", "damaged"])
def test_a_replicated_log_without_its_checkpointed_high_watermark_starts_from_its_log_start(tmp_path, lost):
    """The checkpoint file lost or damaged: a replicated partition shows consumers nothing until
    its replicas confirm again (as Kafka's, from 0), where it showed its whole log, records no
    other replica had included. A partition never replicated, or one reassigned later, keeps its
    log end."""
    ld = LogDir(tmp_path, cfg())
    ld.open()
    for i in range(3):
        log = ld.create("t", i)
        for _ in range(1 if i == 2 else 5):   # partitions 0, 1: several segments, opened at once;
            log.append(batch(1), leader_epoch=0)  # partition 2: one segment, opened at its first use
        if i != 2:
            log.housekeeping.roll()
        log.replica.set_replicated(True)
        log.replica.high_watermark = 2                     # records 2..4 on this replica only
    ld.close()
    path = tmp_path / HW_CHECKPOINT
    if lost == "deleted":
        path.unlink()
    else:
        path.write_bytes(b"0\n3\nt 0 x\n\x00")
    ld = LogDir(tmp_path, cfg())
    logs = ld.open()
    replicated, single, lazy = logs[("t", 0)], logs[("t", 1)], logs[("t", 2)]
    assert replicated.opened and single.opened and not lazy.opened
    lazy.replica.set_replicated(True)                      # told before its first use
    replicated.replica.set_replicated(True)
    single.replica.set_replicated(False)                   # the metadata says: one replica
    assert replicated.high_watermark == 0 and replicated.log_end_offset == 5
    assert lazy.high_watermark == 0 and lazy.log_end_offset == 1
    assert single.high_watermark == 5
    single.replica.set_replicated(True)                    # a reassignment adds replicas later
    assert single.high_watermark == 5                      # its committed records stay visible
    replicated.replica.high_watermark = 5                  # the replicas confirmed
    assert replicated.high_watermark == 5
    ld.close()
    (tmp_path / HW_CHECKPOINT).unlink()
    ld = LogDir(tmp_path, cfg())
    lazy = ld.open()[("t", 2)]
    assert not lazy.opened
    lazy.replica.set_replicated(False)   # the metadata says one replica before its first use
    assert not lazy.opened               # (saying so does not open it)
    lazy.replica.set_replicated(True)    # then a reassignment adds replicas, before its first use
    assert lazy.high_watermark == 1 and lazy.log_end_offset == 1   # its committed record stays visible
    ld.close()


def test_checkpoints_written_before_the_metadata_settles_a_log_keep_its_high_watermark(tmp_path):
    """Found by review: a checkpoint written in the first second after a restart, before the
    metadata said which partitions are replicated (or while a destroyed coordinator journal is
    put back), dropped their entries, and the next start took them from their log start."""
    ld = LogDir(tmp_path, cfg())
    ld.open()
    for i in range(2):
        log = ld.create("r", i)
        for _ in range(1 if i else 4):   # r-0: several segments (opened at start), r-1: one (lazily)
            log.append(batch(1), leader_epoch=0)
        if not i:
            log.housekeeping.roll()
        log.replica.set_replicated(True)
        log.replica.high_watermark = 1
    plain = ld.create("p", 0)            # never replicated: no entry, now or later
    plain.append(batch(2), leader_epoch=0)
    ld.close()
    assert read_checkpoint(tmp_path / HW_CHECKPOINT) == {("r", 0): 1, ("r", 1): 1}
    ld = LogDir(tmp_path, cfg())
    ld.open()
    ld.checkpoint()                       # nothing settled yet
    assert read_checkpoint(tmp_path / HW_CHECKPOINT) == {("r", 0): 1, ("r", 1): 1}
    ld.close()
    ld = LogDir(tmp_path, cfg())
    logs = ld.open()
    for key in (("r", 0), ("r", 1)):
        logs[key].replica.set_replicated(True)
        assert logs[key].high_watermark == 1, key
    logs[("p", 0)].replica.set_replicated(False)
    assert logs[("p", 0)].high_watermark == 2
    ld.close()


def test_reset_to_starts_an_empty_log_at_the_leaders_log_start(tmp_path):
    log = leader_with(tmp_path, [(0, 3)])
    log.replica.reset_to(50)
    assert (log.log_start_offset, log.log_end_offset, log.replica.latest_epoch) == (50, 50, -1)
    src = PartitionLog(tmp_path / "src", cfg())
    src.replica.reset_to(50)
    src.append(batch(2, tag="x"), leader_epoch=7)
    log.replica.append(src.read(50, 1 << 20).tobytes())
    assert offsets(log.read(50, 1 << 20).tobytes()) == [50, 51] and log.replica.latest_epoch == 7


def test_follower_truncation_under_windows_file_rules(tmp_path, windows_files):
    """Truncating across rolled segments deletes whole segment files: every handle is closed
    first, so Windows' no-delete-while-open rule holds (the fixture raises otherwise)."""
    log = leader_with(tmp_path, [(0, 4)] * 6 + [(1, 4)] * 4)
    assert log.housekeeping.segment_count > 3
    log.truncate_to(9)
    assert log.log_end_offset == 8           # the batch holding offset 9 goes whole
    assert log.replica.latest_epoch == 0
    src = leader_with(tmp_path, [(0, 4)] * 2 + [(2, 4)] * 3, "src2")
    log.replica.append(src.read(8, 1 << 20).tobytes())
    assert offsets(log.read(8, 1 << 20).tobytes()) == list(range(8, 20))
    log.replica.reset_to(100)
    log.close()
    reopened = PartitionLog(tmp_path / "leader", cfg())
    assert (reopened.log_start_offset, reopened.log_end_offset) == (100, 100)


def test_an_epoch_below_the_logs_restarts_the_history(tmp_path):
    """The coordinator's journal was destroyed and its topics re-created: leader epochs count
    from 0 again. The old epochs mean nothing then: the leader's cache starts over, so a follower
    asking about the new epoch learns the leader's log end."""
    log = leader_with(tmp_path, [(3, 2), (5, 2)])
    log.replica.begin_epoch(0)
    assert log._epochs.entries == [(0, 0)] and log.replica.latest_epoch == 0
    assert log.replica.end_offset_for_epoch(0) == (0, 4)
    log.append(batch(1), leader_epoch=0)
    assert log.replica.end_offset_for_epoch(0) == (0, 5)
    log.replica.begin_epoch(1)                     # a normal failover afterwards
    assert log._epochs.entries == [(0, 0), (1, 5)]


def test_retention_never_deletes_records_above_the_high_watermark(tmp_path):
    """A replicated leader whose followers lag: closed segments past retention.ms (old CreateTime
    timestamps) but above the high watermark stay until they are committed, as Kafka bounds the
    deletable segments by the high watermark. Found by review: the log start went to 18 with the
    high watermark at 3, deleting records no follower had (a fetch at the high watermark was then
    out of range)."""
    from sandbox.log import build_batch
    log = PartitionLog(tmp_path / "t-0", LogConfig(segment_bytes=300, index_interval_bytes=64, retention_ms=1000))
    log.replica.set_replicated(True)
    for _ in range(20):
        log.append(build_batch([(None, b"x" * 40)], timestamp_ms=1_000))
    log.replica.high_watermark = 3
    assert log.housekeeping.segment_count > 2
    log.housekeeping.apply_retention(now_ms=10_000_000)
    assert 0 < log.log_start_offset <= 3   # what is committed and old may go
    log.replica.high_watermark = log.log_end_offset
    log.housekeeping.apply_retention(now_ms=10_000_000)
    assert log.log_start_offset > 3        # once committed, the rest goes too
