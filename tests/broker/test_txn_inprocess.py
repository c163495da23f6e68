"""Transactions on the data path, answered in-process: Produce with a transactional id,
WriteTxnMarkers, Fetch read_committed (LSO, aborted transactions), ListOffsets by isolation level,
DescribeProducers' open transaction, TxnOffsetCommit pending until its marker and OffsetFetch
require_stable (KIP-447)."""

from __future__ import annotations

import asyncio

import pytest

from inprocess import InProcess
from test_handlers_inprocess import broker  # noqa: F401  (the fixture)
from sandbox.log.batch import ATTR_TRANSACTIONAL, build_batch
from sandbox.protocol import errors as E
from sandbox.broker.transactions.records import ONGOING, PREPARE_COMMIT
from sandbox.protocol.records import decode_batches, encode_batch

@pytest.fixture
def b(broker):   # the in-process broker of test_handlers_inprocess, with a topic of 2 partitions
    broker.create_topic("t", 2)
    return broker


def txn_batch(values: list[bytes], pid: int, epoch: int = 0, seq: int = 0) -> bytes:
    return build_batch([(None, v) for v in values], producer_id=pid, producer_epoch=epoch, base_sequence=seq,
                       attributes=ATTR_TRANSACTIONAL)


def produce(b: InProcess, records: bytes, txn_id: str | None = "tx", partition: int = 0, version: int = 9):
    resp = b.call(0, version, {"transactional_id": txn_id, "acks": -1, "timeout": 5000, "topic_data": [
        {"name": "t", "partition_data": [{"index": partition, "records": records}]}]})
    return resp.responses[0].partition_responses[0]


def markers(b: InProcess, pid: int, commit: bool, parts=(("t", 0),), epoch: int = 0, version: int = 1,
            coordinator_epoch: int = 0):
    topics: dict[str, list[int]] = {}
    for t, p in parts:
        topics.setdefault(t, []).append(p)
    resp = b.call(27, version, {"markers": [{"producer_id": pid, "producer_epoch": epoch, "transaction_result": commit,
                                             "coordinator_epoch": coordinator_epoch, "transaction_version": 0,
                                             "topics": [{"name": t, "partition_indexes": ps}
                                                        for t, ps in topics.items()]}]})
    m = resp.markers[0]
    assert m.producer_id == pid
    return {(t.name, p.partition_index): int(p.error_code) for t in m.topics for p in t.partitions}


def fetch(b: InProcess, isolation: int, offset: int = 0, version: int = 12):
    resp = b.call(1, version, {"replica_id": -1, "max_wait": 0, "min_bytes": 1, "max_bytes": 1 << 20,
                               "isolation_level": isolation, "session_id": 0, "session_epoch": -1, "rack_id": "",
                               "forgotten_topics_data": [], "topics": [{"topic": "t", "partitions": [
                                   {"partition": 0, "fetch_offset": offset, "partition_max_bytes": 1 << 20}]}]})
    return resp.responses[0].partitions[0]


def consumed(p, isolation: int) -> list[bytes]:
    aborted = [(a.producer_id, a.first_offset) for a in p.aborted_transactions or ()] if isolation else None
    return [r.value for r in decode_batches(bytes(p.records or b""), aborted=aborted)]


def list_latest(b: InProcess, isolation: int) -> int:
    resp = b.call(2, 7, {"replica_id": -1, "isolation_level": isolation, "topics": [
        {"name": "t", "partitions": [{"partition_index": 0, "timestamp": -1}]}]})
    return resp.topics[0].partitions[0].offset


