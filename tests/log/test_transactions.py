"""Transactions in the partition log: open transactions hold the last stable offset, markers end
them, aborted ones are indexed per segment (`.txnindex`) and survive restarts, crashes, damage,
truncation, retention and compaction; a read_committed reader never sees aborted or open data."""

import struct

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from sandbox.log import LogConfig, PartitionLog, build_batch, iter_records
from sandbox.log.batch import (
    ATTR_TRANSACTIONAL, CONTROL_ABORT, CONTROL_COMMIT, build_control_batch, control_type, iter_batches, parse_header,
)
from sandbox.log.compactor import Compactor
from sandbox.log.errors import InvalidProducerEpochError, TransactionCoordinatorFencedError
from sandbox.protocol.records import decode_batches

from .logkit import Clock


def cfg(**kw):
    kw.setdefault("segment_bytes", 400)
    kw.setdefault("index_interval_bytes", 64)
    return LogConfig(**kw)


def txn_batch(pid, values, epoch=0, seq=0, keys=None):
    recs = [((keys[i] if keys else None), v) for i, v in enumerate(values)]
    return build_batch(recs, producer_id=pid, producer_epoch=epoch, base_sequence=seq,
                       attributes=ATTR_TRANSACTIONAL, timestamp_ms=1_000)


def plain(values, keys=None):
    return build_batch([((keys[i] if keys else None), v) for i, v in enumerate(values)], timestamp_ms=1_000)


def read_committed(log):
    """Every value a read_committed consumer gets, fetching in small pieces up to the LSO."""
    out, offset, lso = [], log.log_start_offset, log.last_stable_offset
    while offset < lso:
        data = log.read(offset, 150, max_offset=lso).tobytes()
        if not data:
            break
        last = offset
        for _pos, h in iter_batches(data):
            last = h.next_offset
        # what a read_committed consumer keeps: Kafka's algorithm, as the sandbox's own client runs it
        out += [r.value for r in decode_batches(data, aborted=log.aborted_transactions(offset, last))
                if r.offset >= offset]
        offset = last
    return out


def _without_control(data):
    return b"".join(bytes(data[p:p + h.size]) for p, h in iter_batches(data) if not h.is_control)


def test_an_open_transaction_holds_the_lso_until_its_marker(tmp_path):
    log = PartitionLog(tmp_path / "p", cfg())
    log.append(plain([b"a"]))
    first = log.append(txn_batch(7, [b"t1", b"t2"])).first_offset
    log.append(plain([b"b"]))
    assert log.last_stable_offset == first == 1
    assert log.housekeeping.open_transactions() == [(7, 0, 1)]
    assert read_committed(log) == [b"a"]
    info = log.append_marker(7, 0, True, coordinator_epoch=3)
    assert log.last_stable_offset == log.high_watermark == log.log_end_offset == info.last_offset + 1
    assert log.housekeeping.open_transactions() == []
    assert read_committed(log) == [b"a", b"t1", b"t2", b"b"]
    data = log.read(info.first_offset, 1000).tobytes()
    h = parse_header(data)
    assert h.is_control and h.is_transactional and h.producer_id == 7 and h.base_sequence == -1
    assert control_type(data, 0, h) == CONTROL_COMMIT


def test_aborted_data_is_listed_and_skipped(tmp_path):
    log = PartitionLog(tmp_path / "p", cfg())
    log.append(txn_batch(1, [b"x1"]))
    log.append(txn_batch(2, [b"y1"]))
    log.append(txn_batch(1, [b"x2"], seq=1))
    log.append_marker(1, 0, False, 0)
    log.append_marker(2, 0, True, 0)
    assert log.aborted_transactions(0, log.log_end_offset) == [(1, 0)]
    assert log.aborted_transactions(3, log.log_end_offset) == [(1, 0)]   # the marker is at 3
    assert log.aborted_transactions(4, log.log_end_offset) == []
    assert read_committed(log) == [b"y1"]
    data = log.read(0, 10_000).tobytes()
    kinds = [control_type(data, p, h) for p, h in iter_batches(data) if h.is_control]
    assert kinds == [CONTROL_ABORT, CONTROL_COMMIT]


