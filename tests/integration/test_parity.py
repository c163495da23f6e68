"""Parity with Apache Kafka 4.x as real clients see it (issue 13): Windows-safe topic names, the
APIs admin tools call, broker configs, API versions, and behaviour that must match Kafka's."""

from __future__ import annotations

import pytest
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import NewTopic

from helpers import BrokerProcess, wait_for

from .kit import admin, create_topic, producer, unique

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


@pytest.fixture(scope="module")
def shared_broker(tmp_path_factory):
    """One broker for the tests that only read or create their own uniquely named topics."""
    root = tmp_path_factory.mktemp("parity")
    b = BrokerProcess(root / "data", log_path=root / "broker.stderr").start()
    yield b
    b.stop()


@pytest.fixture(scope="module")
def unauthorized_broker(tmp_path_factory):
    """A broker with `authorizer.class.name` empty: no authorizer, as a Kafka broker without one."""
    root = tmp_path_factory.mktemp("no-authorizer")
    b = BrokerProcess(root / "data", log_path=root / "broker.stderr", options=["authorizer.class.name="]).start()
    yield b
    b.stop()


def create_error(a, name: str) -> KafkaError:
    fs = a.create_topics([NewTopic(name, num_partitions=1, replication_factor=1)],
                         operation_timeout=10, request_timeout=15)
    with pytest.raises(KafkaException) as info:
        fs[name].result(timeout=20)
    return info.value.args[0]


# ---- Windows-safe topic names ------------------------------------------------------------------

@pytest.mark.parametrize("name", ["con", "NUL", "aux.log", "Prn", "com1", "COM9.data.x", "lpt1",
                                  "lpt9.txt"])
def test_reserved_windows_device_names_are_refused(shared_broker, name):
    err = create_error(admin(shared_broker.bootstrap), name)
    assert err.code() == KafkaError.TOPIC_EXCEPTION, err
    assert "reserved device name on Windows" in err.str(), err.str()


def test_names_near_device_names_are_fine(shared_broker):
    a = admin(shared_broker.bootstrap)
    for name in (unique("con"), "com10-" + unique("x"), "console-" + unique("x"), "lpt0-" + unique("x")):
        create_topic(shared_broker.bootstrap, name)


def test_topic_differing_only_in_case_is_refused(shared_broker):
    a = admin(shared_broker.bootstrap)
    name = unique("Orders")
    create_topic(shared_broker.bootstrap, name)
    err = create_error(a, name.lower())
    assert err.code() == KafkaError.TOPIC_EXCEPTION, err
    assert "differs only in case" in err.str() and name in err.str(), err.str()
    assert name.lower() not in a.list_topics(timeout=10).topics


def test_auto_creation_refuses_case_twins_and_device_names(shared_broker):
    """A producer's Metadata auto-creation must not make `orders` beside `Orders`, nor `nul`."""
    name = unique("Payments")
    create_topic(shared_broker.bootstrap, name)
    errors = []
    p = producer(shared_broker.bootstrap, **{"message.timeout.ms": 5000})
    for target in (name.upper(), "nul"):
        p.produce(target, b"v", on_delivery=lambda err, msg: errors.append(err))
    p.flush(15)
    assert len(errors) == 2 and all(e is not None for e in errors), errors
    topics = admin(shared_broker.bootstrap).list_topics(timeout=10).topics
    assert name.upper() not in topics and "nul" not in topics


# ---- ACLs and SCRAM: Kafka's answers without an authorizer and without SCRAM users -------------

def test_acl_apis_answer_security_disabled_without_an_authorizer(unauthorized_broker):
    from confluent_kafka.admin import (AclBinding, AclBindingFilter, AclOperation, AclPermissionType,
                                       ResourcePatternType, ResourceType)
    a = admin(unauthorized_broker.bootstrap)
    flt = AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY, None, None,
                           AclOperation.ANY, AclPermissionType.ANY)
    binding = AclBinding(ResourceType.TOPIC, "t", ResourcePatternType.LITERAL, "User:alice", "*",
                         AclOperation.READ, AclPermissionType.ALLOW)
    # librdkafka drops DescribeAcls' top-level error and shows no ACLs (kafka-python raises, below)
    assert a.describe_acls(flt, request_timeout=10).result(timeout=20) == []
    futures = [a.create_acls([binding], request_timeout=10)[binding],
               a.delete_acls([flt], request_timeout=10)[flt]]
    for f in futures:
        with pytest.raises(KafkaException) as info:
            f.result(timeout=20)
        err = info.value.args[0]
        assert err.code() == KafkaError.SECURITY_DISABLED, err
        assert "No Authorizer is configured" in err.str(), err.str()