def test_committed_aborted_and_open_transactions_as_each_isolation_level_reads_them(b):
    assert int(produce(b, encode_batch(0, [b"plain"]), txn_id=None).error_code) == E.NONE       # offset 0
    assert int(produce(b, txn_batch([b"c1", b"c2"], pid=7)).error_code) == E.NONE               # 1-2
    assert int(produce(b, txn_batch([b"a1"], pid=8)).error_code) == E.NONE                      # 3
    # both open: read_committed stops at the first open transaction
    p = fetch(b, 1)
    assert (p.high_watermark, p.last_stable_offset) == (4, 1)
    assert consumed(p, 1) == [b"plain"] and list(p.aborted_transactions) == []
    assert list_latest(b, 1) == 1 and list_latest(b, 0) == 4
    assert markers(b, 7, True) == {("t", 0): E.NONE}                                            # 4
    assert markers(b, 8, False) == {("t", 0): E.NONE}                                           # 5
    p = fetch(b, 1)
    assert (p.high_watermark, p.last_stable_offset) == (6, 6)
    assert [(a.producer_id, a.first_offset) for a in p.aborted_transactions] == [(8, 3)]
    assert consumed(p, 1) == [b"plain", b"c1", b"c2"]
    u = fetch(b, 0)
    assert u.aborted_transactions is None and u.last_stable_offset == 6
    assert consumed(u, 0) == [b"plain", b"c1", b"c2", b"a1"]       # control batches are never records
    assert list_latest(b, 1) == 6
    for version in (4, 7, 11):   # older versions carry the list too
        assert [(a.producer_id, a.first_offset) for a in fetch(b, 1, version=version).aborted_transactions] == [(8, 3)]


def test_describe_producers_shows_the_open_transaction(b):
    produce(b, txn_batch([b"x"], pid=9))
    resp = b.call(61, 0, {"topics": [{"name": "t", "partition_indexes": [0]}]})
    (prod,) = resp.topics[0].partitions[0].active_producers
    assert (prod.producer_id, prod.current_txn_start_offset) == (9, 0)
    markers(b, 9, True)
    (prod,) = b.call(61, 0, {"topics": [{"name": "t", "partition_indexes": [0]}]}).topics[0].partitions[0].active_producers
    assert prod.current_txn_start_offset == -1


def test_produce_rules_for_transactional_batches(b):
    # a transactional batch without a transactional id: every partition of the request refused
    assert int(produce(b, txn_batch([b"x"], pid=3), txn_id=None).error_code) == E.TRANSACTIONAL_ID_AUTHORIZATION_FAILED
    # a transactional batch without a producer id
    assert int(produce(b, txn_batch([b"x"], pid=-1, epoch=-1, seq=-1)).error_code) == E.INVALID_RECORD
    # a plain batch with a transactional id is accepted, as Kafka does
    assert int(produce(b, encode_batch(0, [b"y"])).error_code) == E.NONE
    # a client may not write markers
    from sandbox.log.batch import build_control_batch
    assert int(produce(b, build_control_batch(3, 0, True, 0)).error_code) == E.INVALID_RECORD
    # __consumer_offsets stays closed to clients
    resp = b.call(0, 9, {"transactional_id": "tx", "acks": -1, "timeout": 5000, "topic_data": [
        {"name": "__consumer_offsets", "partition_data": [{"index": 0, "records": txn_batch([b"z"], pid=3)}]}]})
    assert int(resp.responses[0].partition_responses[0].error_code) == E.INVALID_TOPIC_EXCEPTION


def test_write_txn_markers_errors_per_partition(b):
    produce(b, txn_batch([b"x"], pid=5, epoch=2))
    codes = markers(b, 5, True, parts=[("t", 0), ("t", 9), ("nope", 0)], epoch=1, version=2)
    assert codes == {("t", 0): E.INVALID_PRODUCER_EPOCH, ("t", 9): E.UNKNOWN_TOPIC_OR_PARTITION,
                     ("nope", 0): E.UNKNOWN_TOPIC_OR_PARTITION}
    assert markers(b, 5, False, epoch=2) == {("t", 0): E.NONE}
    assert fetch(b, 1).last_stable_offset == 2


