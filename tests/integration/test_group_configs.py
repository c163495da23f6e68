"""Settings the coordinator keeps for clients, over a real coordinator and broker. Group configs
(KIP-848, resource type GROUP), driven by
confluent-kafka's admin client as Kafka 4's tools drive them: set with IncrementalAlterConfigs
(the broker forwards it to the coordinator, which journals it), described with their source,
refused with INVALID_CONFIG when out of bounds, and applied by the group coordinator: a
ConsumerGroupHeartbeat of that group is told the group's heartbeat interval. SCRAM credentials,
forwarded by the broker to the coordinator and described by every broker from its copy of the
metadata."""

from __future__ import annotations

import time

import pytest
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, ConfigSource, NewTopic, ResourceType
from confluent_kafka import KafkaException

from sandbox.protocol import build, request_class
from rawclient import RawClient

from .kit import unique
from .replication_kit import Cluster

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def alter(admin, group: str, **values: str):
    res = ConfigResource(ResourceType.GROUP, group, incremental_configs=[
        ConfigEntry(k.replace("_", "."), v, incremental_operation=AlterConfigOpType.SET) for k, v in values.items()])
    return admin.incremental_alter_configs([res], request_timeout=15)[res].result(timeout=20)


def described(admin, group: str) -> dict:
    res = ConfigResource(ResourceType.GROUP, group)
    return admin.describe_configs([res], request_timeout=15)[res].result(timeout=20)


def test_group_configs_are_kept_described_and_applied(tmp_path):
    c = Cluster(tmp_path / "cluster", brokers=1)
    try:
        c.start()
        admin = c.admin()
        group, topic = unique("cfg-group"), unique("cfg-topic")
        admin.create_topics([NewTopic(topic, 2)], request_timeout=15)[topic].result(timeout=20)
        alter(admin, group, consumer_session_timeout_ms="50000", consumer_heartbeat_interval_ms="2000")
        got = described(admin, group)
        assert got["consumer.session.timeout.ms"].value == "50000"
        assert got["consumer.session.timeout.ms"].source == ConfigSource.GROUP_CONFIG.value
        assert got["consumer.heartbeat.interval.ms"].value == "2000"
        assert got["share.session.timeout.ms"].source == ConfigSource.DEFAULT_CONFIG.value
        other = described(admin, unique("untouched"))
        assert other["consumer.session.timeout.ms"].value == "45000"

        with pytest.raises(KafkaException) as info:
            alter(admin, group, consumer_session_timeout_ms="1000")
        assert "group.consumer.min.session.timeout.ms" in str(info.value)
        with pytest.raises(KafkaException) as info:
            alter(admin, group, session_timeout_ms="50000")
        assert "Unknown group config name" in str(info.value)
        assert described(admin, group)["consumer.session.timeout.ms"].value == "50000"

        # the group coordinator applies them: a joining member is told the group's interval
        with RawClient(c.ports[1]) as raw:
            resp = raw.request(build(request_class(68, 0), {
                "group_id": group, "member_id": "", "member_epoch": 0, "instance_id": None, "rack_id": None,
                "rebalance_timeout": 30000, "subscribed_topic_names": [topic], "server_assignor": None,
                "topic_partitions": []}))
            assert int(resp.error_code) == 0, resp.error_message
            assert resp.heartbeat_interval.total_seconds() == 2.0

        # kept by the coordinator's journal across its restart
        c.stop()
        c.start()
        assert described(c.admin(), group)["consumer.heartbeat.interval.ms"].value == "2000"
    finally:
        c.stop()


def test_scram_credentials_are_forwarded_to_the_coordinator_and_seen_by_every_broker(tmp_path):
    from confluent_kafka.admin import ScramCredentialInfo, ScramMechanism, UserScramCredentialUpsertion
    c = Cluster(tmp_path / "cluster", brokers=2)
    try:
        c.start()
        first = AdminClient({"bootstrap.servers": f"127.0.0.1:{c.ports[1]}"})
        upsertion = UserScramCredentialUpsertion(
            "alice", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 4096), b"secret", b"pepper")
        assert first.alter_user_scram_credentials([upsertion], request_timeout=10)["alice"].result(timeout=20) is None
        journal = b"".join(p.read_bytes() for p in (c.root / "coordinator").rglob("*") if p.is_file())
        assert b"stored_key" in journal and b"salted" not in journal   # keys derived, as Kafka keeps them
        second = AdminClient({"bootstrap.servers": f"127.0.0.1:{c.ports[2]}"})
        deadline = time.monotonic() + 10
        while True:
            got = second.describe_user_scram_credentials(["alice"], request_timeout=10)["alice"]
            try:
                infos = got.result(timeout=20).scram_credential_infos
                break
            except KafkaException:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        assert [(i.mechanism, i.iterations) for i in infos] == [(ScramMechanism.SCRAM_SHA_512, 4096)]
    finally:
        c.stop()