def test_kafka_python_describe_acls_security_disabled_without_an_authorizer(unauthorized_broker):
    from kafka import KafkaAdminClient
    from kafka.admin import (ACLFilter, ACLOperation, ACLPermissionType, ACLResourcePatternType,
                             ResourcePatternFilter, ResourceType)
    from kafka.errors import SecurityDisabledError
    kp = KafkaAdminClient(bootstrap_servers=unauthorized_broker.bootstrap, request_timeout_ms=10000)
    try:
        flt = ACLFilter(principal=None, host="*", operation=ACLOperation.ANY,
                        permission_type=ACLPermissionType.ANY,
                        resource_pattern=ResourcePatternFilter(ResourceType.TOPIC, None, ACLResourcePatternType.ANY))
        with pytest.raises(SecurityDisabledError):
            kp.describe_acls(flt)
    finally:
        kp.close()


def test_scram_credentials_are_stored_and_described_as_kafka_does(shared_broker):
    """Kafka keeps SCRAM credentials also without a SASL listener (as this sandbox is): an
    upsertion is stored, described with its mechanism and iterations, and deleted again."""
    from confluent_kafka.admin import (ScramCredentialInfo, ScramMechanism, UserScramCredentialDeletion,
                                       UserScramCredentialUpsertion)
    a = admin(shared_broker.bootstrap)
    carol = unique("carol")
    with pytest.raises(KafkaException) as info:
        a.describe_user_scram_credentials([carol], request_timeout=10)[carol].result(timeout=20)
    assert info.value.args[0].code() == KafkaError.RESOURCE_NOT_FOUND
    deletion = UserScramCredentialDeletion("bob", ScramMechanism.SCRAM_SHA_256)
    upsertion = UserScramCredentialUpsertion(
        carol, ScramCredentialInfo(ScramMechanism.SCRAM_SHA_256, 8192), b"password", b"salt")
    fs = a.alter_user_scram_credentials([deletion, upsertion], request_timeout=10)
    with pytest.raises(KafkaException) as info:
        fs["bob"].result(timeout=20)
    assert info.value.args[0].code() == KafkaError.RESOURCE_NOT_FOUND
    assert fs[carol].result(timeout=20) is None
    described = a.describe_user_scram_credentials([carol], request_timeout=10)[carol].result(timeout=20)
    assert [(i.mechanism, i.iterations) for i in described.scram_credential_infos] == [
        (ScramMechanism.SCRAM_SHA_256, 8192)]
    assert carol in a.describe_user_scram_credentials(request_timeout=10).result(timeout=20)
    too_few = UserScramCredentialUpsertion(
        carol, ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 100), b"password", b"salt")
    with pytest.raises(KafkaException) as info:
        a.alter_user_scram_credentials([too_few], request_timeout=10)[carol].result(timeout=20)
    assert info.value.args[0].code() == KafkaError.UNACCEPTABLE_CREDENTIAL
    gone = UserScramCredentialDeletion(carol, ScramMechanism.SCRAM_SHA_256)
    assert a.alter_user_scram_credentials([gone], request_timeout=10)[carol].result(timeout=20) is None
    with pytest.raises(KafkaException) as info:
        a.describe_user_scram_credentials([carol], request_timeout=10)[carol].result(timeout=20)
    assert info.value.args[0].code() == KafkaError.RESOURCE_NOT_FOUND


# ---- API versions: what Apache Kafka 4.0 advertises, wherever this broker speaks the API --------

