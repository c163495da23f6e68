"""Parity with Apache Kafka 4.x, continued (issue 13): the APIs tools call that the first batch
(test_parity.py) left out, each through a real client: DescribeTopicPartitions, DescribeQuorum,
DescribeProducers, client quotas, features, telemetry and `__consumer_offsets` in Metadata."""

from __future__ import annotations

import pytest

from helpers import BrokerProcess, wait_for

from .kit import create_topic, unique

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


@pytest.fixture(scope="module")
def shared_broker(tmp_path_factory):
    root = tmp_path_factory.mktemp("parity-tools")
    b = BrokerProcess(root / "data", log_path=root / "broker.stderr").start()
    yield b
    b.stop()


@pytest.fixture
def kp(shared_broker):
    from kafka import KafkaAdminClient
    client = KafkaAdminClient(bootstrap_servers=shared_broker.bootstrap, request_timeout_ms=10000)
    yield client
    client.close()


# ---- DescribeTopicPartitions (75): Kafka 4's kafka-topics --describe ------------------------------

def test_describe_topic_partitions_pages_with_a_cursor(shared_broker, kp):
    a, b = unique("dtp-a"), unique("dtp-b")
    create_topic(shared_broker.bootstrap, a, partitions=3)
    create_topic(shared_broker.bootstrap, b, partitions=2)
    pages, cursor = [], None
    for _ in range(5):
        page = kp.describe_topic_partitions([b, a], response_partition_limit=2, cursor=cursor)
        pages.append([(t["name"], [p["partition_index"] for p in t["partitions"]]) for t in page["topics"]])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == [[(a, [0, 1])], [(a, [2]), (b, [0])], [(b, [1])]]
    page = kp.describe_topic_partitions([a])
    topic = page["topics"][0]
    assert page["next_cursor"] is None and topic["error_code"] == 0 and topic["is_internal"] is False
    assert all(p["leader_id"] == 1 and p["replica_nodes"] == [1] and p["isr_nodes"] == [1]
               and p["offline_replicas"] == [] for p in topic["partitions"])
    missing = unique("dtp-missing")
    assert [(t["name"], t["error_code"]) for t in kp.describe_topic_partitions([missing, a])["topics"]] == [
        (a, 0), (missing, 3)]   # sorted by name: UNKNOWN_TOPIC_OR_PARTITION for the missing one
    # every topic when none is named; a cursor naming a topic that is not asked for is INVALID_REQUEST
    everything = kp.describe_topic_partitions([])
    assert {a, b} <= {t["name"] for t in everything["topics"]}
    bad = kp.describe_topic_partitions([a], cursor={"topic_name": b, "partition_index": 0})
    assert [t["error_code"] for t in bad["topics"]] == [42]


# ---- DescribeQuorum (55): the coordinator describes itself; brokers forward -----------------------

@pytest.fixture(scope="module")
def split_stack(tmp_path_factory):
    """A separate coordinator process and one broker that follows it."""
    from coordinator.server_helpers import CoordinatorProcess
    root = tmp_path_factory.mktemp("split")
    coord = CoordinatorProcess(root / "coordinator", log_path=root / "coordinator.log").start()
    b = BrokerProcess(root / "broker", log_path=root / "broker.stderr", coordinator=f"127.0.0.1:{coord.port}")
    try:
        b.start()
        yield coord, b
    finally:
        b.stop()
        coord.stop()