def test_a_marker_from_an_older_epoch_is_refused_and_a_bumped_one_ends_the_transaction(tmp_path):
    log = PartitionLog(tmp_path / "p", cfg())
    log.append(txn_batch(5, [b"v"], epoch=2))
    with pytest.raises(InvalidProducerEpochError):
        log.append_marker(5, 1, True, 0)
    log.append_marker(5, 3, False, 0)   # the coordinator aborted a timed-out transaction, epoch bumped
    assert log.housekeeping.open_transactions() == [] and log.aborted_transactions(0, 10) == [(5, 0)]


def test_a_marker_where_the_producer_wrote_nothing_changes_nothing(tmp_path):
    log = PartitionLog(tmp_path / "p", cfg())
    log.append(plain([b"a"]))
    log.append_marker(9, 0, False, 0)
    assert log.aborted_transactions(0, 10) == [] and log.last_stable_offset == 2


def test_replicated_lso_waits_for_the_high_watermark_to_pass_the_marker(tmp_path):
    log = PartitionLog(tmp_path / "p", cfg())
    log.replica.set_replicated(True)
    log.append(txn_batch(1, [b"x"]))
    log.append_marker(1, 0, True, 0)
    assert log.last_stable_offset == 0          # nothing replicated yet
    log.replica.high_watermark = 1                       # the data, not the marker
    assert log.last_stable_offset == 0
    log.replica.high_watermark = 2
    assert log.last_stable_offset == 2


def test_a_follower_tracks_the_same_transactions(tmp_path):
    leader = PartitionLog(tmp_path / "l", cfg())
    leader.append(txn_batch(1, [b"x"]))
    leader.append(txn_batch(2, [b"y"]))
    leader.append_marker(1, 0, False, 0)
    follower = PartitionLog(tmp_path / "f", cfg())
    follower.replica.set_replicated(True)
    follower.replica.append(leader.read(0, 1 << 20).tobytes())
    follower.replica.high_watermark = follower.log_end_offset
    assert follower.aborted_transactions(0, 10) == leader.aborted_transactions(0, 10) == [(1, 0)]
    assert follower.housekeeping.open_transactions() == leader.housekeeping.open_transactions() == [(2, 0, 1)]
    assert follower.last_stable_offset == 1


def _aborted_log(path, n=6):
    log = PartitionLog(path, cfg())
    for i in range(n):
        pid = 100 + i
        log.append(txn_batch(pid, [f"v{i}".encode() * 20]))
        log.append(plain([f"p{i}".encode() * 20]))
        log.append_marker(pid, 0, i % 2 == 0 or i == 5, 0)   # odd ones abort, except the last
    log.append(txn_batch(999, [b"open"]))
    return log


def test_index_and_open_transactions_survive_a_clean_restart_and_a_crash(tmp_path):
    log = _aborted_log(tmp_path / "p")
    assert log.housekeeping.segment_count > 2
    expect = (log.aborted_transactions(0, 1 << 30), log.housekeeping.open_transactions(), log.last_stable_offset, read_committed(log))
    assert len(expect[0]) == 2
    assert list((tmp_path / "p").glob("*.txnindex"))
    log.close()
    again = PartitionLog(tmp_path / "p", cfg(), recovery_point=log.housekeeping.checkpoint_offsets()[0])
    assert (again.aborted_transactions(0, 1 << 30), again.housekeeping.open_transactions(), again.last_stable_offset,
            read_committed(again)) == expect
    again.append(txn_batch(100, [b"later"], epoch=1))   # a crash: no flush, no snapshot of the end
    again.append_marker(100, 1, False, 0)
    expect = (again.aborted_transactions(0, 1 << 30), again.housekeeping.open_transactions(), again.last_stable_offset)
    for seg in again._segments:
        seg.close()
    crashed = PartitionLog(tmp_path / "p", cfg(), recovery_point=0)
    assert (crashed.aborted_transactions(0, 1 << 30), crashed.housekeeping.open_transactions(), crashed.last_stable_offset) == expect
    assert len(expect[0]) == 3


def test_a_damaged_index_is_rebuilt_from_the_log(tmp_path):
    log = _aborted_log(tmp_path / "p")
    expect = log.aborted_transactions(0, 1 << 30)
    log.close()
    for p in (tmp_path / "p").glob("*.txnindex"):
        p.write_bytes(struct.pack(">hqqqq", 7, -5, 9, 1, 1))   # not an entry
    again = PartitionLog(tmp_path / "p", cfg(), recovery_point=log.housekeeping.checkpoint_offsets()[0])
    assert again.aborted_transactions(0, 1 << 30) == expect