def test_kafka_python_sees_a_kafka_4_0_broker(shared_broker):
    from kafka import KafkaAdminClient
    from kafka.protocol.broker_version_data import BROKER_API_VERSIONS
    kp = KafkaAdminClient(bootstrap_servers=shared_broker.bootstrap, request_timeout_ms=10000)
    try:
        assert kp._client.check_version(timeout_ms=10000) == (4, 0)
    finally:
        kp.close()
    from sandbox.broker.handlers import supported_versions
    ours = {key: (lo, hi) for key, lo, hi in supported_versions()}
    lower = {key: (ours[key], kafka) for key, kafka in BROKER_API_VERSIONS[(4, 0)].items()
             if key in ours and ours[key][1] < kafka[1]}
    assert not lower, f"(ours, Kafka 4.0's) where we advertise less than Kafka 4.0: {lower}"


def test_kafka_python_consumes_and_manages_groups_at_kafka_4_0_versions(shared_broker):
    """Fetch v17 (topic ids), ListOffsets v10, OffsetFetch v9 (batched groups), DescribeGroups v6
    (GROUP_ID_NOT_FOUND), ListGroups v5 (group types): what kafka-python picks against Kafka 4.0."""
    from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
    topic, group = unique("kp4"), unique("g")
    create_topic(shared_broker.bootstrap, topic)
    p = producer(shared_broker.bootstrap)
    for i in range(5):
        p.produce(topic, b"v%d" % i)
    assert p.flush(20) == 0
    c = KafkaConsumer(topic, bootstrap_servers=shared_broker.bootstrap, group_id=group,
                      auto_offset_reset="earliest", consumer_timeout_ms=8000, enable_auto_commit=False)
    try:
        got = []
        deadline_polls = 40
        while len(got) < 5 and deadline_polls:
            deadline_polls -= 1
            for records in c.poll(timeout_ms=500).values():
                got += [r.value for r in records]
        assert got == [b"v%d" % i for i in range(5)]
        assert c.end_offsets([TopicPartition(topic, 0)]) == {TopicPartition(topic, 0): 5}
        c.commit()
    finally:
        c.close()
    kp = KafkaAdminClient(bootstrap_servers=shared_broker.bootstrap, request_timeout_ms=10000)
    try:
        offsets = kp.list_group_offsets(group)
        assert offsets[group][TopicPartition(topic, 0)].offset == 5
        assert {"group_id": group, "protocol_type": "consumer", "group_state": "Empty",
                "group_type": "classic"} in kp.list_groups()
        missing = unique("no-such-group")
        assert "GroupIdNotFoundError" in str(kp.describe_groups([missing])[missing]["error"])
    finally:
        kp.close()


# ---- DescribeConfigs of the broker resource ------------------------------------------------------

def test_broker_configs_as_kafka_names_them(shared_broker):
    from kafka import KafkaAdminClient
    from kafka.admin import ConfigResource, ConfigResourceType
    kp = KafkaAdminClient(bootstrap_servers=shared_broker.bootstrap, request_timeout_ms=10000)
    try:
        res = kp.describe_configs([ConfigResource(ConfigResourceType.BROKER, "1")], config_filter="all")
    finally:
        kp.close()
    cfg = {k: v["value"] for k, v in res["broker"]["1"].items()}
    address = f"PLAINTEXT://127.0.0.1:{shared_broker.port}"
    assert cfg["advertised.listeners"] == address and cfg["listeners"] == address
    assert cfg["log.dirs"] == str(shared_broker.data_dir)
    assert cfg["num.partitions"] == "1" and cfg["default.replication.factor"] == "1"
    assert cfg["listener.security.protocol.map"] == "PLAINTEXT:PLAINTEXT"
    assert cfg["log.retention.ms"] == "604800000" and cfg["log.segment.bytes"] == "1073741824"
    assert cfg["process.roles"] == "broker,controller"   # embedded coordinator = combined mode
    # the same through librdkafka, which reports them read-only
    from confluent_kafka.admin import ConfigResource as CR, ResourceType
    r = CR(ResourceType.BROKER, "1")
    a = admin(shared_broker.bootstrap)
    described = a.describe_configs([r], request_timeout=15)[r].result(timeout=20)
    assert described["advertised.listeners"].value == address
    assert described["advertised.listeners"].is_read_only


