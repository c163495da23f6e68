"""Dynamic broker configs (KIP-226) on a real 2-broker stack with real clients: the cluster-wide
default (resource "") and one broker's own (resource "1") set with IncrementalAlterConfigs and
AlterConfigs; every partition without its own setting follows them at once (a record larger than a
dynamic message.max.bytes is refused, MSG_SIZE_TOO_LARGE, and accepted again once it is deleted);
DescribeConfigs tells their sources as Kafka does; settings Kafka never changes at run time are
refused with INVALID_REQUEST; the settings come back after the coordinator's journal is destroyed
(the supervisor's catalog keeps them). 127.0.0.1 only."""

from __future__ import annotations

import json

import pytest
from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka.admin import (
    AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, ConfigSource, NewTopic, ResourceType,
)

from helpers import wait_for
from sandbox.client.kafka import KafkaClient

from .stack_kit import all_running_healthy, events, freeze_then_kill, service, wait_status

pytestmark = pytest.mark.integration


def _produce(bootstrap: str, topic: str, sizes: list[int]) -> list:
    """The delivery error of each record (None when delivered)."""
    results: list = []
    p = Producer({"bootstrap.servers": bootstrap, "message.timeout.ms": 10000, "retries": 0,
                  "message.max.bytes": 1_000_000})
    for n in sizes:
        p.produce(topic, b"x" * n, partition=0, on_delivery=lambda err, _m: results.append(err))
    p.flush(20)
    return results


def _codes(results: list) -> list:
    return [None if e is None else e.code() for e in results]


def _described(admin: AdminClient, kind: ResourceType, name: str) -> dict:
    res = ConfigResource(kind, name)
    return admin.describe_configs([res], request_timeout=15)[res].result(timeout=20)


def _alter_broker(admin: AdminClient, broker: str, **values: str) -> None:
    res = ConfigResource(ResourceType.BROKER, broker, incremental_configs=[
        ConfigEntry(k, v, incremental_operation=AlterConfigOpType.SET) for k, v in values.items()])
    admin.incremental_alter_configs([res], request_timeout=15)[res].result(timeout=20)