def test_truncation_forgets_markers_past_the_cut(tmp_path):
    log = _aborted_log(tmp_path / "p")
    aborted = log.aborted_transactions(0, 1 << 30)
    first_marker = min(o for o in range(log.log_end_offset) if log.aborted_transactions(o, 1 << 30) != aborted) - 1
    log.truncate_to(first_marker)   # the first abort marker goes: that transaction is open again
    assert log.aborted_transactions(0, 1 << 30) == []
    assert [t[0] for t in log.housekeeping.open_transactions()] == [101]
    assert log.last_stable_offset == log.housekeeping.open_transactions()[0][2]


def test_retention_drops_entries_with_their_segments(tmp_path):
    log = _aborted_log(tmp_path / "p")
    before = len(list((tmp_path / "p").glob("*.txnindex")))
    log.delete_records_before(log.high_watermark - 1)
    assert log.aborted_transactions(0, 1 << 30) == []
    assert len(list((tmp_path / "p").glob("*.txnindex"))) < before


def _crash(log, path, config):
    """kill -9 and reopen: no close, no flush; the checkpoints as last written."""
    rp, start = log.housekeeping.checkpoint_offsets()
    for seg in log._segments:
        seg.close()
    return PartitionLog(path, config, recovery_point=rp, log_start_offset=start)


@pytest.mark.parametrize("how", ["delete_records", "retention"])
def test_a_transaction_ended_in_deleted_segments_stays_ended_after_a_crash(tmp_path, how):
    """Found by review: a producer snapshot written while a transaction was open, its marker in
    segments that DeleteRecords or retention then deleted, and a crash before the next flush: the
    reopened log took the old snapshot, never saw the marker again, and kept the transaction open,
    its last stable offset at the log start for good (read_committed consumers stopped there)."""
    path = tmp_path / "p"
    config = cfg(retention_bytes=0) if how == "retention" else cfg()
    log = PartitionLog(path, config)
    log.append(txn_batch(7, [b"t1"]))
    log.housekeeping.flush()              # a snapshot with the transaction open
    log.append_marker(7, 0, how == "retention", 0)
    for _ in range(20):
        log.append(plain([b"x" * 40]))
    if how == "retention":
        log.housekeeping.apply_retention()
    else:
        log.delete_records_before(log.high_watermark)
    assert log.log_start_offset > 1
    log.append(plain([b"after"]))
    again = _crash(log, path, config)
    assert again.housekeeping.open_transactions() == []
    assert again.last_stable_offset == again.high_watermark == log.log_end_offset


def test_a_snapshot_older_than_every_segment_does_not_bring_back_an_open_transaction(tmp_path):
    """The same, whatever left the stale snapshot behind (one written by an older version): a
    snapshot below the oldest segment gives the producers' sequences, not its open transactions,
    whose markers may have gone with the deleted segments."""
    path = tmp_path / "p"
    log = PartitionLog(path, cfg())
    log.append(txn_batch(7, [b"t1"]))
    log.housekeeping.flush()
    [(_off, stale)] = [(p.name, p.read_bytes()) for p in path.glob("*.snapshot")]
    log.append_marker(7, 0, True, 0)
    for _ in range(20):
        log.append(plain([b"x" * 40]))
    log.delete_records_before(log.high_watermark)
    for p in path.glob("*.snapshot"):
        p.unlink()
    (path / _off).write_bytes(stale)
    again = _crash(log, path, cfg())
    assert again.housekeeping.open_transactions() == []
    assert again.last_stable_offset == again.high_watermark


def test_a_transaction_still_open_when_its_first_segments_are_deleted_stays_open_after_a_crash(tmp_path):
    """Deleting segments writes the producer state first, so a transaction begun in them and not
    ended yet is still open after a crash (the last stable offset does not jump over it)."""
    path = tmp_path / "p"
    log = PartitionLog(path, cfg())
    log.append(txn_batch(8, [b"open"]))
    log.housekeeping.flush()
    for _ in range(20):
        log.append(plain([b"x" * 40]))
    log.delete_records_before(log.high_watermark - 1)
    again = _crash(log, path, cfg())
    assert [t[0] for t in again.housekeeping.open_transactions()] == [8]
    again.append_marker(8, 0, True, 0)
    assert again.last_stable_offset == again.high_watermark


