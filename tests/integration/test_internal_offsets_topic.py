"""`__consumer_offsets` as clients see it: created by the broker on a group's first need and
listed as an internal topic (offsets.topic.num.partitions partitions, led by the broker), holding
the commits as records in Kafka's OffsetCommitKey/OffsetCommitValue format, refused to write;
aiokafka and kafka-python consumers that include internal topics in a pattern subscription get it
assigned and read it without errors."""

from __future__ import annotations

import asyncio
import time

from confluent_kafka import KafkaError, TopicPartition

from sandbox.broker.offsets_records import decode_key, decode_value, partition_for

from .kit import admin, consumer, create_topic, produce_all, producer, unique

OFFSETS = "__consumer_offsets"
PARTITIONS = 10   # offsets.topic.num.partitions' default


def _commit_something(bootstrap: str, group: str | None = None) -> str:
    topic = unique("t")
    create_topic(bootstrap, topic, 1)
    produce_all(producer(bootstrap), topic, [(None, b"v")])
    c = consumer(bootstrap, group or unique("g"))
    try:
        c.assign([TopicPartition(topic, 0, 0)])
        c.commit(offsets=[TopicPartition(topic, 0, 1)], asynchronous=False)
    finally:
        c.close()
    return topic


def test_offsets_topic_is_listed_internal_once_offsets_exist_and_cannot_be_written(broker):
    a = admin(broker.bootstrap)
    assert OFFSETS not in a.list_topics(timeout=10).topics
    group = unique("g")
    topic = _commit_something(broker.bootstrap, group)
    md = a.list_topics(timeout=10)
    assert OFFSETS in md.topics and sorted(md.topics[OFFSETS].partitions) == list(range(PARTITIONS))
    assert {p.leader for p in md.topics[OFFSETS].partitions.values()} == {1}

    from kafka import KafkaAdminClient
    ka = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=10000)
    try:
        desc = {t["name"]: t for t in ka.describe_topics([OFFSETS])}
        assert desc[OFFSETS]["is_internal"] is True and desc[OFFSETS]["error_code"] == 0
    finally:
        ka.close()

    errors = []
    p = producer(broker.bootstrap, **{"message.timeout.ms": 10000})
    p.produce(OFFSETS, value=b"not yours", partition=0, on_delivery=lambda err, m: errors.append(err))
    p.flush(15)
    assert errors and errors[0] is not None and errors[0].code() == KafkaError.TOPIC_EXCEPTION, errors
    # reading it: the group's partition holds the commit in Kafka's record format
    index = partition_for(group, PARTITIONS)
    c = consumer(broker.bootstrap, unique("g"), **{"enable.partition.eof": True})
    try:
        c.assign([TopicPartition(OFFSETS, index, 0)])
        deadline, eof, found = time.monotonic() + 15, False, []
        while not eof and time.monotonic() < deadline:
            for m in c.consume(10, timeout=0.5):
                if m.error() is not None:
                    assert m.error().code() == KafkaError._PARTITION_EOF, m.error()
                    eof = True
                    continue
                key = decode_key(m.key())
                if key is not None and key.group == group:
                    found.append((key.topic, key.partition, decode_value(m.value()).offset))
        assert eof and found == [(topic, 0, 1)], found
        low, high = c.get_watermark_offsets(TopicPartition(OFFSETS, index), timeout=10)
        assert low == 0 and high >= 1
    finally:
        c.close()


def test_pattern_subscribers_that_include_internal_topics_get_it_and_read_it(broker):
    topic = _commit_something(broker.bootstrap)

    from kafka import KafkaConsumer
    kc = KafkaConsumer(bootstrap_servers=broker.bootstrap, exclude_internal_topics=False,
                       request_timeout_ms=15000, consumer_timeout_ms=2000)
    try:
        assert kc.partitions_for_topic(OFFSETS) == set(range(PARTITIONS))
        assert OFFSETS in kc._client.cluster.topics(exclude_internal_topics=False)
        assert OFFSETS not in kc._client.cluster.topics(exclude_internal_topics=True)   # marked internal
    finally:
        kc.close()

    from aiokafka import AIOKafkaConsumer

    async def run() -> set:
        c = AIOKafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=unique("ag"),
                             exclude_internal_topics=False, auto_offset_reset="earliest",
                             metadata_max_age_ms=1000)
        await c.start()
        try:
            c.subscribe(pattern=r"^(__consumer_offsets|" + topic + r")$")
            deadline = time.monotonic() + 30
            while len(c.assignment()) < PARTITIONS + 1 and time.monotonic() < deadline:
                await c.getmany(timeout_ms=300)
            got = await c.getmany(timeout_ms=1000)
            for tp, msgs in got.items():   # commit records, Kafka's format (its own group's commits too)
                assert tp.topic != OFFSETS or all(decode_key(m.key) is not None for m in msgs), msgs
            return {tp.topic for tp in c.assignment()}
        finally:
            await c.stop()

    assigned = asyncio.run(run())
    assert assigned == {OFFSETS, topic}, assigned


def test_offsets_journal_of_an_earlier_version_is_moved_into_the_topic(broker_factory, tmp_path):
    """Upgrade of a single-broker sandbox: offsets in `__consumer_offsets/offsets.journal` are
    written once into the topic at start (the journal kept as offsets.journal.migrated), and are
    still there after a restart."""
    from sandbox.broker.offsets import JOURNAL, OffsetStore

    data = tmp_path / "upgraded"
    with OffsetStore(data / OFFSETS) as old:
        old.commit("old-group", [("old-topic", 0, 42, -1, "from the journal")])
    b = broker_factory(data_dir=data)
    assert (data / OFFSETS / (JOURNAL + ".migrated")).exists() and not (data / OFFSETS / JOURNAL).exists()

    def committed() -> list:
        # OffsetFetch v7 encoded and decoded with kio: confluent-kafka 2.16's
        # list_consumer_group_offsets sometimes hands the metadata back with stray bytes after it
        # (the broker's reply checked byte for byte over 30 requests: always "from the journal")
        from sandbox.client.connection import Connection
        from sandbox.protocol import build, request_class

        c = Connection(("127.0.0.1", b.port), "test", 10.0)
        try:
            r = c.roundtrip(build(request_class(9, 7), {"group_id": "old-group", "topics": None,
                                                        "require_stable": False}))
        finally:
            c.close()
        return [(t.name, p.partition_index, p.committed_offset, p.metadata) for t in r.topics for p in t.partitions]

    assert committed() == [("old-topic", 0, 42, "from the journal")]
    b.stop()
    b.start()
    assert committed() == [("old-topic", 0, 42, "from the journal")]
