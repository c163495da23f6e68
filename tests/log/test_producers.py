"""Idempotent producers: duplicates get their original offsets, sequence and epoch checks, restarts."""
import pytest

from sandbox.log import InvalidProducerEpochError, InvalidTxnStateError, LogConfig, OutOfOrderSequenceError, PartitionLog
from sandbox.log.batch import ATTR_TRANSACTIONAL
from sandbox.log.producers import INT32_MAX, last_sequence

from .logkit import batch, offsets


def pbatch(seq, n=2, pid=42, epoch=0, tag="p"):
    return batch(n, tag=f"{tag}{seq}", producer_id=pid, producer_epoch=epoch, base_sequence=seq)


@pytest.fixture
def log(tmp_path):
    lg = PartitionLog(tmp_path / "idem-0", LogConfig(segment_bytes=2048, index_interval_bytes=128))
    yield lg
    lg.close()


def test_duplicate_returns_original_offsets(log):
    log.append(batch(3))
    first = log.append(pbatch(0))
    log.append(pbatch(2))
    log.append(batch(1))
    size = log.size_bytes
    dup = log.append(pbatch(0))
    assert dup.duplicate and (dup.first_offset, dup.last_offset) == (first.first_offset, first.last_offset) == (3, 4)
    assert log.size_bytes == size and log.log_end_offset == 8


def test_only_last_five_batches_cached(log):
    infos = [log.append(pbatch(2 * i)) for i in range(7)]
    assert log.append(pbatch(4)).duplicate  # 3rd of 7: still among the last 5
    with pytest.raises(OutOfOrderSequenceError):
        log.append(pbatch(0))  # evicted: no longer recognised, and out of order
    assert infos


def test_sequence_gap_rejected(log):
    log.append(pbatch(0))
    with pytest.raises(OutOfOrderSequenceError):
        log.append(pbatch(5))
    assert log.append(pbatch(2)).first_offset == 2


def test_epochs(log):
    log.append(pbatch(0, epoch=1))
    with pytest.raises(InvalidProducerEpochError):
        log.append(pbatch(2, epoch=0))
    with pytest.raises(OutOfOrderSequenceError):
        log.append(pbatch(7, epoch=2))  # a new epoch must start at 0
    assert not log.append(pbatch(0, epoch=2)).duplicate


def test_unknown_producer_any_sequence_and_independent_producers(log):
    log.append(pbatch(100, pid=1))
    log.append(pbatch(0, pid=2))
    log.append(pbatch(102, pid=1))
    with pytest.raises(OutOfOrderSequenceError):
        log.append(pbatch(5, pid=2))


def test_sequence_wraps(log):
    assert last_sequence(INT32_MAX - 1, 3) == 1
    log.append(pbatch(INT32_MAX - 1, n=2))
    assert not log.append(pbatch(0, n=2)).duplicate
    assert log.append(pbatch(0, n=2)).duplicate


def test_non_idempotent_batches_never_deduplicated(log):
    log.append(batch(1))
    assert not log.append(batch(1)).duplicate
    assert log.log_end_offset == 2


def test_state_survives_reopen_via_snapshot(tmp_path):
    d = tmp_path / "idem-0"
    log = PartitionLog(d, LogConfig())
    log.append(pbatch(0))
    log.append(pbatch(2))
    log.close()
    assert list(d.glob("*.snapshot"))
    log = PartitionLog(d, LogConfig(), recovery_point=4)
    dup = log.append(pbatch(2))
    assert dup.duplicate and dup.first_offset == 2
    with pytest.raises(OutOfOrderSequenceError):
        log.append(pbatch(9))
    log.close()


