"""Topic administration through real admin clients (confluent-kafka AdminClient, kafka-python)
and topic auto-creation."""

from __future__ import annotations

import pytest
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import (AlterConfigOpType, ConfigEntry, ConfigResource, NewPartitions,
                                   NewTopic, ResourceType)

from helpers import wait_for

from .kit import admin, consume_topic, create_topic, producer, unique, wait_topic

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def describe_topic_configs(a, topic: str) -> dict:
    res = ConfigResource(ResourceType.TOPIC, topic)
    return a.describe_configs([res], request_timeout=15)[res].result(timeout=20)


def test_confluent_admin_topic_lifecycle(broker):
    a = admin(broker.bootstrap)
    t = unique("admin")

    # create with 3 partitions and a topic config
    fs = a.create_topics([NewTopic(t, num_partitions=3, replication_factor=1,
                                   config={"retention.ms": "123456"})],
                         operation_timeout=10, request_timeout=15)
    assert fs[t].result(timeout=20) is None

    # Metadata: 3 partitions, all led by broker 1 which is the only replica and in sync
    wait_topic(a, t, 3)
    md = a.list_topics(timeout=10)
    assert t in md.topics
    tm = md.topics[t]
    assert tm.error is None
    assert sorted(tm.partitions) == [0, 1, 2]
    for p in tm.partitions.values():
        assert p.leader == 1, p
        assert list(p.replicas) == [1], p
        assert list(p.isrs) == [1], p
    assert sorted(md.brokers) == [1]
    assert md.brokers[1].host == "127.0.0.1"
    assert md.brokers[1].port == broker.port
    # internal topics are listed only when asked for by name (__consumer_offsets: once offsets are committed)
    assert not any(name.startswith("__") for name in md.topics), sorted(md.topics)

    # DescribeConfigs: the value we set, and Kafka defaults for the rest
    cfg = describe_topic_configs(a, t)
    assert cfg["retention.ms"].value == "123456"
    assert cfg["retention.ms"].is_default is False
    assert cfg["cleanup.policy"].value == "delete"
    assert cfg["cleanup.policy"].is_default is True
    assert cfg["segment.bytes"].value == "1073741824"

    # IncrementalAlterConfigs: SET one key, the other explicit key stays
    res = ConfigResource(ResourceType.TOPIC, t, incremental_configs=[
        ConfigEntry("retention.ms", "654321", incremental_operation=AlterConfigOpType.SET),
        ConfigEntry("max.message.bytes", "500000", incremental_operation=AlterConfigOpType.SET),
    ])
    assert a.incremental_alter_configs([res], request_timeout=15)[res].result(timeout=20) is None
    cfg = describe_topic_configs(a, t)
    assert cfg["retention.ms"].value == "654321"
    assert cfg["max.message.bytes"].value == "500000"
    assert cfg["max.message.bytes"].is_default is False

    # IncrementalAlterConfigs: DELETE returns a key to its default
    res = ConfigResource(ResourceType.TOPIC, t, incremental_configs=[
        ConfigEntry("max.message.bytes", None, incremental_operation=AlterConfigOpType.DELETE),
    ])
    a.incremental_alter_configs([res], request_timeout=15)[res].result(timeout=20)
    cfg = describe_topic_configs(a, t)
    assert cfg["max.message.bytes"].value == "1048588"
    assert cfg["max.message.bytes"].is_default is True
    assert cfg["retention.ms"].value == "654321"

    # legacy AlterConfigs replaces the whole set of dynamic topic configs
    res = ConfigResource(ResourceType.TOPIC, t, set_config={"cleanup.policy": "compact"})
    assert a.alter_configs([res], request_timeout=15)[res].result(timeout=20) is None
    cfg = describe_topic_configs(a, t)
    assert cfg["cleanup.policy"].value == "compact"
    assert cfg["cleanup.policy"].is_default is False
    assert cfg["retention.ms"].value == "604800000"  # not in the new set: back to the default
    assert cfg["retention.ms"].is_default is True

    # CreatePartitions 3 -> 5
    fs = a.create_partitions([NewPartitions(t, 5)], operation_timeout=10, request_timeout=15)
    assert fs[t].result(timeout=20) is None
    wait_topic(a, t, 5)
    assert sorted(a.list_topics(topic=t, timeout=10).topics[t].partitions) == [0, 1, 2, 3, 4]

    # the new partitions take data
    p = producer(broker.bootstrap)
    for part in range(5):
        p.produce(t, key=b"k", value=f"v{part}".encode(), partition=part)
    assert p.flush(20) == 0
    got = consume_topic(broker.bootstrap, t, 5, timeout=30)
    assert sorted((m.partition(), m.value()) for m in got) == [(i, f"v{i}".encode()) for i in range(5)]

    # DeleteTopics
    fs = a.delete_topics([t], operation_timeout=10, request_timeout=15)
    assert fs[t].result(timeout=20) is None
    wait_for(lambda: t not in a.list_topics(timeout=5).topics, 15, interval=0.2, what=f"{t} gone from Metadata")
    res = ConfigResource(ResourceType.TOPIC, t)
    with pytest.raises(KafkaException) as ei:
        a.describe_configs([res], request_timeout=15)[res].result(timeout=20)
    assert ei.value.args[0].code() == KafkaError.UNKNOWN_TOPIC_OR_PART