def test_compaction_removes_aborted_data_and_keeps_markers_and_open_transactions(tmp_path):
    clock = Clock()
    log = PartitionLog(tmp_path / "p", cfg(cleanup_policy="compact", min_compaction_lag_ms=0), clock=clock)
    log.append(txn_batch(1, [b"aborted-a"], keys=[b"a"]))
    log.append(plain([b"plain-b"], keys=[b"b"]))
    log.append_marker(1, 0, False, 0)
    log.append(txn_batch(2, [b"committed-c"], keys=[b"c"]))
    log.append_marker(2, 0, True, 0)
    log.append(txn_batch(1, [b"committed-e"], keys=[b"e"], seq=1))   # producer 1's last batch is this one
    log.append_marker(1, 0, True, 0)
    log.append(txn_batch(3, [b"open-d" * 40], keys=[b"d"]))
    for i in range(12):
        log.append(plain([b"x" * 60], keys=[f"k{i}".encode()]))
    log.housekeeping.roll()
    c = Compactor(log)
    while c.step(clock.ms()):
        pass
    assert c.last_result is not None
    everything = [v for _o, _t, _k, v, _h in iter_records(_without_control(log.read(0, 1 << 20).tobytes()))]
    assert b"aborted-a" not in everything
    assert b"plain-b" in everything and b"committed-c" in everything and b"open-d" * 40 in everything
    data = log.read(0, 1 << 20).tobytes()
    assert sum(1 for _p, h in iter_batches(data) if h.is_control) == 3
    # nothing at or past the open transaction's first offset was cleaned
    assert all(ref.next_offset <= log.last_stable_offset for ref in c._refs)
    assert read_committed(log)[:3] == [b"plain-b", b"committed-c", b"committed-e"]


# ---------------------------------------------------------------- property

OPS = st.lists(st.one_of(
    st.tuples(st.just("plain"), st.integers(0, 3)),
    st.tuples(st.just("txn"), st.integers(1, 3)),
    st.tuples(st.just("commit"), st.integers(1, 3)),
    st.tuples(st.just("abort"), st.integers(1, 3)),
    st.tuples(st.just("fence"), st.integers(1, 3)),
    st.tuples(st.just("roll"), st.just(0)),
    st.tuples(st.just("compact"), st.just(0)),
    st.tuples(st.just("restart"), st.just(0)),
    st.tuples(st.just("crash"), st.just(0)),
), min_size=1, max_size=40)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=OPS, compacted=st.booleans())
def test_read_committed_never_sees_aborted_or_open_data(tmp_path_factory, ops, compacted):
    path = tmp_path_factory.mktemp("txn") / "p"
    clock = Clock()
    conf = cfg(cleanup_policy="compact", min_compaction_lag_ms=0) if compacted else cfg()
    log = PartitionLog(path, conf, clock=clock)
    compactor = Compactor(log)
    status: dict[bytes, str] = {}        # value -> committed / aborted / open
    open_values: dict[int, list[bytes]] = {}
    epochs = {1: 0, 2: 0, 3: 0}
    seqs = {1: 0, 2: 0, 3: 0}
    lso = 0
    n = 0
    for op, arg in ops:
        n += 1
        if op == "plain":
            v = f"plain{n}".encode()
            log.append(plain([v], keys=[f"k{arg}".encode()]))
            status[v] = "committed"
        elif op == "txn":
            v = f"txn{arg}-{n}".encode()
            log.append(txn_batch(arg, [v], epoch=epochs[arg], seq=seqs[arg], keys=[f"k{n % 4}".encode()]))
            seqs[arg] += 1
            status[v] = "open"
            open_values.setdefault(arg, []).append(v)
        elif op in ("commit", "abort", "fence"):
            if op == "fence":     # the coordinator aborts with a bumped epoch (a timeout, a new producer)
                epochs[arg] += 1
                seqs[arg] = 0
            log.append_marker(arg, epochs[arg], op == "commit", 0)
            for v in open_values.pop(arg, []):
                status[v] = "committed" if op == "commit" else "aborted"
        elif op == "roll":
            log.housekeeping.roll()
        elif op == "compact":
            clock.advance_ms(10)
            while compactor.step(clock.ms()):
                pass
        elif op in ("restart", "crash"):
            compactor.close()
            if op == "restart":
                log.close()
                rp = log.housekeeping.checkpoint_offsets()[0]
            else:
                for seg in log._segments:
                    seg.close()
                rp = 0
            log = PartitionLog(path, conf, clock=clock, recovery_point=rp)
            compactor = Compactor(log)
        seen = read_committed(log)
        assert all(status[v] == "committed" for v in seen), [(v, status[v]) for v in seen if status[v] != "committed"]
        assert log.last_stable_offset >= lso
        lso = log.last_stable_offset
        if not compacted:   # every committed value below the LSO is there, in offset order
            below = [v for off, _t, _k, v, _h in iter_records(_without_control(log.read(0, 1 << 22).tobytes()))
                     if off < lso and status[v] == "committed"]
            assert seen == below
    log.close()