def test_write_txn_markers_fences_an_older_coordinator_epoch(b):
    """Kafka's checkCoordinatorEpoch: a marker from an older coordinator epoch than the producer's
    last marker on the partition is TRANSACTION_COORDINATOR_FENCED and writes nothing; a partition
    that does not know the producer takes it; the producer epoch is checked first."""
    produce(b, txn_batch([b"x"], pid=5))
    assert markers(b, 5, True, coordinator_epoch=3) == {("t", 0): E.NONE}
    produce(b, txn_batch([b"y"], pid=5, seq=1))
    assert (fetch(b, 0).high_watermark, fetch(b, 1).last_stable_offset) == (3, 2)
    assert markers(b, 5, True, parts=[("t", 0), ("t", 1)], coordinator_epoch=2) == {
        ("t", 0): E.TRANSACTION_COORDINATOR_FENCED, ("t", 1): E.NONE}
    assert (fetch(b, 0).high_watermark, fetch(b, 1).last_stable_offset) == (3, 2)   # nothing written, still open
    produce(b, txn_batch([b"z"], pid=5, epoch=1), partition=1)
    assert markers(b, 5, True, parts=[("t", 1)], coordinator_epoch=0) == {("t", 1): E.INVALID_PRODUCER_EPOCH}
    assert markers(b, 5, False, coordinator_epoch=3) == {("t", 0): E.NONE}
    assert (fetch(b, 0).high_watermark, fetch(b, 1).last_stable_offset) == (4, 4)


def test_a_marker_wakes_a_read_committed_long_poll(b):
    produce(b, txn_batch([b"x"], pid=6))
    loop = b.loop
    body = {"replica_id": -1, "max_wait": 5000, "min_bytes": 1, "max_bytes": 1 << 20, "isolation_level": 1,
            "session_id": 0, "session_epoch": -1, "rack_id": "", "forgotten_topics_data": [],
            "topics": [{"topic": "t", "partitions": [{"partition": 0, "fetch_offset": 0, "partition_max_bytes": 1 << 20}]}]}
    frame = b.frame(1, 12, body, 99)

    async def both():
        waiting = asyncio.ensure_future(b.registry.dispatch(frame, b.owner, "in-process", *b.extra))
        await asyncio.sleep(0.2)
        assert not waiting.done()
        started = loop.time()
        body27 = {"markers": [{"producer_id": 6, "producer_epoch": 0, "transaction_result": True,
                               "coordinator_epoch": 0, "topics": [{"name": "t", "partition_indexes": [0]}]}]}
        await b.registry.dispatch(b.frame(27, 1, body27, 100), b.owner, "in-process", *b.extra)
        await waiting
        return loop.time() - started

    assert loop.run_until_complete(both()) < 2.0


# ---- TxnOffsetCommit and OffsetFetch require_stable ---------------------------------------------

def txn_commit(b: InProcess, offset: int, pid: int = 11, epoch: int = 0, version: int = 3, group: str = "g", **kw):
    body = {"transactional_id": "tx", "group_id": group, "producer_id": pid, "producer_epoch": epoch,
            "generation_id": -1, "member_id": "", "group_instance_id": None,
            "topics": [{"name": "t", "partitions": [{"partition_index": 0, "committed_offset": offset,
                                                     "committed_leader_epoch": -1, "committed_metadata": "m"}]}]}
    body.update(kw)
    resp = b.call(28, version, body)
    return int(resp.topics[0].partitions[0].error_code)


def offset_fetch(b: InProcess, stable: bool, group: str = "g"):
    resp = b.call(9, 8, {"groups": [{"group_id": group, "topics": [{"name": "t", "partition_indexes": [0]}]}],
                         "require_stable": stable})
    p = resp.groups[0].topics[0].partitions[0]
    return p.committed_offset, int(p.error_code)


def offsets_partition(b: InProcess, group: str = "g") -> int:
    return b.owner.offsets.partition_for(group)


