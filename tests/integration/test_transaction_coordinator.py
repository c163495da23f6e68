"""The transaction coordinator with confluent-kafka against a real broker process: commit and
abort across partitions (markers counted in the raw log), fencing by a second producer with the
same transactional.id, and the coordinator's state surviving a SIGKILL and restart."""

from __future__ import annotations

import pytest
from confluent_kafka import KafkaException, TopicPartition

from helpers import wait_for
from sandbox.log.batch import CONTROL_ABORT, CONTROL_COMMIT, control_type, iter_batches

from .kit import consume_topic, consumer, create_topic, producer, unique

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


def markers(data_dir, topic: str, partition: int) -> list[str]:
    """The control batches of one partition's log, oldest first: 'commit' / 'abort'."""
    out = []
    for seg in sorted((data_dir / f"{topic}-{partition}").glob("*.log")):
        buf = seg.read_bytes()
        for pos, h in iter_batches(buf):
            if h.is_control:
                out.append({CONTROL_COMMIT: "commit", CONTROL_ABORT: "abort"}.get(control_type(buf, pos, h), "?"))
    return out


def txn_producer(bootstrap: str, tid: str, **conf):
    p = producer(bootstrap, **{"transactional.id": tid, "transaction.timeout.ms": 60000, **conf})
    p.init_transactions(30)
    return p


def send(p, topic: str, values: list[tuple[int, bytes]]) -> None:
    for part, v in values:
        p.produce(topic, value=v, partition=part)
    assert p.flush(30) == 0


def wait_ends(bootstrap: str, topic: str, ends: dict[int, int]) -> None:
    """Until each partition's high watermark is what the records plus the markers make it."""
    c = consumer(bootstrap, unique("g"))
    try:
        def reached():
            got = {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=5)[1] for p in ends}
            return got if got == ends else None
        wait_for(reached, 30, what=f"high watermarks {ends}")
    finally:
        c.close()


def test_commit_then_abort_writes_a_marker_to_every_partition(broker):
    t = unique("txn")
    create_topic(broker.bootstrap, t, 2)
    p = txn_producer(broker.bootstrap, unique("tid"))
    p.begin_transaction()
    send(p, t, [(0, b"c0"), (1, b"c1"), (0, b"c2")])
    p.commit_transaction(30)
    p.begin_transaction()
    send(p, t, [(0, b"a0"), (1, b"a1")])
    p.abort_transaction(30)
    wait_ends(broker.bootstrap, t, {0: 5, 1: 4})   # records and one marker per transaction
    # the coordinators' topic is listed with every topic, as Kafka lists it (internal)
    from kafka import KafkaAdminClient
    ka = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=10000)
    try:
        listed = {d["name"]: d for d in ka.describe_topics()}
        assert listed["__transaction_state"]["is_internal"] is True
        assert len(listed["__transaction_state"]["partitions"]) == 10
    finally:
        ka.close()
    values = sorted(m.value() for m in consume_topic(broker.bootstrap, t, 5, timeout=30,
                                                     **{"isolation.level": "read_uncommitted"}))
    assert values == [b"a0", b"a1", b"c0", b"c1", b"c2"]
    p.flush(5)
    broker.stop()
    assert markers(broker.data_dir, t, 0) == ["commit", "abort"]
    assert markers(broker.data_dir, t, 1) == ["commit", "abort"]


def test_a_second_producer_with_the_same_id_fences_the_first(broker):
    t = unique("fence")
    tid = unique("tid")
    create_topic(broker.bootstrap, t, 2)
    first = txn_producer(broker.bootstrap, tid)
    first.begin_transaction()
    send(first, t, [(0, b"first-0"), (1, b"first-1")])
    second = txn_producer(broker.bootstrap, tid)   # aborts the first's transaction, then gets a newer epoch
    with pytest.raises(KafkaException) as err:
        first.commit_transaction(30)
    assert err.value.args[0].fatal(), err.value.args[0]
    second.begin_transaction()
    send(second, t, [(0, b"second-0")])
    second.commit_transaction(30)
    wait_ends(broker.bootstrap, t, {0: 4, 1: 2})
    broker.stop()
    assert markers(broker.data_dir, t, 0) == ["abort", "commit"]
    assert markers(broker.data_dir, t, 1) == ["abort"]


def test_the_coordinator_keeps_an_open_transaction_across_a_sigkill(broker):
    t = unique("crash")
    tid = unique("tid")
    create_topic(broker.bootstrap, t, 2)
    p = txn_producer(broker.bootstrap, tid, **{"message.timeout.ms": 60000})
    p.begin_transaction()
    send(p, t, [(0, b"x0"), (1, b"x1")])
    broker.kill()
    broker.start()
    p.commit_transaction(60)   # the restarted coordinator read the Ongoing transaction back
    wait_ends(broker.bootstrap, t, {0: 2, 1: 2})
    p.begin_transaction()
    send(p, t, [(1, b"y1")])
    p.commit_transaction(30)
    wait_ends(broker.bootstrap, t, {0: 2, 1: 4})
    broker.stop()
    assert markers(broker.data_dir, t, 0) == ["commit"]
    assert markers(broker.data_dir, t, 1) == ["commit", "commit"]
