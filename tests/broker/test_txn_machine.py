"""The transaction coordinator's pure state machine and its records: every transition and every
error Kafka's TransactionCoordinator answers, with an injected clock; the record bytes."""

from __future__ import annotations

import pytest

from sandbox.broker.transactions.machine import TxnMachine, for_version
from sandbox.broker.transactions.records import (
    COMPLETE_ABORT, COMPLETE_COMMIT, DEAD, EMPTY, ONGOING, PREPARE_ABORT, PREPARE_COMMIT, TxnMetadata,
    decode_key, decode_value, encode_key, encode_value,
)
from sandbox.protocol import errors as E

T0 = 1_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def m(clock):
    return TxnMachine(clock=clock, max_timeout_ms=60_000, expiration_ms=100_000)


def apply(m: TxnMachine, d):
    """Make a decision's write durable as the store does; the decision back."""
    if d.write is not None:
        m.begin(d.write)
        m.applied(d.write, True)
    return d


def init(m, tid="tx", timeout=10_000, fresh=100, pid=-1, epoch=-1):
    return apply(m, m.init_producer_id(tid, timeout, fresh, pid, epoch))


def ongoing(m, tid="tx", parts=(("t", 0),)):
    d = init(m, tid)
    apply(m, m.add_partitions(tid, d.producer_id, d.producer_epoch, parts))
    return m.get(tid)


# ---- InitProducerId --------------------------------------------------------------------------
def test_a_new_id_gets_the_fresh_producer_id_and_epoch_0(m):
    d = init(m, fresh=7)
    assert (d.error, d.producer_id, d.producer_epoch) == (E.NONE, 7, 0)
    meta = m.get("tx")
    assert (meta.state, meta.timeout_ms, meta.partitions, meta.last_update_ms) == (EMPTY, 10_000, frozenset(), T0 * 1000)


def test_init_refuses_an_empty_id_and_bad_timeouts(m):
    assert m.init_producer_id("", 1000, 1).error == E.INVALID_REQUEST
    assert m.init_producer_id("tx", 0, 1).error == E.INVALID_TRANSACTION_TIMEOUT
    assert m.init_producer_id("tx", 60_001, 1).error == E.INVALID_TRANSACTION_TIMEOUT
    assert m.init_producer_id("tx", 60_000, 1).error == E.NONE


def test_a_second_init_bumps_the_epoch_and_keeps_the_id(m):
    init(m, fresh=7)
    d = init(m, fresh=-1)
    assert (d.error, d.producer_id, d.producer_epoch) == (E.NONE, 7, 1)


def test_init_during_an_open_transaction_aborts_it_under_a_bumped_epoch(m):
    meta = ongoing(m)
    d = m.init_producer_id("tx", 10_000, -1)
    assert d.error == E.CONCURRENT_TRANSACTIONS
    assert (d.write.state, d.write.producer_epoch, d.write.partitions) == (PREPARE_ABORT, meta.producer_epoch + 1,
                                                                          meta.partitions)
    apply(m, d)
    assert m.init_producer_id("tx", 10_000, -1).error == E.CONCURRENT_TRANSACTIONS   # markers still going out
    apply(m, type(d)(E.NONE, m.completed(m.get("tx"))))
    assert m.get("tx").state == COMPLETE_ABORT
    again = init(m, fresh=-1)
    assert (again.error, again.producer_epoch) == (E.NONE, meta.producer_epoch + 2)


def test_init_while_a_write_is_pending_is_concurrent(m):
    d = init(m)
    add = m.add_partitions("tx", d.producer_id, d.producer_epoch, [("t", 0)])
    m.begin(add.write)
    assert m.init_producer_id("tx", 10_000, -1).error == E.CONCURRENT_TRANSACTIONS
    assert m.end_txn("tx", d.producer_id, d.producer_epoch, True).error == E.CONCURRENT_TRANSACTIONS
    m.applied(add.write, False)   # a failed write leaves the old state
    assert m.get("tx").state == EMPTY and "tx" not in m.pending


def test_an_exhausted_epoch_rotates_the_producer_id(m):
    init(m, fresh=7)
    m.txns["tx"] = m.get("tx").but(producer_epoch=32766)
    d = init(m, fresh=8, pid=7, epoch=32766)
    assert (d.error, d.producer_id, d.producer_epoch) == (E.NONE, 8, 0)
    assert m.get("tx").previous_producer_id == 7
    # KIP-360: a retry with the previous id and its exhausted epoch (the answer was lost) gets the new one
    assert m.init_producer_id("tx", 10_000, -1, 7, 32766) == (E.NONE, None, 8, 0)
    assert m.init_producer_id("tx", 10_000, -1, 7, 5).error == E.PRODUCER_FENCED