@pytest.mark.parametrize("version", [0, 2, 3, 5])
def test_txn_offset_commit_is_pending_until_its_commit_marker(b, version):
    assert txn_commit(b, 42, version=version) == E.NONE
    assert offset_fetch(b, stable=False) == (-1, E.NONE)            # not committed yet
    assert offset_fetch(b, stable=True) == (-1, E.UNSTABLE_OFFSET_COMMIT)
    assert markers(b, 11, True, parts=[("__consumer_offsets", offsets_partition(b))]) == {
        ("__consumer_offsets", offsets_partition(b)): E.NONE}
    assert offset_fetch(b, stable=True) == (42, E.NONE)


def test_txn_offset_commit_dropped_by_an_abort_and_older_commit_kept(b):
    b.call(8, 8, {"group_id": "g", "generation_id_or_member_epoch": -1, "member_id": "", "group_instance_id": None,
                  "topics": [{"name": "t", "partitions": [{"partition_index": 0, "committed_offset": 5,
                                                           "committed_metadata": ""}]}]})
    assert txn_commit(b, 42) == E.NONE
    markers(b, 11, False, parts=[("__consumer_offsets", offsets_partition(b))])
    assert offset_fetch(b, stable=True) == (5, E.NONE)


def test_txn_offset_commit_checks(b):
    assert txn_commit(b, 1, group="") == E.INVALID_GROUP_ID
    assert txn_commit(b, 1, generation_id=3, member_id="m") == E.ILLEGAL_GENERATION   # no such group
    # a stale producer epoch: the partition saw epoch 2 of this producer already
    assert txn_commit(b, 1, pid=12, epoch=2) == E.NONE
    markers(b, 12, True, epoch=2, parts=[("__consumer_offsets", offsets_partition(b))])
    assert txn_commit(b, 2, pid=12, epoch=1) == E.INVALID_PRODUCER_EPOCH
    resp = b.call(28, 3, {"transactional_id": "tx", "group_id": "g", "producer_id": 12, "producer_epoch": 2,
                          "generation_id": -1, "member_id": "", "group_instance_id": None,
                          "topics": [{"name": "ghost", "partitions": [{"partition_index": 0, "committed_offset": 1,
                                                                       "committed_metadata": ""}]}]})
    assert int(resp.topics[0].partitions[0].error_code) == E.UNKNOWN_TOPIC_OR_PARTITION


def test_read_committed_from_past_the_last_stable_offset_reads_nothing_yet(b):
    produce(b, txn_batch([b"open"], pid=13))                                   # 0, open
    produce(b, encode_batch(0, [b"after"]), txn_id=None)                        # 1
    p = fetch(b, 1, offset=1)
    assert int(p.error_code) == E.NONE and (p.last_stable_offset, p.high_watermark) == (0, 2)
    assert consumed(p, 1) == []
    markers(b, 13, False)
    p = fetch(b, 1, offset=1)
    # the aborted transaction overlaps the range (its marker is at 2), so it is listed, as Kafka lists it;
    # the plain record is not part of it
    assert consumed(p, 1) == [b"after"] and [(a.producer_id, a.first_offset) for a in p.aborted_transactions] == [(13, 0)]


def test_the_transactional_look_ahead_stops_on_garbage():
    from sandbox.broker.handlers.k00_produce import has_transactional_batch

    assert not has_transactional_batch(bytes(30)) and not has_transactional_batch(b"")
    assert not has_transactional_batch(b"\xff" * 8 + (-100).to_bytes(4, "big", signed=True) + bytes(20))
    two = encode_batch(0, [b"a"]) + txn_batch([b"b"], pid=1)
    assert has_transactional_batch(two) and not has_transactional_batch(encode_batch(0, [b"a"]) * 2)