def test_describe_quorum_through_a_broker_is_answered_by_the_coordinator(split_stack):
    from kafka import KafkaAdminClient
    coord, b = split_stack
    create_topic(b.bootstrap, unique("quorum"), partitions=2)
    kp = KafkaAdminClient(bootstrap_servers=b.bootstrap, request_timeout_ms=10000)
    try:
        def described():
            q = kp.describe_metadata_quorum()["topics"][0]["partitions"][0]
            return q if q["observers"] and q["observers"][0]["log_end_offset"] == q["high_watermark"] else None
        q = wait_for(described, 10, interval=0.2, what="the broker as an up-to-date observer")
        nodes = kp.describe_metadata_quorum()["nodes"]
    finally:
        kp.close()
    assert q["error"] is None and q["leader_id"] == 0 and q["leader_epoch"] == 1
    assert q["high_watermark"] > 0   # the coordinator's metadata offset: registration, topic, partitions
    assert [(v["replica_id"], v["log_end_offset"]) for v in q["current_voters"]] == [(0, q["high_watermark"])]
    assert [o["replica_id"] for o in q["observers"]] == [1]
    assert [(n["node_id"], [(li["host"], li["port"]) for li in n["listeners"]]) for n in nodes] == [
        (0, [("127.0.0.1", coord.port)])]


def test_describe_quorum_of_a_combined_broker_names_itself(shared_broker, kp):
    q = kp.describe_metadata_quorum()["topics"][0]["partitions"][0]
    assert q["error"] is None and q["leader_id"] == 1
    assert [v["replica_id"] for v in q["current_voters"]] == [1] and q["observers"] == []
    assert q["current_voters"][0]["log_end_offset"] == q["high_watermark"] > 0


# ---- DescribeProducers (61): the idempotent producers of each partition ----------------------------

def test_describe_producers_lists_idempotent_producers(shared_broker, kp):
    import time
    from kafka import TopicPartition
    from kafka.errors import UnknownTopicOrPartitionError
    from .kit import producer
    name = unique("producers")
    create_topic(shared_broker.bootstrap, name, partitions=2)
    before = int(time.time() * 1000)
    p = producer(shared_broker.bootstrap, **{"enable.idempotence": True, "linger.ms": 0})
    for i in range(3):
        p.produce(name, b"v%d" % i, partition=0)
        assert p.flush(20) == 0   # one batch per record: sequences 0, 1, 2
    states = kp.describe_producers([TopicPartition(name, 0), TopicPartition(name, 1)])
    (only,) = states[TopicPartition(name, 0)].active_producers
    assert only.producer_id >= 0 and only.producer_epoch == 0 and only.last_sequence == 2
    assert before - 1000 <= only.last_timestamp <= int(time.time() * 1000) + 1000
    assert only.coordinator_epoch == -1 and only.current_transaction_start_offset == -1
    assert states[TopicPartition(name, 1)].active_producers == []
    with pytest.raises(UnknownTopicOrPartitionError):
        kp.describe_producers([TopicPartition(name, 7)], broker_id=1)


# ---- Describe/AlterClientQuotas (48/49): stored in the coordinator's metadata, not enforced -------
# No admin client in Python has a method for them; kafka-python's own protocol classes are sent
# through its admin client's connection manager.

def _send(kp_client, request):
    async def go():
        return await kp_client._manager.send(request)
    return kp_client._manager.run(go)


def _alter_quotas(kp_client, entries, validate_only=False):
    from kafka.protocol.admin.client_quotas import AlterClientQuotasRequest as R
    req = R(entries=[R.EntryData(entity=[R.EntryData.EntityData(entity_type=t, entity_name=n) for t, n in entity],
                                 ops=[R.EntryData.OpData(key=k, value=0.0 if v is None else float(v), remove=v is None)
                                      for k, v in ops.items()]) for entity, ops in entries],
            validate_only=validate_only)
    return [(tuple((e.entity_type, e.entity_name) for e in r.entity), r.error_code)
            for r in _send(kp_client, req).entries]


def _describe_quotas(kp_client, components, strict=False):
    from kafka.protocol.admin.client_quotas import DescribeClientQuotasRequest as R
    resp = _send(kp_client, R(components=[R.ComponentData(entity_type=t, match_type=m, match=n)
                                          for t, m, n in components], strict=strict))
    if resp.error_code:
        return resp.error_code
    return sorted((tuple(sorted((e.entity_type, e.entity_name or "<default>") for e in entry.entity)),
                   {v.key: v.value for v in entry.values}) for entry in resp.entries)