def test_sync_makes_appends_durable_without_rewriting_indexes_or_snapshots(tmp_path):
    log = PartitionLog(tmp_path / "p", cfg(segment_bytes=1 << 20))
    log.append(plain([b"a"]))
    log.housekeeping.flush()
    snapshots = sorted(p.name for p in (tmp_path / "p").glob("*.snapshot"))
    log.append(txn_batch(4, [b"t"]))
    log.append_marker(4, 0, False, 0)
    log.housekeeping.sync()
    assert log.housekeeping.dirty and log.recovery_point == 1       # the next flush does the rest
    assert sorted(p.name for p in (tmp_path / "p").glob("*.snapshot")) == snapshots
    for seg in log._segments:      # a crash: nothing more written
        seg.close()
    again = PartitionLog(tmp_path / "p", cfg(segment_bytes=1 << 20), recovery_point=1)
    assert again.log_end_offset == 3 and again.aborted_transactions(0, 3) == [(4, 1)]


def test_the_coordinator_epoch_of_the_last_marker_is_kept_across_restarts_and_crashes(tmp_path):
    log = PartitionLog(tmp_path / "p", cfg())
    log.append(txn_batch(3, [b"a"]))
    log.append_marker(3, 0, True, coordinator_epoch=5)
    assert [e[4] for e in log.housekeeping.active_producers()] == [5]
    log.close()
    again = PartitionLog(tmp_path / "p", cfg(), recovery_point=log.housekeeping.checkpoint_offsets()[0])
    assert [e[4] for e in again.housekeeping.active_producers()] == [5]
    again.append(txn_batch(3, [b"b"], seq=1))
    with pytest.raises(TransactionCoordinatorFencedError):   # the kept epoch still fences
        again.append_marker(3, 0, False, coordinator_epoch=4)
    again.append_marker(3, 0, False, coordinator_epoch=6)
    assert again.aborted_transactions(0, 10) == [(3, 2)]
    for seg in again._segments:   # a crash: the epoch is read back from the markers themselves
        seg.close()
    crashed = PartitionLog(tmp_path / "p", cfg(), recovery_point=0)
    assert [e[4] for e in crashed.housekeeping.active_producers()] == [6]


def test_a_marker_from_an_older_coordinator_epoch_is_fenced_and_nothing_is_appended(tmp_path):
    """Kafka's ProducerAppendInfo.checkCoordinatorEpoch: a marker whose coordinator epoch is older
    than the producer's last marker's is a zombie coordinator's (TRANSACTION_COORDINATOR_FENCED);
    the same epoch or a newer one is taken, and a producer the partition does not know takes any."""
    log = PartitionLog(tmp_path / "p", cfg())
    log.append_marker(8, 0, True, coordinator_epoch=0)   # unknown producer (coordinator epoch -1): taken
    log.append(txn_batch(3, [b"a"]))
    log.append_marker(3, 0, True, coordinator_epoch=5)
    log.append(txn_batch(3, [b"b"], seq=1))
    end, lso = log.log_end_offset, log.last_stable_offset
    with pytest.raises(TransactionCoordinatorFencedError):
        log.append_marker(3, 0, False, coordinator_epoch=4)
    assert (log.log_end_offset, log.last_stable_offset) == (end, lso)   # nothing appended, still open
    assert log.housekeeping.open_transactions() == [(3, 0, lso)]
    assert [e[4] for e in log.housekeeping.active_producers() if e[0] == 3] == [5]
    log.append_marker(3, 0, False, coordinator_epoch=5)   # the same coordinator again
    assert log.aborted_transactions(0, 10) == [(3, lso)]
    log.append(txn_batch(3, [b"c"], epoch=1))
    log.append_marker(3, 1, True, coordinator_epoch=7)    # a newer one
    assert log.housekeeping.open_transactions() == []


