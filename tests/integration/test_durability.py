"""What survives a broker restart or a SIGKILL: committed offsets, acknowledged records, topics;
and ListOffsets by timestamp."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import TopicPartition
from confluent_kafka.admin import ConfigResource, ResourceType

from .kit import (admin, consume_n, consume_topic, consumer, create_topic, produce_all, producer, unique,
                  wait_topic)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(150)]


def test_committed_offsets_survive_restart(broker):
    t = unique("resume")
    group = unique("grp")
    create_topic(broker.bootstrap, t, 2)
    per_part = 50
    p = producer(broker.bootstrap)
    produce_all(p, t, [(f"k{i}".encode(), f"p{i % 2}-{i // 2}".encode(), {"partition": i % 2})
                       for i in range(2 * per_part)])

    commit_at = {0: 20, 1: 30}
    c = consumer(broker.bootstrap, group)
    try:
        c.subscribe([t])
        msgs = consume_n(c, 2 * per_part, timeout=30, settle=0.2)
        assert len(msgs) == 2 * per_part
        # "processed" the first records of each partition: commit just those
        c.commit(offsets=[TopicPartition(t, part, off) for part, off in commit_at.items()], asynchronous=False)
        got = c.committed([TopicPartition(t, 0), TopicPartition(t, 1)], timeout=10)
        assert {tp.partition: tp.offset for tp in got} == commit_at
    finally:
        c.close()

    broker.restart()

    c = consumer(broker.bootstrap, group)  # auto.offset.reset=earliest: a lost commit restarts at 0
    try:
        got = c.committed([TopicPartition(t, 0), TopicPartition(t, 1)], timeout=10)
        assert {tp.partition: tp.offset for tp in got} == commit_at
        c.subscribe([t])
        expected = sum(per_part - off for off in commit_at.values())
        msgs = consume_n(c, expected, timeout=30)
    finally:
        c.close()
    assert len(msgs) == expected
    for part, off in commit_at.items():
        mine = [m for m in msgs if m.partition() == part]
        assert mine[0].offset() == off, f"partition {part} resumed at {mine[0].offset()}, committed {off}"
        assert mine[0].value() == f"p{part}-{off}".encode()
        assert [m.offset() for m in mine] == list(range(off, per_part))


def test_acknowledged_records_survive_sigkill(broker):
    t = unique("kill")
    create_topic(broker.bootstrap, t, 1)
    n = 5000
    acked: list[tuple[int, bytes]] = []
    errors = []

    def on_delivery(err, msg):
        if err is None:
            acked.append((msg.offset(), msg.value()))
        else:
            errors.append(err)

    p = producer(broker.bootstrap, **{"acks": "all", "linger.ms": 2, "batch.num.messages": 250})
    for i in range(n):
        p.produce(t, key=str(i).encode(), value=f"durable {i}".encode(), on_delivery=on_delivery)
        if i % 500 == 0:
            p.poll(0)
    deadline = time.monotonic() + 60
    while len(acked) + len(errors) < n and time.monotonic() < deadline:
        p.poll(0.05)
    broker.kill()  # SIGKILL right after the last acknowledgement
    assert not errors, errors[:3]
    assert len(acked) == n, f"only {len(acked)} of {n} acknowledged before the deadline"
    del p

    broker.start()
    msgs = consume_topic(broker.bootstrap, t, n, timeout=60)
    on_disk = {m.offset(): m.value() for m in msgs}
    missing = [(o, v) for o, v in acked if on_disk.get(o) != v]
    assert not missing, f"{len(missing)} acknowledged records lost or changed, e.g. {missing[:3]}"
    assert sorted(on_disk) == list(range(n))

    # the log continues after the recovered end, no offset reused
    p2 = producer(broker.bootstrap, **{"acks": "all"})
    (d,) = produce_all(p2, t, [(b"next", b"after restart")])
    assert d.offset == n


def test_topics_and_configs_survive_restart(broker):
    t = unique("meta")
    create_topic(broker.bootstrap, t, 3, {"retention.ms": "86400000", "cleanup.policy": "compact,delete"})
    broker.restart()
    a = admin(broker.bootstrap)
    wait_topic(a, t, 3)
    res = ConfigResource(ResourceType.TOPIC, t)
    cfg = a.describe_configs([res], request_timeout=15)[res].result(timeout=20)
    assert cfg["retention.ms"].value == "86400000"
    assert cfg["cleanup.policy"].value in ("compact,delete", "delete,compact")


def test_list_offsets_by_timestamp(broker):
    t = unique("times")
    create_topic(broker.bootstrap, t, 1)
    t0 = (int(time.time()) - 3600) * 1000
    n = 10
    p = producer(broker.bootstrap, **{"linger.ms": 50})  # all in one batch: the lookup must go inside it
    produce_all(p, t, [(None, f"r{i}".encode(), {"timestamp": t0 + i * 1000}) for i in range(n)])

    msgs = consume_topic(broker.bootstrap, t, n, timeout=30)
    assert [m.timestamp()[1] for m in msgs] == [t0 + i * 1000 for i in range(n)]

    c = consumer(broker.bootstrap, unique("g"))
    try:
        def lookup(ts: int) -> int:
            (tp,) = c.offsets_for_times([TopicPartition(t, 0, ts)], timeout=10)
            assert tp.error is None, tp.error
            return tp.offset

        assert lookup(t0 + 2500) == 3
        assert lookup(t0 + 3000) == 3
        assert lookup(t0) == 0
        assert lookup(t0 - 10_000) == 0
        assert lookup(t0 + 9000) == 9
        assert lookup(t0 + 9001) == -1  # past the last timestamp: no offset (OFFSET_END)
        assert lookup(t0 + 10_000_000) == -1
        assert c.get_watermark_offsets(TopicPartition(t, 0), timeout=10, cached=False) == (0, n)
    finally:
        c.close()


def test_list_offsets_by_timestamp_out_of_order_and_across_batches(broker):
    """Timestamps need not grow with offsets; the answer is the FIRST offset with ts >= target."""
    t = unique("times2")
    create_topic(broker.bootstrap, t, 1)
    t0 = (int(time.time()) - 7200) * 1000
    stamps = [t0, t0 + 5000, t0 + 1000, t0 + 2000, t0 + 8000, t0 + 3000]
    p = producer(broker.bootstrap, **{"linger.ms": 0, "batch.num.messages": 1})
    for i, ts in enumerate(stamps):  # one batch each
        produce_all(p, t, [(None, f"s{i}".encode(), {"timestamp": ts})])
    c = consumer(broker.bootstrap, unique("g"))
    try:
        def lookup(ts: int) -> int:
            (tp,) = c.offsets_for_times([TopicPartition(t, 0, ts)], timeout=10)
            return tp.offset

        assert lookup(t0 + 500) == 1
        assert lookup(t0 + 1500) == 1
        assert lookup(t0 + 6000) == 4
        assert lookup(t0 + 8000) == 4
        assert lookup(t0 + 8001) == -1
        assert c.get_watermark_offsets(TopicPartition(t, 0), timeout=10, cached=False) == (0, len(stamps))
    finally:
        c.close()