# ---- Topic configs: Kafka 3.x's deprecated ones, and an empty cleanup.policy (KAFKA-19112) -------

def test_deprecated_topic_config_is_accepted_and_ignored(shared_broker):
    from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource, ResourceType
    name = unique("legacy")
    create_topic(shared_broker.bootstrap, name, config={"message.format.version": "2.8-IV1",
                                                        "retention.ms": "86400000"})
    a = admin(shared_broker.bootstrap)
    res = ConfigResource(ResourceType.TOPIC, name)
    described = a.describe_configs([res], request_timeout=15)[res].result(timeout=20)
    assert "message.format.version" not in described
    assert described["retention.ms"].value == "86400000"
    res = ConfigResource(ResourceType.TOPIC, name, incremental_configs=[
        ConfigEntry("message.format.version", "3.0", incremental_operation=AlterConfigOpType.SET)])
    a.incremental_alter_configs([res], request_timeout=15)[res].result(timeout=20)
    wait_for(lambda: "topic config message.format.version=2.8-IV1 is deprecated and ignored"
               in shared_broker.log_text(),
             10,
             what="the log line about the ignored config")


def test_cleanup_policy_keeps_the_order_it_was_given(shared_broker):
    """Kafka describes a list config as written: APPEND compact to the default delete gives
    "delete,compact" (confluent-kafka's own integration test asserts exactly that)."""
    from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource, ResourceType
    a = admin(shared_broker.bootstrap)
    appended, created = unique("append-policy"), unique("ordered-policy")
    create_topic(shared_broker.bootstrap, appended)
    create_topic(shared_broker.bootstrap, created, config={"cleanup.policy": "delete,compact"})
    res = ConfigResource(ResourceType.TOPIC, appended, incremental_configs=[
        ConfigEntry("cleanup.policy", "compact", incremental_operation=AlterConfigOpType.APPEND)])
    a.incremental_alter_configs([res], request_timeout=15)[res].result(timeout=20)
    for name in (appended, created):
        res = ConfigResource(ResourceType.TOPIC, name)
        got = a.describe_configs([res], request_timeout=15)[res].result(timeout=20)["cleanup.policy"].value
        assert got == "delete,compact", (name, got)


def test_subtract_may_leave_cleanup_policy_empty(shared_broker):
    from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource, ResourceType
    name = unique("keep-all")
    create_topic(shared_broker.bootstrap, name, config={"cleanup.policy": "compact,delete"})
    a = admin(shared_broker.bootstrap)
    for policy in ("compact", "delete"):
        res = ConfigResource(ResourceType.TOPIC, name, incremental_configs=[
            ConfigEntry("cleanup.policy", policy, incremental_operation=AlterConfigOpType.SUBTRACT)])
        a.incremental_alter_configs([res], request_timeout=15)[res].result(timeout=20)
    res = ConfigResource(ResourceType.TOPIC, name)
    assert a.describe_configs([res], request_timeout=15)[res].result(timeout=20)["cleanup.policy"].value == ""
    p, errors = producer(shared_broker.bootstrap), []
    p.produce(name, b"no key is fine without compaction", on_delivery=lambda err, msg: errors.append(err))
    assert p.flush(40) == 0 and errors == [None], (errors, shared_broker.log_text()[-2000:])
    from .kit import consume_topic
    assert [m.value() for m in consume_topic(shared_broker.bootstrap, name, 1)] == [
        b"no key is fine without compaction"]


# ---- A compacted topic refuses records without a key ---------------------------------------------

