"""Transactions on a real 3-broker cluster: one transaction spans partitions led by every broker
(markers travel to the other leaders by WriteTxnMarkers), the transaction state is replicated, and
when the broker coordinating the transactional id is SIGKILLed with a transaction open, another
broker takes over its `__transaction_state` partition: the same producer commits the next
transactions, and read_committed shows every committed one whole and nothing of the aborted one."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import Consumer, TopicPartition

from sandbox.broker.offsets_records import partition_for

from .kit import producer, unique
from .replication_kit import Cluster, cluster3  # noqa: F401 - the fixture

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

TXN_TOPIC = "__transaction_state"


def read_committed(cluster: Cluster, topic: str, partitions: int, isolation: str = "read_committed") -> list[bytes]:
    c = Consumer({"bootstrap.servers": cluster.bootstrap, "group.id": unique("r"), "enable.partition.eof": True,
                  "isolation.level": isolation, "enable.auto.commit": False, "fetch.wait.max.ms": 100})
    c.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    out, ends = [], set()
    deadline = time.monotonic() + 60
    try:
        while len(ends) < partitions:
            assert time.monotonic() < deadline, f"only partitions {sorted(ends)} reached their end"
            m = c.poll(0.5)
            if m is None:
                continue
            if m.error():
                if m.error().code() == m.error()._PARTITION_EOF:
                    ends.add(m.partition())
                continue
            out.append(m.value())
    finally:
        c.close()
    return out


def three_leaders(cluster: Cluster, topic: str) -> None:
    """A topic of 3 partitions, RF 3, min ISR 2, partition i led by broker i+1, all in sync."""
    from kafka.admin import KafkaAdminClient, NewTopic as KNewTopic
    ka = KafkaAdminClient(bootstrap_servers=cluster.bootstrap, request_timeout_ms=15000)
    try:
        ka.create_topics([KNewTopic(topic, -1, -1, replica_assignments={0: [1, 2, 3], 1: [2, 3, 1], 2: [3, 1, 2]},
                                    topic_configs={"min.insync.replicas": "2"})])
    finally:
        ka.close()
    cluster.wait_in_sync(topic, 3, timeout=30)


def test_a_transaction_over_three_leaders_survives_losing_its_coordinator(cluster3):
    cluster = cluster3
    topic = unique("rtx")
    admin = cluster.admin()
    three_leaders(cluster, topic)   # markers go to all three
    assert [cluster.partition(topic, i)[0] for i in range(3)] == [1, 2, 3]
    txn_id = unique("rtx-id")
    p = producer(cluster.bootstrap, **{"transactional.id": txn_id, "transaction.timeout.ms": 60000,
                                       "acks": "all"})
    p.init_transactions(60)
    committed: list[bytes] = []

    def transaction(tag: str, commit: bool) -> None:
        p.begin_transaction()
        values = [f"{tag}-{i}".encode() for i in range(3)]
        for i, v in enumerate(values):
            p.produce(topic, value=v, partition=i)
        assert p.flush(30) == 0
        if commit:
            p.commit_transaction(60)
            committed.extend(values)
        else:
            p.abort_transaction(60)

    transaction("first", True)
    transaction("second", False)
    state_md = admin.list_topics(topic=TXN_TOPIC, timeout=10).topics[TXN_TOPIC]
    assert len(state_md.partitions) == 10 and all(len(x.replicas) == 3 for x in state_md.partitions.values())
    coordinator = cluster.partition(TXN_TOPIC, partition_for(txn_id, 10))[0]

    # an open transaction when its coordinator dies: the producer carries on with the new one
    p.begin_transaction()
    for i in range(3):
        p.produce(topic, value=f"open-{i}".encode(), partition=i)
    assert p.flush(30) == 0
    cluster.kill(coordinator)
    live = set(cluster.ports) - {coordinator}
    cluster.wait_for(lambda: cluster.partition(TXN_TOPIC, partition_for(txn_id, 10))[0] in live, 30,
                     "a live broker leading the transactional id's partition")
    cluster.wait_for(lambda: all(cluster.partition(topic, i)[0] in live for i in range(3)), 30,
                     "every partition led by a live broker")
    p.commit_transaction(90)
    committed.extend(f"open-{i}".encode() for i in range(3))
    transaction("after", True)

    assert sorted(read_committed(cluster, topic, 3)) == sorted(committed)
    every = read_committed(cluster, topic, 3, "read_uncommitted")
    assert sorted(every) == sorted(committed + [f"second-{i}".encode() for i in range(3)])


def _until_none(call, what: str, timeout: float = 30.0):
    """Ask again while the answer is a retriable coordinator error (the topic is being made)."""
    from sandbox.protocol import errors as E
    deadline = time.monotonic() + timeout
    while True:
        resp, code = call()
        if code not in (E.COORDINATOR_LOAD_IN_PROGRESS, E.COORDINATOR_NOT_AVAILABLE, E.NOT_COORDINATOR,
                        E.CONCURRENT_TRANSACTIONS) or time.monotonic() > deadline:
            assert code == E.NONE, f"{what}: error {code}"
            return resp
        time.sleep(0.2)


def test_a_late_transactional_write_is_refused_where_another_broker_coordinates_the_id(cluster3):
    """KIP-890 part 1 across brokers: after a transaction was aborted, a transactional write of the
    same producer epoch to a partition it no longer holds (a late or zombie write) is refused by
    that partition's leader after asking the coordinator on another broker, instead of opening a
    transaction no marker ever ends (read_committed consumers would stop there for good). Raw
    protocol, since real clients do not send such a write on purpose."""
    from sandbox.log.batch import ATTR_TRANSACTIONAL, build_batch
    from sandbox.protocol import build, errors as E, request_class
    from rawclient import RawClient

    cluster = cluster3
    topic = unique("late")
    three_leaders(cluster, topic)
    tid = unique("late-id")
    with RawClient(cluster.ports[1]) as any_broker:
        found = _until_none(lambda: (r := any_broker.request(build(request_class(10, 3), {
            "key": tid, "key_type": 1}))) and (r, int(r.error_code)), "FindCoordinator")
    coordinator = int(found.node_id)
    index = next(i for i in range(3) if cluster.partition(topic, i)[0] != coordinator)
    leader = cluster.partition(topic, index)[0]
    with RawClient(cluster.ports[coordinator]) as coord, RawClient(cluster.ports[leader]) as lead:
        init = _until_none(lambda: (r := coord.request(build(request_class(22, 4), {
            "transactional_id": tid, "transaction_timeout": 60000, "producer_id": -1,
            "producer_epoch": -1}))) and (r, int(r.error_code)), "InitProducerId")
        pid, epoch = int(init.producer_id), int(init.producer_epoch)

        def produce(seq: int, version: int) -> int:
            batch = build_batch([(None, f"v{seq}".encode())], producer_id=pid, producer_epoch=epoch,
                                base_sequence=seq, attributes=ATTR_TRANSACTIONAL)
            r = lead.request(build(request_class(0, version), {
                "transactional_id": tid, "acks": -1, "timeout": 10000,
                "topic_data": [{"name": topic, "partition_data": [{"index": index, "records": batch}]}]}))
            return int(r.responses[0].partition_responses[0].error_code)

        def offsets(isolation: int) -> int:
            r = lead.request(build(request_class(2, 5), {"replica_id": -1, "isolation_level": isolation, "topics": [
                {"name": topic, "partitions": [{"partition_index": index, "current_leader_epoch": -1,
                                                "timestamp": -1}]}]}))
            return int(r.topics[0].partitions[0].offset)

        added = _until_none(lambda: (r := coord.request(build(request_class(24, 3), {
            "v3_and_below_transactional_id": tid, "v3_and_below_producer_id": pid,
            "v3_and_below_producer_epoch": epoch,
            "v3_and_below_topics": [{"name": topic, "partitions": [index]}]}))) and
            (r, int(r.results_by_topic_v3_and_below[0].results_by_partition[0].partition_error_code)),
            "AddPartitionsToTxn")
        assert added is not None
        assert produce(0, 9) == E.NONE            # the partition is in the transaction: written
        _until_none(lambda: (r := coord.request(build(request_class(26, 3), {
            "transactional_id": tid, "producer_id": pid, "producer_epoch": epoch, "committed": False})))
            and (r, int(r.error_code)), "EndTxn")
        cluster.wait_for(lambda: offsets(1) == offsets(0) == 2, 20, "the abort marker written, the LSO past it")
        # until the coordinator has written the abort's completion (markers first), it answers the
        # check CONCURRENT_TRANSACTIONS, which a Produce answers as the retriable
        # NOT_ENOUGH_REPLICAS, as Kafka's does (seen in CI): a producer asks again
        late, deadline = produce(1, 9), time.monotonic() + 20
        while late == E.NOT_ENOUGH_REPLICAS and time.monotonic() < deadline:
            time.sleep(0.2)
            late = produce(1, 9)
        assert late == E.INVALID_TXN_STATE                 # not added to any transaction: refused
        assert produce(1, 11) == E.TRANSACTION_ABORTABLE   # from v11 the producer can abort and go on
        assert offsets(0) == offsets(1) == 2               # nothing written, nothing hanging


def test_pipelined_transactional_writes_where_another_broker_coordinates_the_id_keep_their_order(cluster3):
    """Found by confluent-kafka's own suite: at the start of each transaction, the first Produce
    requests to a partition whose leader does not coordinate the transactional id wait for the
    coordinator's verification (KIP-890 part 1); one pipelined behind them, arriving after the
    first had opened the transaction there, was appended at once, ahead of those still held
    ("expected sequence 2, got 6": OUT_OF_ORDER_SEQUENCE_NUMBER, fatal for librdkafka's
    transactional producer)."""
    from sandbox.protocol import build, request_class
    from rawclient import RawClient

    cluster = cluster3
    topic = unique("order")
    three_leaders(cluster, topic)
    tid = unique("order-id")
    p = producer(cluster.bootstrap, **{"transactional.id": tid, "linger.ms": 0, "batch.num.messages": 2,
                                       "max.in.flight": 5, "acks": "all"})
    p.init_transactions(60)
    with RawClient(cluster.ports[1]) as any_broker:
        found = _until_none(lambda: (r := any_broker.request(build(request_class(10, 3), {
            "key": tid, "key_type": 1}))) and (r, int(r.error_code)), "FindCoordinator")
    coordinator = int(found.node_id)
    index = next(i for i in range(3) if cluster.partition(topic, i)[0] != coordinator)
    errors, sent = [], []
    for t in range(8):
        p.begin_transaction()
        for i in range(100):
            value = b"%d-%03d" % (t, i)
            sent.append(value)
            p.produce(topic, value, partition=index, on_delivery=lambda err, msg: err and errors.append(str(err)))
        assert p.flush(30) == 0
        p.commit_transaction(30)
    assert errors == []
    got = read_committed(cluster, topic, 3)
    assert got == sent   # one partition: every record once, in the order sent
    leader = cluster.partition(topic, index)[0]
    assert "expected sequence" not in cluster.log_text(f"broker-{leader}")


def _coordinator(port: int, key: str, key_type: int) -> int:
    from sandbox.protocol import build, request_class
    from rawclient import RawClient
    with RawClient(port) as c:
        found = _until_none(lambda: (r := c.request(build(request_class(10, 3), {
            "key": key, "key_type": key_type}))) and (r, int(r.error_code)), "FindCoordinator")
    return int(found.node_id)


def test_offsets_sent_to_a_transaction_where_another_broker_coordinates_the_group(cluster3):
    """Exactly-once consume-transform-produce (confluent-kafka's send_offsets_to_transaction) with
    the group's coordinator on another broker than the transactional id's: each TxnOffsetCommit is
    checked with the transaction's coordinator there (KIP-890 part 1) and goes in; the offsets are
    committed with the transactions. Then a late TxnOffsetCommit of the same producer, after its
    transaction ended, is refused (INVALID_TXN_STATE) instead of staying pending, which made
    OffsetFetch with require_stable answer UNSTABLE_OFFSET_COMMIT for good."""
    from sandbox.protocol import build, errors as E, request_class
    from rawclient import RawClient
    from .kit import consumer

    cluster = cluster3
    src, out = unique("eos-in"), unique("eos-out")
    three_leaders(cluster, src)
    three_leaders(cluster, out)
    feed = producer(cluster.bootstrap, acks="all")
    for i in range(30):
        feed.produce(src, value=f"r{i}".encode(), partition=i % 3)
    assert feed.flush(30) == 0
    tid = unique("eos-id")
    txn_coord = _coordinator(cluster.ports[1], tid, 1)
    group = next(g for g in (unique("eos-g") for _ in range(200))
                 if _coordinator(cluster.ports[1], g, 0) != txn_coord)
    group_coord = _coordinator(cluster.ports[1], group, 0)
    c = consumer(cluster.bootstrap, group, **{"isolation.level": "read_committed", "enable.auto.commit": False,
                                              "auto.offset.reset": "earliest"})
    p = producer(cluster.bootstrap, **{"transactional.id": tid, "acks": "all"})
    p.init_transactions(60)
    c.subscribe([src])
    done, deadline = 0, time.monotonic() + 90
    try:
        while done < 30:
            assert time.monotonic() < deadline, f"only {done} of 30 records went through"
            msgs = [m for m in c.consume(10, 1.0) if not m.error()]
            if not msgs:
                continue
            p.begin_transaction()
            for m in msgs:
                p.produce(out, value=m.value().upper(), partition=m.partition())
            p.send_offsets_to_transaction(c.position(c.assignment()), c.consumer_group_metadata(), 30)
            p.commit_transaction(60)
            done += len(msgs)
        committed = c.committed([TopicPartition(src, i) for i in range(3)], 30)
    finally:
        c.close()
    assert sorted(tp.offset for tp in committed) == [10, 10, 10]
    assert sorted(read_committed(cluster, out, 3)) == sorted(f"R{i}".encode() for i in range(30))

    # a late TxnOffsetCommit of the producer's last epoch (the client keeps its id and epoch)
    with RawClient(cluster.ports[txn_coord]) as tc:
        state = _until_none(lambda: (r := tc.request(build(request_class(65, 0), {"transactional_ids": [tid]})))
                            and (r, int(r.transaction_states[0].error_code)), "DescribeTransactions")
    pid, epoch = int(state.transaction_states[0].producer_id), int(state.transaction_states[0].producer_epoch)
    with RawClient(cluster.ports[group_coord]) as gc:
        late = gc.request(build(request_class(28, 3), {
            "transactional_id": tid, "group_id": group, "producer_id": pid, "producer_epoch": epoch,
            "generation_id": -1, "member_id": "", "group_instance_id": None,
            "topics": [{"name": src, "partitions": [{"partition_index": 0, "committed_offset": 3,
                                                     "committed_leader_epoch": -1, "committed_metadata": ""}]}]}))
        assert int(late.topics[0].partitions[0].error_code) == E.INVALID_TXN_STATE
        fetched = gc.request(build(request_class(9, 8), {"groups": [{"group_id": group, "topics": [
            {"name": src, "partition_indexes": [0]}]}], "require_stable": True}))
        part = fetched.groups[0].topics[0].partitions[0]
        assert (int(part.error_code), int(part.committed_offset)) == (E.NONE, 10)