def test_without_a_producer_id_an_exhausted_epoch_rotates_too(m):
    init(m, fresh=7)
    m.txns["tx"] = m.get("tx").but(producer_epoch=32766)
    d = init(m, fresh=8)
    assert (d.error, d.producer_id, d.producer_epoch) == (E.NONE, 8, 0)


def test_kip360_reinit_with_the_current_epoch_bumps_it_and_a_retry_gets_the_same(m):
    d = init(m, fresh=7)
    bumped = init(m, fresh=-1, pid=7, epoch=d.producer_epoch)
    assert (bumped.error, bumped.producer_epoch) == (E.NONE, 1)
    retry = m.init_producer_id("tx", 10_000, -1, 7, 0)
    assert (retry.error, retry.write, retry.producer_epoch) == (E.NONE, None, 1)


def test_kip360_reinit_with_a_stale_epoch_or_another_id_is_fenced(m):
    init(m, fresh=7)
    init(m, fresh=-1)
    init(m, fresh=-1)   # epoch 2, last epoch unknown
    assert m.init_producer_id("tx", 10_000, -1, 7, 0).error == E.PRODUCER_FENCED
    assert m.init_producer_id("tx", 10_000, -1, 99, 2).error == E.PRODUCER_FENCED


def test_producer_fenced_is_invalid_producer_epoch_for_old_versions():
    assert for_version(E.PRODUCER_FENCED, 3, 4) == E.INVALID_PRODUCER_EPOCH
    assert for_version(E.PRODUCER_FENCED, 4, 4) == E.PRODUCER_FENCED
    assert for_version(E.CONCURRENT_TRANSACTIONS, 0, 4) == E.CONCURRENT_TRANSACTIONS


# ---- AddPartitionsToTxn / verify -------------------------------------------------------------
def test_add_partitions_starts_then_grows_the_transaction(m, clock):
    d = init(m)
    first = apply(m, m.add_partitions("tx", d.producer_id, d.producer_epoch, [("t", 0)]))
    assert first.error == E.NONE and m.get("tx").state == ONGOING and m.get("tx").start_ms == T0 * 1000
    assert m.add_partitions("tx", d.producer_id, d.producer_epoch, [("t", 0)]) == (E.NONE, None, -1, -1)
    clock.now += 5
    apply(m, m.add_partitions("tx", d.producer_id, d.producer_epoch, [("u", 1)]))
    meta = m.get("tx")
    assert meta.partitions == {("t", 0), ("u", 1)} and meta.start_ms == T0 * 1000
    assert meta.last_update_ms == (T0 + 5) * 1000


def test_add_partitions_errors(m):
    assert m.add_partitions("", 1, 0, [("t", 0)]).error == E.INVALID_REQUEST
    assert m.add_partitions("nope", 1, 0, [("t", 0)]).error == E.INVALID_PRODUCER_ID_MAPPING
    d = init(m, fresh=7)
    assert m.add_partitions("tx", 8, 0, [("t", 0)]).error == E.INVALID_PRODUCER_ID_MAPPING
    assert m.add_partitions("tx", 7, 1, [("t", 0)]).error == E.PRODUCER_FENCED
    apply(m, m.add_partitions("tx", 7, d.producer_epoch, [("t", 0)]))
    apply(m, m.end_txn("tx", 7, d.producer_epoch, True))
    assert m.add_partitions("tx", 7, d.producer_epoch, [("t", 0)]).error == E.CONCURRENT_TRANSACTIONS


def test_after_a_completed_transaction_add_partitions_starts_a_new_one(m, clock):
    meta = ongoing(m, parts=[("t", 0), ("t", 1)])
    apply(m, m.end_txn("tx", meta.producer_id, meta.producer_epoch, False))
    apply(m, type(m.end_txn("tx", 0, 0, True))(E.NONE, m.completed(m.get("tx"))))
    clock.now += 1
    apply(m, m.add_partitions("tx", meta.producer_id, meta.producer_epoch, [("u", 0)]))
    assert m.get("tx").partitions == {("u", 0)} and m.get("tx").start_ms == (T0 + 1) * 1000