@pytest.mark.parametrize("codec", ["none", "gzip", "zstd"])
def test_keyless_record_to_compacted_topic_is_invalid_record(shared_broker, codec):
    name = unique(f"compacted-{codec}")
    create_topic(shared_broker.bootstrap, name, config={"cleanup.policy": "compact"})
    results = {}
    p = producer(shared_broker.bootstrap, **{"compression.type": codec, "linger.ms": 0, "retries": 0,
                                             "enable.idempotence": False})
    p.produce(name, b"keyed", key=b"k", on_delivery=lambda err, msg: results.__setitem__("keyed", err))
    assert p.flush(20) == 0
    p.produce(name, b"no key", on_delivery=lambda err, msg: results.__setitem__("keyless", err))
    assert p.flush(20) == 0
    assert results["keyed"] is None
    err = results["keyless"]
    assert err is not None and err.code() == KafkaError.INVALID_RECORD, err
    # a topic that does not compact takes records without keys as before
    plain = unique("plain")
    create_topic(shared_broker.bootstrap, plain)
    p.produce(plain, b"no key", on_delivery=lambda err, msg: results.__setitem__("plain", err))
    assert p.flush(20) == 0 and results["plain"] is None


def test_kafka_python_sees_the_record_error_of_a_keyless_record(shared_broker):
    from kafka import KafkaProducer
    from kafka.errors import InvalidRecordError
    name = unique("compacted-kp")
    create_topic(shared_broker.bootstrap, name, config={"cleanup.policy": "compact,delete"})
    kp = KafkaProducer(bootstrap_servers=shared_broker.bootstrap, retries=0, request_timeout_ms=10000)
    try:
        with pytest.raises(InvalidRecordError) as info:
            kp.send(name, b"v").get(timeout=20)
        assert "Compacted topic cannot accept message without key" in str(info.value)
        assert kp.send(name, b"v", key=b"k").get(timeout=20).offset == 0
    finally:
        kp.close()


# ---- APIs admin tools call: log dirs, leader elections, reassignments ----------------------------

def test_tool_apis_log_dirs_elections_reassignments(shared_broker):
    from confluent_kafka import TopicPartition as CTP
    from confluent_kafka import ElectionType
    from kafka import KafkaAdminClient, TopicPartition
    from kafka.errors import (InvalidReplicationAssignmentError, LogDirNotFoundError, NoError,
                              NoReassignmentInProgressError)
    from kafka.structs import TopicPartitionReplica
    name = unique("tools")
    create_topic(shared_broker.bootstrap, name, partitions=2)
    p = producer(shared_broker.bootstrap)
    for i in range(10):
        p.produce(name, b"x" * 100, partition=0)
    assert p.flush(20) == 0
    kp = KafkaAdminClient(bootstrap_servers=shared_broker.bootstrap, request_timeout_ms=10000)
    try:
        dirs = kp.describe_log_dirs()[0]["log_dirs"]
        assert [d["log_dir"] for d in dirs] == [str(shared_broker.data_dir)]
        sizes = {(t["name"], q["partition_index"]): q["partition_size"] for t in dirs[0]["topics"]
                 for q in t["partitions"]}
        assert sizes[(name, 0)] > 1000 and sizes[(name, 1)] == 0
        assert dirs[0]["usable_bytes"] > 0 and dirs[0]["total_bytes"] >= dirs[0]["usable_bytes"]
        # moving a replica to the dir it is in is a no-op; another dir is not this broker's
        here, elsewhere = TopicPartitionReplica(name, 0, 1), TopicPartitionReplica(name, 1, 1)
        moved = kp.alter_replica_log_dirs({here: dirs[0]["log_dir"]})
        assert moved == {here: NoError}
        moved = kp.alter_replica_log_dirs({elsewhere: dirs[0]["log_dir"] + "-elsewhere"})
        assert moved == {elsewhere: LogDirNotFoundError}
        assert kp.list_partition_reassignments() == {}
        tp = TopicPartition(name, 0)
        assert kp.alter_partition_reassignments({tp: [1]}) == {tp: None}
        assert kp.alter_partition_reassignments({tp: None}) == {tp: NoReassignmentInProgressError}
        assert kp.alter_partition_reassignments({tp: [1, 7]}) == {tp: InvalidReplicationAssignmentError}
    finally:
        kp.close()
    a = admin(shared_broker.bootstrap)
    result = a.elect_leaders(ElectionType.PREFERRED, [CTP(name, 0), CTP(name, 1)]).result(timeout=20)
    errors = {tp.partition: err.code() for tp, err in result.items()}
    assert errors == {0: KafkaError.ELECTION_NOT_NEEDED, 1: KafkaError.ELECTION_NOT_NEEDED}, result