def test_the_producer_epoch_is_checked_before_the_coordinator_epoch(tmp_path):
    """appendEndTxnMarker runs checkProducerEpoch, then checkCoordinatorEpoch: a marker stale on
    both counts is INVALID_PRODUCER_EPOCH."""
    log = PartitionLog(tmp_path / "p", cfg())
    log.append(txn_batch(3, [b"a"], epoch=2))
    log.append_marker(3, 2, True, coordinator_epoch=5)
    with pytest.raises(InvalidProducerEpochError):
        log.append_marker(3, 1, False, coordinator_epoch=4)


def test_a_follower_copies_a_marker_of_an_older_coordinator_epoch_unchecked(tmp_path):
    """The coordinator-epoch check is for markers the coordinator asks for (Kafka only logs one
    that comes through replication): a follower takes the leader's control batches as they are."""
    leader = PartitionLog(tmp_path / "l", cfg())
    leader.append(txn_batch(3, [b"a"]))
    leader.append_marker(3, 0, True, coordinator_epoch=5)
    leader.append(txn_batch(3, [b"b"], seq=1))
    stale = build_control_batch(3, 0, False, 4, 1_000, writable=True)   # coordinator epoch 4, after 5
    struct.pack_into(">q", stale, 0, leader.log_end_offset)
    follower = PartitionLog(tmp_path / "f", cfg())
    follower.replica.set_replicated(True)
    follower.replica.append(leader.read(0, 1 << 20).tobytes())
    follower.replica.append(bytes(stale))
    assert follower.log_end_offset == leader.log_end_offset + 1
    assert follower.housekeeping.open_transactions() == [] and follower.aborted_transactions(0, 10) == [(3, 2)]


def test_aborted_transactions_survive_a_crash_in_the_middle_of_a_truncation(tmp_path, monkeypatch):
    """A cut rewrites the aborted-transaction index files, and a snapshot older than the cut
    counted on the entries in them. Found by review: a crash after the files were deleted (or
    before their new contents were fsynced) left that snapshot to be trusted on reopen, with the
    entries gone: a read_committed reader then got the aborted records. The snapshots now go
    first (a crash meanwhile rebuilds from the log), and the cut ends with one fsynced snapshot."""
    from sandbox.log.producers import ProducerStore

    path = tmp_path / "p"
    log = _aborted_log(path)
    log.housekeeping.flush()
    aborted = log.aborted_transactions(0, 1 << 30)
    expect = read_committed(log)
    log.append(plain([b"to be cut"]))

    def crash(*_a, **_k):
        raise SystemExit("killed while rebuilding")
    monkeypatch.setattr(ProducerStore, "rebuild_from", crash)
    with pytest.raises(SystemExit):
        log.truncate_to(log.log_end_offset - 1)
    monkeypatch.undo()
    again = _crash(log, path, cfg())
    assert again.aborted_transactions(0, 1 << 30) == aborted
    assert read_committed(again) == expect


def _index_appends_fail(monkeypatch, times: int):
    """The next `times` appends to a .txnindex file fail as on a full disk (ENOSPC)."""
    import builtins
    import errno
    import sandbox.log.transactions as mod
    left = [times]

    def fake_open(path, mode="r", *a, **kw):
        if str(path).endswith(".txnindex") and mode == "ab" and left[0] > 0:
            left[0] -= 1
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return builtins.open(path, mode, *a, **kw)
    monkeypatch.setattr(mod, "open", fake_open, raising=False)


def test_an_abort_whose_index_write_fails_still_hides_its_records_and_is_written_at_the_flush(tmp_path, monkeypatch):
    log = PartitionLog(tmp_path / "p", cfg(segment_bytes=1 << 20))
    log.append(txn_batch(5, [b"gone1", b"gone2"]))
    log.append(plain([b"kept"]))
    _index_appends_fail(monkeypatch, 1)
    log.append_marker(5, 0, False, 0)   # in the log; its index entry could not be appended
    assert log.aborted_transactions(0, 1 << 30) == [(5, 0)]
    assert read_committed(log) == [b"kept"]
    # the coordinator's retry (had the write been answered as failed) changes nothing
    log.append_marker(5, 0, False, 0)
    assert log.aborted_transactions(0, 1 << 30) == [(5, 0)]
    log.close()                          # the flush writes the file whole
    again = PartitionLog(tmp_path / "p", cfg(segment_bytes=1 << 20), recovery_point=log.log_end_offset)
    assert again.aborted_transactions(0, 1 << 30) == [(5, 0)]
    assert read_committed(again) == [b"kept"]
    again.close()