def test_a_transactional_write_outside_the_ongoing_transaction_is_refused(b):
    """KIP-890 part 1 where this broker coordinates the id: only partitions the transaction holds
    take its writes, so a late or zombie write cannot open a transaction no marker would end."""
    pid, epoch = b.begin_txn("verified", "t", [0])
    ok = b.call(0, 9, {"transactional_id": "verified", "acks": -1, "timeout": 5000, "topic_data": [
        {"name": "t", "partition_data": [{"index": 0, "records": txn_batch([b"in"], pid, epoch)}]}]})
    assert int(ok.responses[0].partition_responses[0].error_code) == E.NONE

    def write(partition: int, version: int, seq: int):
        resp = b.call(0, version, {"transactional_id": "verified", "acks": -1, "timeout": 5000, "topic_data": [
            {"name": "t", "partition_data": [{"index": partition, "records": txn_batch([b"x"], pid, epoch, seq)}]}]})
        return int(resp.responses[0].partition_responses[0].error_code)
    assert write(1, 9, 0) == E.INVALID_TXN_STATE          # never added: refused, nothing written
    assert write(1, 11, 0) == E.TRANSACTION_ABORTABLE     # the error newer clients understand
    end = b.call(26, 3, {"transactional_id": "verified", "producer_id": pid, "producer_epoch": epoch,
                         "committed": True})
    assert int(end.error_code) == E.NONE
    # after EndTxn, markers going out: retriable, as Kafka answers CONCURRENT_TRANSACTIONS there
    assert write(0, 9, 1) == E.NOT_ENOUGH_REPLICAS
    b.loop.run_until_complete(asyncio.sleep(0.2))        # markers written, CompleteCommit
    assert write(0, 9, 1) == E.INVALID_TXN_STATE          # the retry: the transaction is over
    p1 = fetch_partition(b, 1)
    assert p1.high_watermark == 0 and p1.last_stable_offset == 0   # partition 1 never took a record
    p0 = fetch(b, 1)
    assert consumed(p0, 1) == [b"in"] and p0.last_stable_offset == p0.high_watermark == 2


def fetch_partition(b: InProcess, partition: int):
    resp = b.call(1, 12, {"replica_id": -1, "max_wait": 0, "min_bytes": 1, "max_bytes": 1 << 20,
                          "isolation_level": 1, "session_id": 0, "session_epoch": -1, "rack_id": "",
                          "forgotten_topics_data": [], "topics": [{"topic": "t", "partitions": [
                              {"partition": partition, "fetch_offset": 0, "partition_max_bytes": 1 << 20}]}]})
    return resp.responses[0].partitions[0]


def test_transaction_state_is_fsynced_once_per_tick_not_per_request(b, monkeypatch):
    """As in Kafka, a state change is answered once written (a killed broker keeps it; the
    integration tests SIGKILL one), not after an fsync per request; the coordinator's tick
    fsyncs every __transaction_state partition written since, once each."""
    from sandbox.broker.internal_topics import TXN_TOPIC
    from sandbox.log.segment import Segment
    synced: list[str] = []
    monkeypatch.setattr(Segment, "fsync", lambda seg: synced.append(str(seg.log_path)))
    pids = [b.begin_txn(tid, "t", [0]) for tid in ("a", "b", "c")]
    assert synced == []   # init + add partitions for three ids, no fsync on the request path
    index = {b.owner.txns.store.partition_for(tid) for tid in ("a", "b", "c")}
    b.loop.run_until_complete(b.owner.txns.tick())
    assert sorted(s.split("/")[-2] for s in synced) == sorted(f"{TXN_TOPIC}-{i}" for i in index)
    synced.clear()
    b.loop.run_until_complete(b.owner.txns.tick())
    assert synced == []   # nothing written since
    assert pids[0][0] >= 0