EXACT, DEFAULT, ANY = 0, 1, 2
ALICE, ALICE_APP = (("user", "alice"),), (("client-id", "app"), ("user", "alice"))


def _check_quotas(kp_client):
    everything = _describe_quotas(kp_client, [])
    assert everything == sorted([(ALICE, {"producer_byte_rate": 1024.0}),
                                 ((("client-id", "<default>"),), {"consumer_byte_rate": 2048.0}),
                                 (ALICE_APP, {"request_percentage": 50.5}),
                                 ((("ip", "127.0.0.1"),), {"connection_creation_rate": 10.0})])
    assert [e for e, _ in _describe_quotas(kp_client, [("user", EXACT, "alice")])] == [ALICE_APP, ALICE]
    assert [e for e, _ in _describe_quotas(kp_client, [("user", EXACT, "alice")], strict=True)] == [ALICE]
    assert [e for e, _ in _describe_quotas(kp_client, [("client-id", DEFAULT, None)])] == [
        (("client-id", "<default>"),)]
    assert [e for e, _ in _describe_quotas(kp_client, [("user", ANY, None), ("client-id", ANY, None)])] == [ALICE_APP]
    assert _describe_quotas(kp_client, [], strict=True) == []
    assert _describe_quotas(kp_client, [("user", ANY, None), ("ip", ANY, None)]) == 42   # INVALID_REQUEST
    assert _describe_quotas(kp_client, [("group", ANY, None)]) == 35                     # UNSUPPORTED_VERSION


def _set_quotas(kp_client):
    results = _alter_quotas(kp_client, [
        ((("user", "alice"),), {"producer_byte_rate": 1024}),
        ((("client-id", None),), {"consumer_byte_rate": 2048}),
        ((("user", "alice"), ("client-id", "app")), {"request_percentage": 50.5}),
        ((("ip", "127.0.0.1"),), {"connection_creation_rate": 10}),
        ((("user", "bob"), ("ip", "127.0.0.1")), {"producer_byte_rate": 1}),   # ip goes alone
        ((("user", "carol"),), {"producer_byte_rate": 1.5}),                   # a long-valued key
        ((("user", "dave"),), {"no_such_quota": 1}),
    ])
    assert [code for _, code in results] == [0, 0, 0, 0, 42, 42, 42]
    assert _alter_quotas(kp_client, [((("user", "erin"),), {"producer_byte_rate": 5})], validate_only=True) == [
        ((("user", "erin"),), 0)]


def test_client_quotas_are_stored_and_described_with_kafkas_filters(broker_factory):
    from kafka import KafkaAdminClient
    b = broker_factory()
    kp_client = KafkaAdminClient(bootstrap_servers=b.bootstrap, request_timeout_ms=10000)
    try:
        _set_quotas(kp_client)
        _check_quotas(kp_client)   # erin (validate_only) and the refused entries are not stored
        assert _alter_quotas(kp_client, [((("user", "alice"),), {"producer_byte_rate": None})]) == [(ALICE, 0)]
        assert ALICE not in [e for e, _ in _describe_quotas(kp_client, [])]
        _alter_quotas(kp_client, [((("user", "alice"),), {"producer_byte_rate": 1024})])
    finally:
        kp_client.close()
    b.stop()
    b.start()   # durable: the quotas are records of the coordinator's journal
    kp_client = KafkaAdminClient(bootstrap_servers=b.bootstrap, request_timeout_ms=10000)
    try:
        _check_quotas(kp_client)
    finally:
        kp_client.close()