def test_an_abort_index_that_cannot_be_written_stops_the_snapshot_so_a_crash_replays_the_marker(tmp_path, monkeypatch):
    import errno
    import sandbox.log.transactions as mod
    log = PartitionLog(tmp_path / "p", cfg(segment_bytes=1 << 20))
    log.append(txn_batch(5, [b"gone"]))
    log.append(plain([b"kept"]))
    log.close()
    log = PartitionLog(tmp_path / "p", cfg(segment_bytes=1 << 20), recovery_point=log.log_end_offset)
    _index_appends_fail(monkeypatch, 10)

    def full(*a, **kw):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(mod, "atomic_write", full)
    log.append_marker(5, 0, False, 0)
    log.append(plain([b"after"]))
    with pytest.raises(OSError):
        log._flush()                     # the index cannot be written: no snapshot past the marker
    assert not (tmp_path / "p" / f"{log.log_end_offset:020d}.snapshot").exists()
    for seg in log._segments:            # a crash
        seg.close()
    monkeypatch.undo()
    crashed = PartitionLog(tmp_path / "p", cfg(segment_bytes=1 << 20), recovery_point=0)
    assert crashed.aborted_transactions(0, 1 << 30) == [(5, 0)]
    assert read_committed(crashed) == [b"kept", b"after"]
    crashed.close()


@pytest.mark.parametrize("entry", [
    (0, 0, 0, 0, 0),       # zeros a crash left at the end of the file
    (0, 7, 9, 9, 10),      # no data before its marker
    (0, 7, 1, 2, 3),       # its marker lies before its own segment
])
def test_an_index_entry_that_cannot_be_one_of_its_segment_rebuilds_the_index(tmp_path, entry):
    log = _aborted_log(tmp_path / "p")
    expect = log.aborted_transactions(0, 1 << 30)
    log.close()
    files = sorted((tmp_path / "p").glob("*.txnindex"))
    last = files[-1]
    assert int(last.name.split(".")[0]) > 2
    last.write_bytes(last.read_bytes() + struct.pack(">hqqqq", *entry))
    again = PartitionLog(tmp_path / "p", cfg(), recovery_point=log.housekeeping.checkpoint_offsets()[0])
    assert again.aborted_transactions(0, 1 << 30) == expect
    again.close()


def test_zeros_an_os_crash_left_at_the_end_of_an_index_are_cut_off_and_the_snapshot_kept(tmp_path):
    """Not taken for damage: a damaged index has the whole state rebuilt from the batches,
    without the snapshot, which forgets a producer whose batches DeleteRecords removed (its
    retry would be written twice)."""
    retry = build_batch([(b"k", b"v")], producer_id=42, producer_epoch=0, base_sequence=0, timestamp_ms=1_000)
    log = PartitionLog(tmp_path / "p", cfg())
    log.append(retry)
    for _ in range(8):
        log.append(plain([b"x" * 60]))
    first = log.append(txn_batch(5, [b"a"])).first_offset
    log.append_marker(5, 0, False, 0)
    log.delete_records_before(first)
    assert log.log_start_offset > 0           # the producer's batch is gone with its segment
    expect = log.aborted_transactions(0, 1 << 30)
    log.close()
    last = sorted((tmp_path / "p").glob("*.txnindex"))[-1]
    size = len(last.read_bytes())
    last.write_bytes(last.read_bytes() + bytes(2 * 34 + 5))
    again = PartitionLog(tmp_path / "p", cfg(), recovery_point=log.housekeeping.checkpoint_offsets()[0],
                         log_start_offset=log.log_start_offset)
    assert again.aborted_transactions(0, 1 << 30) == expect
    assert len(last.read_bytes()) == size
    assert again.append(retry).duplicate       # known from the snapshot, not rebuilt from batches
    again.close()