def test_the_next_transaction_waits_for_the_markers_of_the_last_one_instead_of_a_retry(b):
    """A producer that begins its next transaction while the coordinator still writes the last
    one's markers is answered once they are written, not refused with CONCURRENT_TRANSACTIONS
    (which costs librdkafka a 20 ms backoff and Java 100 ms)."""
    pid, epoch = b.begin_txn("w", "t", [0])
    assert produce(b, txn_batch([b"a"], pid, epoch), txn_id="w").error_code == E.NONE
    end = b.call(26, 3, {"transactional_id": "w", "producer_id": pid, "producer_epoch": epoch, "committed": True})
    assert int(end.error_code) == E.NONE   # answered at once: the markers are not written yet
    assert b.owner.txns.machine.get("w").state == PREPARE_COMMIT
    add = b.call(24, 3, {"v3_and_below_transactional_id": "w", "v3_and_below_producer_id": pid,
                         "v3_and_below_producer_epoch": epoch,
                         "v3_and_below_topics": [{"name": "t", "partitions": [1]}]})
    assert int(add.results_by_topic_v3_and_below[0].results_by_partition[0].partition_error_code) == E.NONE
    meta = b.owner.txns.machine.get("w")
    assert meta.state == ONGOING and meta.partitions == {("t", 1)}
    assert consumed(fetch(b, 1), 1) == [b"a"]   # the commit marker was written first


def test_a_txn_offset_commit_outside_the_ongoing_transaction_is_refused(b):
    """KIP-890 part 1 for TxnOffsetCommit: the group's __consumer_offsets partition must be in the
    producer's ongoing transaction (AddOffsetsToTxn). A late commit, arriving after its transaction
    ended, was written and stayed pending for good: OffsetFetch with require_stable then answered
    UNSTABLE_OFFSET_COMMIT for ever (found by review)."""
    pid, epoch = b.begin_txn("eos", "t", [0])

    def commit(offset: int, version: int = 3) -> int:
        body = {"transactional_id": "eos", "group_id": "g", "producer_id": pid, "producer_epoch": epoch,
                "generation_id": -1, "member_id": "", "group_instance_id": None,
                "topics": [{"name": "t", "partitions": [{"partition_index": 0, "committed_offset": offset,
                                                         "committed_leader_epoch": -1, "committed_metadata": ""}]}]}
        return int(b.call(28, version, body).topics[0].partitions[0].error_code)
    assert commit(7) == E.INVALID_TXN_STATE               # AddOffsetsToTxn not sent: refused
    assert commit(7, version=5) == E.TRANSACTION_ABORTABLE
    assert offset_fetch(b, stable=True) == (-1, E.NONE)   # nothing left pending
    add = b.call(25, 3, {"transactional_id": "eos", "producer_id": pid, "producer_epoch": epoch, "group_id": "g"})
    assert int(add.error_code) == E.NONE
    assert commit(7) == E.NONE and commit(8) == E.NONE    # the second: open on the partition already
    assert offset_fetch(b, stable=True) == (-1, E.UNSTABLE_OFFSET_COMMIT)
    end = b.call(26, 3, {"transactional_id": "eos", "producer_id": pid, "producer_epoch": epoch, "committed": True})
    assert int(end.error_code) == E.NONE
    b.loop.run_until_complete(asyncio.sleep(0.2))          # markers written, CompleteCommit
    assert offset_fetch(b, stable=True) == (8, E.NONE)
    assert commit(9) == E.INVALID_TXN_STATE                # late: its transaction is over
    assert offset_fetch(b, stable=True) == (8, E.NONE)     # and it holds nothing back