def test_client_quotas_through_a_broker_of_a_separate_coordinator(split_stack):
    from kafka import KafkaAdminClient
    _coord, b = split_stack
    kp_client = KafkaAdminClient(bootstrap_servers=b.bootstrap, request_timeout_ms=10000)
    try:
        _set_quotas(kp_client)
        _check_quotas(kp_client)   # the broker's copy of the metadata shows them at once
    finally:
        kp_client.close()


# ---- UpdateFeatures (57) and the finalized features in ApiVersions ----------------------------------

def test_features_as_a_kraft_cluster_reports_them(shared_broker, kp):
    from kafka.errors import InvalidUpdateVersionError
    features = kp.describe_features()
    mv = features["metadata.version"]
    assert mv["supported"] == (7, 25) and mv["finalized"] == (25, 25)   # 4.0-IV3: the Kafka 4.0 APIs
    assert mv["finalized_epoch"] > 0                                    # the metadata offset
    assert kp.update_features({"metadata.version": 25}) == {"metadata.version": "OK"}
    assert kp.update_features({"metadata.version": 25}, validate_only=True) == {"metadata.version": "OK"}
    refused = {
        "metadata.version": [("SAFE_DOWNGRADE", 24), ("UNSAFE_DOWNGRADE", 7), 24, 26],
        "no.such.version": [1],
    }
    for feature, specs in refused.items():
        for spec in specs:
            with pytest.raises(InvalidUpdateVersionError):
                kp.update_features({feature: spec})
    assert kp.describe_features()["metadata.version"]["finalized"] == (25, 25)


# ---- Client telemetry (71/72): Kafka 4.0 without a telemetry receiver --------------------------------

def test_telemetry_apis_answer_as_kafka_without_a_receiver(shared_broker, tmp_path):
    """Kafka 4.0 lists GetTelemetrySubscriptions/PushTelemetry in ApiVersions only when a
    telemetry receiver plugin is configured, so librdkafka (enable.metrics.push is on by default)
    never asks; a client that asks anyway gets ClientMetricsManager's empty subscription."""
    import uuid
    from confluent_kafka import Producer
    from rawclient import RawClient
    from sandbox.protocol import build, request_class
    from sandbox.broker.handlers import supported_versions
    assert not {71, 72} & {key for key, _lo, _hi in supported_versions()}
    logs = []
    p = Producer({"bootstrap.servers": shared_broker.bootstrap, "enable.metrics.push": True,
                  "debug": "telemetry,protocol", "logger": _ListLogger(logs)})
    p.produce(unique("telemetry"), b"v")
    assert p.flush(20) == 0
    p.poll(0.5)
    assert not [line for line in logs if "GetTelemetrySubscriptions" in line and "Sent" in line], logs[-20:]
    with RawClient(shared_broker.port) as c:
        sub = c.request(build(request_class(71, 0), {"client_instance_id": uuid.UUID(int=0)}))
        assert int(sub.error_code) == 0 and sub.client_instance_id.int != 0
        assert sub.requested_metrics == () and sub.push_interval.total_seconds() == 300
        assert sub.delta_temporality is True and list(sub.accepted_compression_types) == [4, 3, 1, 2]
        assert sub.telemetry_max_bytes == 1048576
        pushed = c.request(build(request_class(72, 0), {
            "client_instance_id": sub.client_instance_id, "subscription_id": sub.subscription_id,
            "terminating": False, "compression_type": 0, "metrics": b""}))
        assert int(pushed.error_code) == 0
        stale = c.request(build(request_class(72, 0), {
            "client_instance_id": sub.client_instance_id, "subscription_id": sub.subscription_id + 1,
            "terminating": False, "compression_type": 0, "metrics": b""}))
        assert int(stale.error_code) == 117   # UNKNOWN_SUBSCRIPTION_ID


class _ListLogger:
    """A logging.Logger stand-in for librdkafka's log callback."""

    def __init__(self, lines: list) -> None:
        self.lines = lines

    def log(self, level, fmt, *args):
        self.lines.append(fmt % args if args else fmt)