def test_state_rebuilt_without_snapshot_from_headers(tmp_path):
    d = tmp_path / "idem-0"
    log = PartitionLog(d, LogConfig(segment_bytes=400))
    for s in range(0, 20, 2):
        log.append(pbatch(s))
    log.housekeeping.flush()
    log.append(pbatch(20))  # after the snapshot: found by the header scan
    log._segments[-1].fsync()
    for seg in log._segments:
        seg.close()  # crash: no close(), no snapshot for the last batch
    log = PartitionLog(d, LogConfig(segment_bytes=400))
    assert log.append(pbatch(20)).duplicate
    assert log.append(pbatch(18)).duplicate
    for p in d.glob("*.snapshot"):
        p.unlink()
    log.close()
    for p in d.glob("*.snapshot"):
        p.unlink()
    log = PartitionLog(d, LogConfig(segment_bytes=400))
    assert log.append(pbatch(16)).first_offset == 16
    assert log.append(pbatch(22)).first_offset == 22
    log.close()


def test_truncate_resets_producer_state(log):
    log.append(pbatch(0))
    log.append(pbatch(2))
    log.truncate_to(2)
    assert log.append(pbatch(2)).first_offset == 2 and log.log_end_offset == 4
    assert offsets(log.read(0, 1 << 20).tobytes()) == [0, 1, 2, 3]


def test_store_snapshots_cut_and_reset(tmp_path):
    """ProducerStore on its own: one snapshot file per flush (the older ones go), a cut rebuilds
    from the batches and leaves one snapshot, of the new log end; a reset leaves nothing."""
    from sandbox.log.producers import ProducerStore

    lg = PartitionLog(tmp_path / "st-0", LogConfig(segment_bytes=2048, index_interval_bytes=128))
    lg.append(pbatch(0))
    lg.housekeeping.flush()
    lg.append(pbatch(2, pid=7))
    lg.housekeeping.flush()
    store = ProducerStore(lg.directory)
    assert [off for off, _p in store.snapshots()] == [4]
    assert not store.needs_snapshot(4, True) and store.needs_snapshot(3, True) and not store.needs_snapshot(3, False)
    store.load(lg._segments, 4)
    assert [p for p, *_ in store.active()] == [7, 42]
    store.truncated(lg._segments[:1], 4)          # rebuilt and written again as the one snapshot
    assert [off for off, _p in store.snapshots()] == [4]
    lg.truncate_to(2)                             # the log's own store follows its cut
    assert [off for off, _p in lg._producers.snapshots()] == [2]
    assert [p for p, *_ in lg.housekeeping.active_producers()] == [42]
    store.reset()
    assert store.snapshots() == [] and store.active() == []
    lg.close()


def tbatch(seq, n=1, pid=42, epoch=0):
    return batch(n, tag=f"t{seq}", producer_id=pid, producer_epoch=epoch, base_sequence=seq,
                 attributes=ATTR_TRANSACTIONAL)


@pytest.mark.parametrize("how", ["marker alone", "bumped by a marker"])
def test_a_producer_whose_epoch_a_marker_set_here_starts_that_epoch_at_sequence_0(log, how):
    """Kafka's checkSequence: a known producer's first batch of an epoch is sequence 0 (only an
    unknown one may start anywhere). A later batch that overtook the first is refused, so the
    client sends them in order, rather than written ahead of it."""
    if how == "bumped by a marker":
        log.append(tbatch(0, pid=42, epoch=0))
        log.append_marker(42, 1, False, 0)   # the coordinator aborted it with a bumped epoch
        epoch = 1
    else:
        log.append_marker(42, 0, True, 0)    # a transaction that added this partition and wrote nothing here
        epoch = 0
    end = log.log_end_offset
    with pytest.raises(OutOfOrderSequenceError) as e:
        log.append(tbatch(3, epoch=epoch))
    assert e.value.expected == 0 and log.log_end_offset == end
    assert log.append(tbatch(0, epoch=epoch)).first_offset == end
    assert log.append(tbatch(1, epoch=epoch)).first_offset == end + 1


def test_a_plain_batch_while_the_producer_has_a_transaction_open_here_is_refused(log):
    log.append(tbatch(0))
    end = log.log_end_offset
    with pytest.raises(InvalidTxnStateError):
        log.append(pbatch(1, n=1))
    assert log.log_end_offset == end
    log.append_marker(42, 0, True, 0)
    assert not log.append(pbatch(1, n=1)).duplicate   # its transaction ended: written