def test_confluent_admin_errors(broker):
    a = admin(broker.bootstrap)
    t = unique("dup")
    create_topic(broker.bootstrap, t, 2)

    # an existing topic
    fs = a.create_topics([NewTopic(t, num_partitions=4, replication_factor=1)],
                         operation_timeout=10, request_timeout=15)
    with pytest.raises(KafkaException) as ei:
        fs[t].result(timeout=20)
    assert ei.value.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS
    assert len(a.list_topics(topic=t, timeout=10).topics[t].partitions) == 2  # unchanged

    # invalid names: illegal characters, "..", and too long (> 249 characters)
    for bad in ["bad name!", "..", "x" * 250]:
        fs = a.create_topics([NewTopic(bad, num_partitions=1, replication_factor=1)],
                             operation_timeout=10, request_timeout=15)
        with pytest.raises(KafkaException) as ei:
            fs[bad].result(timeout=20)
        assert ei.value.args[0].code() == KafkaError.TOPIC_EXCEPTION, (bad, ei.value)
    assert set(a.list_topics(timeout=10).topics) == {t}

    # an unknown topic config, and a bad value for a known one
    for cfg in ({"no.such.config": "1"}, {"retention.ms": "soon"}):
        name = unique("badcfg")
        fs = a.create_topics([NewTopic(name, num_partitions=1, replication_factor=1, config=cfg)],
                             operation_timeout=10, request_timeout=15)
        with pytest.raises(KafkaException) as ei:
            fs[name].result(timeout=20)
        assert ei.value.args[0].code() == KafkaError.INVALID_CONFIG, (cfg, ei.value)
        assert name not in a.list_topics(timeout=10).topics

    # deleting an unknown topic
    fs = a.delete_topics([unique("ghost")], operation_timeout=10, request_timeout=15)
    (name, f), = fs.items()
    with pytest.raises(KafkaException) as ei:
        f.result(timeout=20)
    assert ei.value.args[0].code() == KafkaError.UNKNOWN_TOPIC_OR_PART

    # shrinking partitions is refused
    fs = a.create_partitions([NewPartitions(t, 1)], operation_timeout=10, request_timeout=15)
    with pytest.raises(KafkaException) as ei:
        fs[t].result(timeout=20)
    assert ei.value.args[0].code() == KafkaError.INVALID_PARTITIONS
    assert len(a.list_topics(topic=t, timeout=10).topics[t].partitions) == 2


def test_kafka_python_admin(broker):
    from kafka.admin import KafkaAdminClient
    from kafka.errors import TopicAlreadyExistsError

    t = unique("kp-admin")
    ka = KafkaAdminClient(bootstrap_servers=broker.bootstrap, client_id="kp-admin",
                          request_timeout_ms=15000)
    try:
        ka.create_topics({t: {"num_partitions": 2, "replication_factor": 1,
                              "configs": {"retention.ms": "3600000"}}})
        wait_for(lambda: t in ka.list_topics(), 15, interval=0.2, what=f"{t} listed by kafka-python")
        (desc,) = ka.describe_topics([t])
        assert desc["name"] == t
        assert desc["error_code"] == 0
        assert desc["is_internal"] is False
        assert desc["topic_id"] not in (None, "", "00000000-0000-0000-0000-000000000000")
        assert sorted(p["partition_index"] for p in desc["partitions"]) == [0, 1]
        assert all(p["leader_id"] == 1 for p in desc["partitions"])

        with pytest.raises(TopicAlreadyExistsError):
            ka.create_topics({t: {"num_partitions": 2, "replication_factor": 1}})

        ka.delete_topics([t])
        wait_for(lambda: t not in ka.list_topics(), 15, interval=0.2, what=f"{t} gone for kafka-python")
    finally:
        ka.close()
    assert t not in admin(broker.bootstrap).list_topics(timeout=10).topics


def test_auto_create_on_produce(broker):
    t = unique("auto")
    a = admin(broker.bootstrap)
    assert t not in a.list_topics(timeout=10).topics
    p = producer(broker.bootstrap)
    p.produce(t, key=b"k", value=b"hello")
    assert p.flush(30) == 0
    md = a.list_topics(topic=t, timeout=10)
    assert md.topics[t].error is None
    assert sorted(md.topics[t].partitions) == [0]  # num.partitions defaults to 1
    got = consume_topic(broker.bootstrap, t, 1, timeout=30)
    assert [(m.key(), m.value(), m.offset()) for m in got] == [(b"k", b"hello", 0)]


def test_auto_create_default_partitions(broker_factory):
    b = broker_factory(options=["num.partitions=3"])
    t = unique("auto3")
    p = producer(b.bootstrap)
    p.produce(t, value=b"x")
    assert p.flush(30) == 0
    assert sorted(admin(b.bootstrap).list_topics(topic=t, timeout=10).topics[t].partitions) == [0, 1, 2]


def test_auto_create_disabled(broker_factory):
    b = broker_factory(options=["auto.create.topics.enable=false"])
    t = unique("noauto")
    errors = []
    p = producer(b.bootstrap, **{"message.timeout.ms": 3000})
    p.produce(t, value=b"lost", on_delivery=lambda err, msg: errors.append(err))
    p.flush(15)
    assert len(errors) == 1 and errors[0] is not None, errors
    assert errors[0].code() in (KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._MSG_TIMED_OUT,
                                KafkaError._UNKNOWN_TOPIC), errors[0]
    a = admin(b.bootstrap)
    assert t not in a.list_topics(timeout=10).topics
    # explicit creation still works on such a broker
    create_topic(b.bootstrap, t, 1)
    p2 = producer(b.bootstrap)
    p2.produce(t, value=b"kept")
    assert p2.flush(20) == 0
    assert [m.value() for m in consume_topic(b.bootstrap, t, 1, timeout=30)] == [b"kept"]