def test_verify_only_answers_per_partition(m):
    meta = ongoing(m)
    assert m.verify("tx", meta.producer_id, meta.producer_epoch, [("t", 0), ("t", 1)]) == (
        E.NONE, {("t", 0): E.NONE, ("t", 1): E.TRANSACTION_ABORTABLE})
    assert m.verify("tx", meta.producer_id, meta.producer_epoch + 1, [("t", 0)]) == (E.PRODUCER_FENCED, {})
    assert m.verify("nope", 1, 0, [("t", 0)]) == (E.INVALID_PRODUCER_ID_MAPPING, {})


def test_verify_while_partitions_are_being_added_answers_from_the_durable_transaction(m):
    """A Produce to a partition already in the transaction crosses the producer's next
    AddPartitionsToTxn (its write not durable yet): verified, as Kafka verifies it. Refusing it
    aborted librdkafka's transactions (its test 0103 on 3 brokers)."""
    meta = ongoing(m)
    add = m.add_partitions("tx", meta.producer_id, meta.producer_epoch, [("t", 1)])
    m.begin(add.write)
    assert m.verify("tx", meta.producer_id, meta.producer_epoch, [("t", 0), ("t", 1)]) == (
        E.NONE, {("t", 0): E.NONE, ("t", 1): E.TRANSACTION_ABORTABLE})
    m.applied(add.write, True)
    # the transaction ending (PrepareCommit being written, then durable): retry later
    end = m.end_txn("tx", meta.producer_id, meta.producer_epoch, True)
    m.begin(end.write)
    assert m.verify("tx", meta.producer_id, meta.producer_epoch, [("t", 0)]) == (E.CONCURRENT_TRANSACTIONS, {})
    m.applied(end.write, True)
    assert m.verify("tx", meta.producer_id, meta.producer_epoch, [("t", 0)]) == (E.CONCURRENT_TRANSACTIONS, {})


# ---- EndTxn ----------------------------------------------------------------------------------
@pytest.mark.parametrize("commit,prepare,complete", [(True, PREPARE_COMMIT, COMPLETE_COMMIT),
                                                     (False, PREPARE_ABORT, COMPLETE_ABORT)])
def test_end_txn_prepares_then_completes_and_retries_are_answered_as_kafka(m, commit, prepare, complete):
    meta = ongoing(m)
    pid, epoch = meta.producer_id, meta.producer_epoch
    d = apply(m, m.end_txn("tx", pid, epoch, commit))
    assert d.error == E.NONE and m.get("tx").state == prepare and m.get("tx").partitions == meta.partitions
    assert m.end_txn("tx", pid, epoch, commit).error == E.CONCURRENT_TRANSACTIONS
    assert m.end_txn("tx", pid, epoch, not commit).error == E.INVALID_TXN_STATE
    assert [x.transactional_id for x in m.unfinished()] == ["tx"]
    done = m.completed(m.get("tx"))
    assert (done.state, done.partitions) == (complete, frozenset())
    apply(m, type(d)(E.NONE, done))
    assert m.unfinished() == []
    assert m.end_txn("tx", pid, epoch, commit) == (E.NONE, None, -1, -1)
    assert m.end_txn("tx", pid, epoch, not commit).error == E.INVALID_TXN_STATE


def test_end_txn_errors(m):
    assert m.end_txn("", 1, 0, True).error == E.INVALID_REQUEST
    assert m.end_txn("nope", 1, 0, True).error == E.INVALID_PRODUCER_ID_MAPPING
    d = init(m, fresh=7)
    assert m.end_txn("tx", 7, d.producer_epoch, True).error == E.INVALID_TXN_STATE   # Empty: nothing to end
    assert m.end_txn("tx", 8, d.producer_epoch, True).error == E.INVALID_PRODUCER_ID_MAPPING
    assert m.end_txn("tx", 7, d.producer_epoch + 1, True).error == E.PRODUCER_FENCED


# ---- housekeeping ----------------------------------------------------------------------------
def test_a_transaction_past_its_timeout_is_aborted_under_a_bumped_epoch(m, clock):
    meta = ongoing(m)
    clock.now += 10.0   # exactly the timeout: not yet
    assert m.timed_out() == []
    clock.now += 0.001
    assert m.timed_out() == ["tx"]
    abort = m.abort_timed_out("tx")
    assert (abort.state, abort.producer_epoch, abort.partitions) == (PREPARE_ABORT, meta.producer_epoch + 1,
                                                                     meta.partitions)
    apply(m, type(m.end_txn("x", 0, 0, True))(E.NONE, abort))
    assert m.timed_out() == []
    assert m.add_partitions("tx", meta.producer_id, meta.producer_epoch, [("t", 1)]).error == E.PRODUCER_FENCED