def test_dynamic_broker_configs_apply_at_once_and_survive_a_destroyed_coordinator_journal(projects):
    proj = projects("dynbroker", brokers=2, topics="[topics.orders]\npartitions = 1\nreplication = 2\n")
    r = proj.up()
    assert r.returncode == 0, r.stdout + r.stderr
    _, st = proj.status()
    bootstrap = st["bootstrap"]
    admin = AdminClient({"bootstrap.servers": bootstrap})
    own = "pinned"
    admin.create_topics([NewTopic(own, 1, 2, config={"max.message.bytes": "1000000"})],
                        request_timeout=15)[own].result(timeout=20)
    client = KafkaClient(bootstrap)
    try:
        assert _codes(_produce(bootstrap, "orders", [3000])) == [None]

        # the cluster-wide default: librdkafka cannot name resource "", so the sandbox's client sets it
        client.alter_broker_configs("", {"message.max.bytes": "2000", "log.retention.ms": "7200000"})
        # (read from any broker: each follows the coordinator's metadata within moments)
        wait_for(lambda: client.broker_configs("") == {"log.retention.ms": "7200000", "message.max.bytes": "2000"},
                 10, what="the default's settings described")
        wait_for(lambda: _codes(_produce(bootstrap, "orders", [3000])) == [KafkaError.MSG_SIZE_TOO_LARGE], 15,
                 what="the dynamic message.max.bytes refusing a 3000-byte record")
        assert _codes(_produce(bootstrap, "orders", [500])) == [None]
        assert _codes(_produce(bootstrap, own, [3000])) == [None]     # a topic's own setting wins
        topic = _described(admin, ResourceType.TOPIC, "orders")
        assert topic["max.message.bytes"].value == "2000"
        assert topic["max.message.bytes"].source == ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG.value
        assert topic["retention.ms"].value == "7200000"

        # one broker's own settings, with librdkafka (the per-broker resource goes to that broker)
        _alter_broker(admin, "1", **{"log.retention.ms": "3600000", "sasl.kerberos.min.time.before.relogin": "58000"})
        one = _described(admin, ResourceType.BROKER, "1")
        assert (one["log.retention.ms"].value, one["log.retention.ms"].source) == \
            ("3600000", ConfigSource.DYNAMIC_BROKER_CONFIG.value)
        assert (one["message.max.bytes"].value, one["message.max.bytes"].source) == \
            ("2000", ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG.value)
        assert one["sasl.kerberos.min.time.before.relogin"].value == "58000"
        assert not one["log.retention.ms"].is_read_only and one["broker.id"].is_read_only

        # refused as Kafka refuses them: not dynamic, per broker only, a bad value, no such broker
        for values, words in (({"broker.id": "9"}, "Cannot update these configs dynamically"),
                              ({"log.retention.ms": "soon"}, "log.retention.ms")):
            with pytest.raises(KafkaException) as info:
                _alter_broker(admin, "1", **values)
            assert words in str(info.value) and "INVALID_REQUEST" in str(info.value)
        # (librdkafka sends a broker's resource to that broker, so these go through the sandbox's
        # client, which does too; a broker not in the metadata: to any, which refuses another's id)
        for broker, values, words in (("", {"sasl.kerberos.min.time.before.relogin": "1"}, "broker id must be specified"),
                                      ("7", {"num.io.threads": "4"}, "Unexpected broker id")):
            with pytest.raises(Exception) as refused:
                client.alter_broker_configs(broker, values)
            assert words in str(refused.value)

        # kafka-python: IncrementalAlterConfigs adds to broker 2's settings; the legacy AlterConfigs
        # (librdkafka's alter_configs) replaces them wholesale, as Kafka does
        from kafka.admin import ConfigResource as KResource, ConfigResourceType, KafkaAdminClient
        ka = KafkaAdminClient(bootstrap_servers=bootstrap)
        try:
            ka.alter_configs([KResource(ConfigResourceType.BROKER, "2", configs={"num.io.threads": "16"})])
            ka.alter_configs([KResource(ConfigResourceType.BROKER, "2", configs={"background.threads": "4"})])
        finally:
            ka.close()
        wait_for(lambda: client.broker_configs("2") == {"background.threads": "4", "num.io.threads": "16"}, 10,
                 what="both of broker 2's settings")
        legacy = ConfigResource(ResourceType.BROKER, "2", set_config={"num.io.threads": "12"})
        admin.alter_configs([legacy], request_timeout=15)[legacy].result(timeout=20)
        wait_for(lambda: client.broker_configs("2") == {"num.io.threads": "12"}, 10,
                 what="broker 2's settings replaced")

        # the coordinator's journal destroyed: the catalog puts the dynamic settings back
        wait_for(lambda: json.loads((proj.data_dir / "topics.json").read_text()).get("broker_configs", {})
                 .get("1", {}).get("log.retention.ms") == "3600000", 20, what="the catalog to record them")
        from .test_self_healing import _garble_coordinator_journal
        freeze_then_kill(service(st, "coordinator")["pid"], lambda: _garble_coordinator_journal(proj))
        wait_status(proj, lambda code, st: any("dynamic configs" in e["detail"]
                                               for e in events(st, kind="configs-restored"))
                    and all_running_healthy(st), 90, "the dynamic configs put back after the journal was lost")
        wait_for(lambda: client.broker_configs("").get("message.max.bytes") == "2000"
                 and client.broker_configs("1").get("log.retention.ms") == "3600000", 10, what="every setting back")
        assert _codes(_produce(bootstrap, "orders", [3000])) == [KafkaError.MSG_SIZE_TOO_LARGE]

        # deleted: the [broker] default (1 MB) applies again
        client.alter_broker_configs("", delete=["message.max.bytes"])
        wait_for(lambda: _codes(_produce(bootstrap, "orders", [3000])) == [None], 15,
                 what="a 3000-byte record accepted again")
    finally:
        client.close()