@pytest.mark.parametrize("doc", [
    {"offset": 4, "producers": [], "open_txns": {}},
    {"offset": 4, "producers": {"42": {"epoch": 0, "batches": [[0, 1, 0]]}}},
    {"offset": 4, "producers": {"42": {"epoch": 0, "batches": [[0, 1, 0, 1]]}}, "open_txns": [1, 2]},
])
def test_a_snapshot_of_another_shape_is_skipped_and_the_state_rebuilt(tmp_path, doc):
    import json
    d = tmp_path / "idem-0"
    log = PartitionLog(d, LogConfig())
    log.append(pbatch(0))
    log.append(pbatch(2))
    log.close()
    (snap,) = d.glob("*.snapshot")
    snap.write_text(json.dumps(doc))
    log = PartitionLog(d, LogConfig(), recovery_point=4)
    assert log.append(pbatch(2)).duplicate
    assert log.append(pbatch(4)).first_offset == 4
    log.close()


@pytest.mark.parametrize("ending", ["committed", "aborted"])
def test_compaction_keeps_a_producers_last_batch_so_state_rebuilt_without_a_snapshot_knows_its_sequence(
        tmp_path, ending):
    """As Kafka's cleaner (RETAIN_EMPTY): a transactional producer's only batch here, its key
    written over since (or its transaction aborted), loses its records but stays, empty.
    Removed, the state rebuilt from the log (no usable snapshot: a damaged index, a crash) knew
    the producer from its marker alone, at its epoch with no sequence, and refused its next
    batch (sequence 1) as out of order."""
    from sandbox.log.batch import iter_batches
    from sandbox.log.compactor import Compactor

    from .logkit import Clock
    clock = Clock()
    d = tmp_path / "c-0"
    cfg = LogConfig(cleanup_policy="compact", min_compaction_lag_ms=0, segment_bytes=1 << 20)
    log = PartitionLog(d, cfg, clock=clock)
    log.append(batch(1, tag="a", producer_id=7, producer_epoch=0, base_sequence=0, attributes=ATTR_TRANSACTIONAL))
    log.append_marker(7, 0, ending == "committed", 0)
    log.append(batch(1, tag="a"))          # the same key, written over by a plain producer
    log.housekeeping.roll()
    c = Compactor(log)
    while c.step(clock.ms()):
        pass
    assert c.last_result is not None
    data = log.read(0, 1 << 20).tobytes()
    first = next(h for _p, h in iter_batches(data))
    assert (first.base_offset, first.producer_id, first.base_sequence, first.records_count) == (0, 7, 0, 0)
    assert offsets(data) == [1, 2]          # its record is gone: the marker and the later value are left
    clock.advance_ms(1_000)                  # cleaned again while still the producer's last:
    log.housekeeping.roll()                  # left as it is, no segment rewritten
    c = Compactor(log)
    while c.step(clock.ms()):
        pass
    assert c.last_result is not None and not c.last_result.outputs
    log.close()
    for p in d.glob("*.snapshot"):
        p.unlink()
    again = PartitionLog(d, cfg, clock=clock)
    nxt = batch(1, tag="b", producer_id=7, producer_epoch=0, base_sequence=1, attributes=ATTR_TRANSACTIONAL)
    assert again.append(nxt).first_offset == again.log_end_offset - 1
    # a follower copies the emptied batch as it is
    follower = PartitionLog(tmp_path / "f-0", cfg, clock=clock)
    follower.replica.append(again.read(0, 1 << 20).tobytes())
    assert follower.log_end_offset == again.log_end_offset
    follower.close()
    # the producer wrote again: no longer its last, the empty batch goes (Kafka's DELETE_EMPTY)
    again.housekeeping.roll()
    c = Compactor(again)
    while c.step(clock.ms()):
        pass
    data = again.read(0, 1 << 20).tobytes()
    assert [h.records_count for _p, h in iter_batches(data) if h.producer_id == 7 and not h.is_control] == [1]
    again.close()