def test_client_batches_kafka_refuses_as_invalid_records(b):
    """LogValidator.validateBatch's rules for a client's batch: a producer id needs a sequence,
    and the record count must match the batch's offset range."""
    import struct
    from sandbox.log.batch import compute_crc
    no_seq = build_batch([(None, b"x")], producer_id=3, producer_epoch=0, base_sequence=-1)
    p = produce(b, no_seq, txn_id=None)
    assert int(p.error_code) == E.INVALID_RECORD and "sequence" in p.error_message
    wide = bytearray(build_batch([(None, b"x")], producer_id=4, producer_epoch=0, base_sequence=0))
    struct.pack_into(">i", wide, 23, 4)                        # lastOffsetDelta 4 for 1 record
    struct.pack_into(">I", wide, 17, compute_crc(wide, 0, len(wide)))
    p = produce(b, bytes(wide), txn_id=None)
    assert int(p.error_code) == E.INVALID_RECORD and "count of records" in p.error_message
    assert fetch(b, 0).high_watermark == 0                      # neither was written
    # the producer's real batch is taken at sequence 0 afterwards
    ok = build_batch([(None, b"y")], producer_id=4, producer_epoch=0, base_sequence=0)
    assert int(produce(b, ok, txn_id=None).error_code) == E.NONE


def test_a_plain_batch_from_a_producer_with_its_transaction_open_is_invalid_txn_state(b):
    assert int(produce(b, txn_batch([b"t"], pid=7)).error_code) == E.NONE
    plain = build_batch([(None, b"p")], producer_id=7, producer_epoch=0, base_sequence=1)
    assert int(produce(b, plain, txn_id=None).error_code) == E.INVALID_TXN_STATE
    assert markers(b, 7, True) == {("t", 0): E.NONE}
    assert int(produce(b, plain, txn_id=None).error_code) == E.NONE
    assert consumed(fetch(b, 1), 1) == [b"t", b"p"]


def test_an_idle_producer_is_forgotten_after_producer_id_expiration_ms_unless_its_transaction_is_open(b):
    """Kafka's producer.id.expiration.ms (1 day): the broker's retention check forgets a producer
    whose last batch here is older, so a sandbox that runs for weeks does not keep (and snapshot
    every second) every producer id it ever saw."""
    import time
    state = b.owner
    day = state.config.producer_id_expiration_ms
    assert day == 24 * 3600 * 1000
    old = int(time.time() * 1000) - day - 60_000
    idle = build_batch([(None, b"i")], producer_id=11, producer_epoch=0, base_sequence=0, timestamp_ms=old)
    fresh = build_batch([(None, b"f")], producer_id=12, producer_epoch=0, base_sequence=0)
    open_txn = build_batch([(None, b"o")], producer_id=13, producer_epoch=0, base_sequence=0, timestamp_ms=old,
                           attributes=ATTR_TRANSACTIONAL)
    assert int(produce(b, idle, txn_id=None).error_code) == E.NONE
    assert int(produce(b, fresh, txn_id=None).error_code) == E.NONE
    assert int(produce(b, open_txn).error_code) == E.NONE

    def producers():
        resp = b.call(61, 0, {"topics": [{"name": "t", "partition_indexes": [0]}]})
        return sorted(p.producer_id for p in resp.topics[0].partitions[0].active_producers)
    assert producers() == [11, 12, 13]
    state.apply_retention()
    assert producers() == [12, 13]
    # the forgotten one is an unknown producer again: any sequence is taken, as Kafka takes it
    later = build_batch([(None, b"l")], producer_id=11, producer_epoch=0, base_sequence=7)
    assert int(produce(b, later, txn_id=None).error_code) == E.NONE


def test_an_expired_producer_stays_forgotten_after_a_restart(tmp_path):
    import time
    from sandbox.log import LogConfig, PartitionLog
    old = int(time.time() * 1000) - 2 * 24 * 3600 * 1000
    log = PartitionLog(tmp_path / "t-0", LogConfig())
    log.append(build_batch([(None, b"i")], producer_id=11, producer_epoch=0, base_sequence=0, timestamp_ms=old))
    log.close()                                    # its snapshot holds producer 11
    log = PartitionLog(tmp_path / "t-0", LogConfig(), recovery_point=1)
    assert log.housekeeping.expire_producers(int(time.time() * 1000), 24 * 3600 * 1000) == 1
    log.close()
    log = PartitionLog(tmp_path / "t-0", LogConfig(), recovery_point=1)
    assert log.housekeeping.active_producers() == []
    log.close()