def test_idle_ids_expire_but_not_open_transactions(m, clock):
    init(m, "idle")
    ongoing(m, "busy")
    clock.now += 100.0
    assert m.expired() == ["idle"] and m.expire("busy") is None
    dead = m.expire("idle")
    assert (dead.transactional_id, dead.state) == ("idle", DEAD)
    apply(m, type(m.end_txn("x", 0, 0, True))(E.NONE, dead))
    assert m.get("idle") is None and m.get("busy") is not None


def test_load_unload_and_tombstones(m):
    meta = TxnMetadata("tx", 5, 3, 1000, ONGOING, frozenset({("t", 0)}), 10, 9)
    m.load(meta, "tx")
    assert m.get("tx") == meta
    m.load(None, "tx")
    assert m.get("tx") is None
    m.load(meta, "tx")
    m.unload(["tx"])
    assert m.get("tx") is None and m.describe("tx") == (E.TRANSACTIONAL_ID_NOT_FOUND, None)


def test_list_filters(m, clock):
    ongoing(m, "a")
    init(m, "b", fresh=200)
    clock.now += 2
    names = lambda found: [x.transactional_id for x in found[0]]   # noqa: E731
    assert names(m.list()) == ["a", "b"]
    assert names(m.list(["Ongoing"])) == ["a"]
    assert m.list(["Bogus"]) == ([], ["Bogus"])
    assert names(m.list(producer_ids=[200])) == ["b"]
    assert names(m.list(["Ongoing"], duration_ms=1000)) == ["a"]
    assert names(m.list(["Ongoing"], duration_ms=5000)) == []
    assert names(m.list(pattern="a|c")) == ["a"]
    assert names(m.list(pattern="b.")) == []


# ---- records ---------------------------------------------------------------------------------
def test_key_is_kafkas_transaction_log_key_v0():
    assert encode_key("tx") == b"\x00\x00\x00\x02tx"
    assert decode_key(encode_key("ü")) == "ü"
    assert decode_key(b"\x00\x01\x00\x01x") is None


def test_value_v0_bytes_are_kafkas():
    meta = TxnMetadata("tx", 5, 3, 60000, ONGOING, frozenset({("t", 1), ("t", 0)}), 11, 10)
    assert encode_value(meta) == (b"\x00\x00" + (5).to_bytes(8, "big") + b"\x00\x03" + (60000).to_bytes(4, "big")
                                  + b"\x01" + b"\x00\x00\x00\x01" + b"\x00\x01t" + b"\x00\x00\x00\x02"
                                  + b"\x00\x00\x00\x00\x00\x00\x00\x01" + (11).to_bytes(8, "big")
                                  + (10).to_bytes(8, "big"))
    assert decode_value("tx", encode_value(meta)) == meta


def test_value_v1_carries_the_tagged_producer_ids():
    meta = TxnMetadata("tx", 5, 0, 1000, COMPLETE_COMMIT, frozenset({("a", 2), ("b", 0)}), 1, -1,
                       previous_producer_id=4)
    raw = encode_value(meta)
    assert raw[:2] == b"\x00\x01"
    assert decode_value("tx", raw) == meta
    with pytest.raises(ValueError):
        decode_value("tx", b"\x00\x07" + raw[2:])


def test_an_ids_partition_follows_the_topics_partition_count_without_a_metadata_pass():
    from types import SimpleNamespace
    from sandbox.broker.offsets_records import partition_for
    from sandbox.broker.transactions.store import TxnStore
    from sandbox.coordinator.model import PartitionInfo, TopicInfo
    import uuid
    topics = {}
    coord = SimpleNamespace(partition_count=lambda name: len(topics[name].partitions) if name in topics else 0,
                            topic=lambda name: topics.get(name))
    state = SimpleNamespace(coordinator=coord, node_id=1, partitions={}, leaders={})
    store = TxnStore(state, TxnMachine(), partitions=10)
    ids = [f"tx-{i}" for i in range(40)]
    assert [store.partition_for(t) for t in ids] == [partition_for(t, 10) for t in ids]   # no topic yet
    topics["__transaction_state"] = TopicInfo("__transaction_state", uuid.UUID(int=3),
                                              [PartitionInfo(i, (2,), (2,), 2, 0) for i in range(3)])
    # no metadata pass in between (one that failed part way never reaches on_metadata)
    assert [store.partition_for(t) for t in ids] == [partition_for(t, 3) for t in ids]
    assert {store.partition_for(t) for t in ids} == {0, 1, 2}
