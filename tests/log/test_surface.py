"""The partition log's public surface stays small (a few verbs and read-only properties; replication
and housekeeping behind `log.replica` and `log.housekeeping`), and both facets work on a log that
LogDir left unopened: they open it when they need its data, and housekeeping's timer verbs don't."""

from sandbox.log import LogConfig, LogDir, PartitionLog
from sandbox.log.housekeeping import Housekeeping
from sandbox.log.lazy import UnopenedPartitionLog
from sandbox.log.replica_view import ReplicaView

from .logkit import batch, offsets

VERBS = {"append", "read", "offset_for_timestamp", "truncate_to", "delete_records_before", "close",
         "append_marker", "aborted_transactions", "in_transaction"}   # the last three: transactions
# (markers, read_committed, whether a transactional write needs its coordinator's confirmation)
PROPERTIES = {"config", "log_start_offset", "log_end_offset", "high_watermark", "recovery_point",
              "size_bytes", "opened", "hw_follows_leo", "last_stable_offset", "roll_sync",
              "topic_id",                # its folder's partition.metadata, kept by LogDir
              "on_recovery_lowered"}     # LogDir writes the recovery-point file at a cut
FACETS = {"replica", "housekeeping"}


def public(cls) -> set[str]:
    return {n for n in dir(cls) if not n.startswith("_")}


def test_the_partition_log_exposes_a_few_verbs_properties_and_two_facets():
    # a new public name here is a decision: add it to the right set (or to a facet) on purpose
    assert public(PartitionLog) == VERBS | PROPERTIES | FACETS
    assert public(UnopenedPartitionLog) == public(PartitionLog) | {"open_now"}
    assert public(ReplicaView) == {"append", "reset_to", "set_replicated", "high_watermark", "latest_epoch",
                                   "end_offset_for_epoch", "begin_epoch", "restart_epochs",
                                   "follow_log_start", "forget_epochs_from", "epoch_for_offset"}   # the
    # last three: a follower taking its leader's log start, KIP-279's truncation in several rounds,
    # and the epoch ListOffsets' earliest answers (Kafka's epochForOffset)
    assert public(Housekeeping) == {"apply_retention", "flush", "sync", "sync_handles", "segment_synced", "dirty", "roll", "checkpoint_offsets", "delete",
                                    "active_producers", "open_transactions", "segment_count", "segment_paths",
                                    "expire_producers"}
    for name in PROPERTIES - {"opened", "hw_follows_leo", "roll_sync", "topic_id", "on_recovery_lowered"}:
        prop = getattr(PartitionLog, name)
        assert isinstance(prop, property) and (prop.fset is None or name == "config"), name


def cfg(**kw):
    kw.setdefault("segment_bytes", 1 << 20)
    kw.setdefault("index_interval_bytes", 128)
    return LogConfig(**kw)


def unopened(tmp_path, *epochs: int) -> tuple[LogDir, PartitionLog]:
    """A log of one segment holding a batch of 2 records per leader epoch, reopened by LogDir:
    it stays unopened until its first use."""
    ld = LogDir(tmp_path, cfg())
    ld.open()
    log = ld.create("t", 0)
    for i, e in enumerate(epochs):
        log.append(batch(2, tag=f"e{e}-", producer_id=9, producer_epoch=0, base_sequence=2 * i), leader_epoch=e)
    ld.close()
    ld = LogDir(tmp_path, cfg())
    log = ld.open()[("t", 0)]
    assert isinstance(log, UnopenedPartitionLog) and not log.opened
    return ld, log


def test_replica_facet_opens_an_unopened_log(tmp_path):
    ld, log = unopened(tmp_path / "a", 0, 3)
    assert log.replica.latest_epoch == 3 and log.opened
    ld.close()

    ld, log = unopened(tmp_path / "b", 0, 3)
    assert log.replica.end_offset_for_epoch(0) == (0, 2) and log.opened
    ld.close()

    ld, log = unopened(tmp_path / "c", 0)
    leader = PartitionLog(tmp_path / "leader", cfg())
    leader.append(batch(2), leader_epoch=0)
    leader.append(batch(3), leader_epoch=5)
    assert log.replica.append(leader.read(2, 1 << 20).tobytes()) == 5 and log.opened
    assert offsets(log.read(0, 1 << 20).tobytes()) == [0, 1, 2, 3, 4] and log.replica.latest_epoch == 5
    leader.close()
    ld.close()

    ld, log = unopened(tmp_path / "d", 0)
    log.replica.set_replicated(True)         # only a flag: nothing to read yet
    assert not log.opened
    log.replica.high_watermark = 1
    assert log.opened and log.high_watermark == 1 and log.log_end_offset == 2
    ld.close()

    ld, log = unopened(tmp_path / "e", 0)
    log.replica.begin_epoch(4)
    assert log.opened and log.replica.end_offset_for_epoch(4) == (4, 2)
    ld.close()

    ld, log = unopened(tmp_path / "f", 0, 3)
    log.replica.restart_epochs(1)
    assert log.opened and log.replica.latest_epoch == 1
    ld.close()

    ld, log = unopened(tmp_path / "g", 0)
    log.replica.reset_to(40)
    assert log.opened and (log.log_start_offset, log.log_end_offset, log.high_watermark) == (40, 40, 40)
    ld.close()


def test_housekeeping_facet_on_an_unopened_log(tmp_path):
    ld, log = unopened(tmp_path / "a", 0)
    hk = log.housekeeping
    # the timers' verbs answer without opening (no handle, no scan for an idle partition whose
    # segment is not past retention: test_lazy_open has one that is)
    assert hk.apply_retention(int(__import__("time").time() * 1000)) == 0 and not hk.flush() and not hk.flush(10**13, if_due=True)
    assert not hk.dirty and hk.checkpoint_offsets() == (2, 0)
    assert not log.opened
    # the rest opens it
    assert [p for p, *_ in hk.active_producers()] == [9] and log.opened
    ld.close()

    ld, log = unopened(tmp_path / "b", 0)
    assert log.housekeeping.segment_count == 1 and log.opened
    ld.close()

    ld, log = unopened(tmp_path / "c", 0)
    assert [p.name for p in log.housekeeping.segment_paths()] == ["00000000000000000000.log"] and log.opened
    ld.close()

    ld, log = unopened(tmp_path / "d", 0)
    log.housekeeping.roll()
    assert log.opened and log.housekeeping.segment_count == 2
    log.append(batch(1))
    assert log.housekeeping.dirty and log.housekeeping.flush() and not log.housekeeping.dirty
    assert log.housekeeping.checkpoint_offsets() == (3, 0)
    ld.close()

    ld, log = unopened(tmp_path / "e", 0)
    log.housekeeping.delete()
    assert not (tmp_path / "e" / "t-0").exists()
