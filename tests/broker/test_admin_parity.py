"""Admin APIs answered as Kafka 4 answers them, through a real broker state in-process (its
registry, kio-encoded requests): duplicates in one request, the internal flag, topic config
names and values, the configs CreateTopics returns, DescribeConfigs' synonyms, and the rest of
what a review against Kafka's ControllerApis / ConfigAdminManager / LogConfig found."""

from __future__ import annotations

import uuid

import pytest

from inprocess import InProcess
from sandbox.broker.config import DEFAULT_LISTENER
from sandbox.broker.handlers import REGISTRY
from sandbox.protocol import errors as E

from test_acl_enforcement import open_broker   # noqa: E402 - a broker state opened in a temp dir

ZERO = uuid.UUID(int=0)


@pytest.fixture
def b(tmp_path):
    loop, state = open_broker(tmp_path)
    try:
        yield InProcess(REGISTRY, loop, state, DEFAULT_LISTENER)
    finally:
        loop.run_until_complete(state.close())
        loop.close()


def new_topic(name: str, partitions: int = 1, configs: dict | None = None) -> dict:
    return {"name": name, "num_partitions": partitions, "replication_factor": 1, "assignments": [],
            "configs": [{"name": k, "value": v} for k, v in (configs or {}).items()]}


def create(c: InProcess, *topics: dict, validate_only: bool = False, version: int = 7):
    return c.call(19, version, {"topics": list(topics), "timeout": 5000, "validate_only": validate_only}).topics


def topic_names(c: InProcess) -> dict[str, bool]:
    """Every topic Metadata lists for all topics -> its is_internal."""
    resp = c.call(3, 12, {"topics": None, "allow_auto_topic_creation": False,
                          "include_topic_authorized_operations": False})
    return {t.name: bool(t.is_internal) for t in resp.topics}


# ---- item: only __consumer_offsets and __transaction_state are internal
def test_a_user_topic_named_with_two_underscores_is_listed_and_not_internal(b):
    [made] = create(b, new_topic("__debezium-heartbeat.x"))
    assert int(made.error_code) == E.NONE
    assert topic_names(b).get("__debezium-heartbeat.x") is False
    md = b.metadata("__debezium-heartbeat.x").topics[0]
    assert int(md.error_code) == E.NONE and md.is_internal is False
    resp = b.call(75, 0, {"topics": [], "response_partition_limit": 100, "cursor": None})
    listed = {t.name: t.is_internal for t in resp.topics}
    assert listed.get("__debezium-heartbeat.x") is False


def with_broker(tmp_path, **settings):
    loop, state = open_broker(tmp_path, **settings)
    return InProcess(REGISTRY, loop, state, DEFAULT_LISTENER), lambda: (loop.run_until_complete(state.close()),
                                                                       loop.close())


# ---- CreateTopics: a duplicated name, a null config value, the configs answered
def test_create_topics_answers_a_duplicated_name_once_and_creates_it_not(b):
    results = create(b, new_topic("dup"), new_topic("dup", 2), new_topic("single"))
    assert sorted((r.name, int(r.error_code), r.error_message) for r in results) == [
        ("dup", E.INVALID_REQUEST, "Duplicate topic name."), ("single", E.NONE, None)]
    assert int(b.metadata("dup").topics[0].error_code) == E.UNKNOWN_TOPIC_OR_PARTITION


def test_create_topics_refuses_a_null_config_value(b):
    [r] = create(b, new_topic("nulls", configs={"retention.ms": None, "cleanup.policy": "compact"}))
    assert (int(r.error_code), r.error_message) == (E.INVALID_CONFIG,
                                                   "Null value not supported for topic configs: retention.ms")
    assert int(b.metadata("nulls").topics[0].error_code) == E.UNKNOWN_TOPIC_OR_PARTITION


STATIC_BROKER, DEFAULT_CONFIG, DYNAMIC_TOPIC = 4, 5, 1


@pytest.mark.parametrize("validate_only", [False, True])
def test_create_topics_answers_the_effective_configs_with_their_sources(tmp_path, validate_only):
    c, close = with_broker(tmp_path, **{"log.retention.ms": "3600000"})
    try:
        [r] = create(c, new_topic("eff", configs={"cleanup.policy": "compact"}), validate_only=validate_only)
        assert int(r.error_code) == E.NONE
        got = {x.name: (x.value, int(x.config_source)) for x in r.configs}
        assert got["retention.ms"] == ("3600000", STATIC_BROKER)
        assert got["cleanup.policy"] == ("compact", DYNAMIC_TOPIC)
        assert got["segment.ms"] == ("604800000", DEFAULT_CONFIG)
    finally:
        close()


# ---- CreatePartitions and DeleteTopics: duplicates, both or neither of name and id
def test_create_partitions_refuses_a_duplicated_topic_and_changes_nothing(b):
    create(b, new_topic("grow", 1))
    resp = b.call(37, 3, {"topics": [{"name": "grow", "count": 2, "assignments": None},
                                     {"name": "grow", "count": 3, "assignments": None}],
                          "timeout_ms": 5000, "validate_only": False})
    assert [(r.name, int(r.error_code), r.error_message) for r in resp.results] == [
        ("grow", E.INVALID_REQUEST, "Duplicate topic name.")]
    assert len(b.metadata("grow").topics[0].partitions) == 1


def delete(c: InProcess, rows, version: int = 6):
    body = ({"topics": [{"name": n, "topic_id": i or ZERO} for n, i in rows], "timeout_ms": 5000} if version >= 6
            else {"topic_names": list(rows), "timeout_ms": 5000})
    return sorted(((r.name, (r.topic_id or ZERO) if version >= 6 else None, int(r.error_code), getattr(r, "error_message", None))
                   for r in c.call(20, version, body).responses), key=str)


def exists(c: InProcess, name: str) -> bool:
    return int(c.metadata(name).topics[0].error_code) == E.NONE


def test_delete_topics_refuses_duplicates_and_rows_with_both_or_neither(b):
    for name in ("n", "i", "both"):
        create(b, new_topic(name))
    i_id, both_id = b.metadata("i").topics[0].topic_id, b.metadata("both").topics[0].topic_id
    got = delete(b, [("n", None), ("n", None), (None, i_id), (None, i_id), ("both", both_id), (None, None)])
    assert got == sorted([("n", ZERO, E.INVALID_REQUEST, "Duplicate topic name."),
                          (None, i_id, E.INVALID_REQUEST, "Duplicate topic id."),
                          ("both", both_id, E.INVALID_REQUEST, "You may not specify both topic name and topic id."),
                          (None, ZERO, E.INVALID_REQUEST, "Neither topic name nor id were specified.")], key=str)
    assert exists(b, "n") and exists(b, "i") and exists(b, "both")
    assert delete(b, ["n", "n"], version=5) == [("n", None, E.INVALID_REQUEST, "Duplicate topic name.")]
    assert exists(b, "n")


def test_delete_topics_disabled_refuses_the_whole_request_by_version(tmp_path):
    c, close = with_broker(tmp_path, **{"delete.topic.enable": "false"})
    try:
        create(c, new_topic("kept"))
        assert delete(c, ["kept"], version=2) == [("kept", None, E.INVALID_REQUEST, None)]   # v5+ carry a message
        assert [r[2] for r in delete(c, ["kept"], version=3)] == [E.TOPIC_DELETION_DISABLED]
        assert exists(c, "kept")
    finally:
        close()


# ---- DescribeConfigs / AlterConfigs / IncrementalAlterConfigs
def describe_topic(c: InProcess, name: str, keys=None, synonyms: bool = False, docs: bool = False):
    return c.call(32, 4, {"resources": [{"resource_type": 2, "resource_name": name, "configuration_keys": keys}],
                          "include_synonyms": synonyms, "include_documentation": docs}).results[0]


def alter(c: InProcess, resources, incremental: bool = True) -> list[tuple[int, str | None]]:
    if incremental:
        body = {"resources": [{"resource_type": 2, "resource_name": n, "configs": [
            {"name": k, "config_operation": op, "value": v} for k, op, v in ops]} for n, ops in resources],
            "validate_only": False}
    else:
        body = {"resources": [{"resource_type": 2, "resource_name": n, "configs": [
            {"name": k, "value": v} for k, v in ops]} for n, ops in resources], "validate_only": False}
    resp = c.call(44 if incremental else 33, 1 if incremental else 2, body)
    return [(int(r.error_code), r.error_message) for r in resp.responses]


SET, DELETE = 0, 1


def test_describe_configs_checks_the_topic_name_first(b):
    r = describe_topic(b, "bad name!")
    assert int(r.error_code) == E.INVALID_TOPIC_EXCEPTION and r.error_message
    r = describe_topic(b, "")
    assert (int(r.error_code), r.error_message) == (E.INVALID_REQUEST, "Default topic resources are not allowed.")
    assert int(describe_topic(b, "missing").error_code) == E.UNKNOWN_TOPIC_OR_PARTITION


def test_incremental_delete_of_a_key_not_set_is_a_no_op_but_setting_an_unknown_name_is_refused(b):
    create(b, new_topic("cfg"))
    assert alter(b, [("cfg", [("no.such.config", DELETE, None), ("retention.ms", DELETE, None)])]) == [(E.NONE, None)]
    [(code, message)] = alter(b, [("cfg", [("no.such.config", SET, "1")])])
    assert (code, message) == (E.INVALID_CONFIG, "Unknown topic config name: no.such.config")


@pytest.mark.parametrize("incremental", [True, False])
def test_a_resource_named_twice_in_one_alter_request_is_refused_and_not_applied(b, incremental):
    create(b, new_topic("twice"))
    ops = [("retention.ms", SET, "1000")] if incremental else [("retention.ms", "1000")]
    ops2 = [("segment.ms", SET, "2000")] if incremental else [("segment.ms", "2000")]
    got = alter(b, [("twice", ops), ("twice", ops2)], incremental)
    assert got == [(E.INVALID_REQUEST, "Each resource must appear at most once.")] * 2
    described = {c.name: c.value for c in describe_topic(b, "twice").configs}
    assert (described["retention.ms"], described["segment.ms"]) == ("604800000", "604800000")


def describe_broker(c: InProcess, name: str):
    return c.call(32, 4, {"resources": [{"resource_type": 4, "resource_name": name, "configuration_keys": None}],
                          "include_synonyms": False, "include_documentation": False}).results[0]


def test_a_broker_describes_the_default_and_its_own_id_and_refuses_another_brokers(b):
    """Kafka's ConfigHelper: "" is the cluster-wide dynamic defaults, this broker's id its own
    settings, another id INVALID_REQUEST (a client sends a broker's resource to that broker):
    answering with this broker's settings would show them as the other's."""
    own = describe_broker(b, "1")
    assert int(own.error_code) == E.NONE and {c.name: c.value for c in own.configs}["broker.id"] == "1"
    default = describe_broker(b, "")
    assert int(default.error_code) == E.NONE and "broker.id" not in {c.name for c in default.configs}
    other = describe_broker(b, "2")
    assert (int(other.error_code), other.error_message, list(other.configs)) == (
        E.INVALID_REQUEST, "Unexpected broker id, expected 1 or empty string, but received 2", [])
    assert int(describe_broker(b, "one").error_code) == E.INVALID_REQUEST


@pytest.mark.parametrize("incremental", [True, False])
def test_a_broker_alters_only_the_default_and_its_own_id(b, incremental):
    """Kafka's ConfigAdminManager.validateResourceNameIsCurrentNodeId, on the broker before it
    forwards the change: another broker's id is INVALID_REQUEST, and nothing is set."""
    def alter_broker(name: str):
        op = {"name": "log.retention.ms", "value": "3600000", **({"config_operation": SET} if incremental else {})}
        resp = b.call(44 if incremental else 33, 1 if incremental else 2, {"resources": [
            {"resource_type": 4, "resource_name": name, "configs": [op]}], "validate_only": False})
        return int(resp.responses[0].error_code), resp.responses[0].error_message

    assert alter_broker("2") == (E.INVALID_REQUEST, "Unexpected broker id, expected 1, but received 2")
    assert b.owner.coordinator.broker_configs().get("2") is None
    assert alter_broker("1") == (E.NONE, None)
    assert b.owner.coordinator.broker_configs()["1"] == {"log.retention.ms": "3600000"}


def test_legacy_alter_configs_refuses_a_null_value_as_kafka_4_does(b):
    create(b, new_topic("legacy", configs={"retention.ms": "5000"}))
    assert alter(b, [("legacy", [("retention.ms", None)])], incremental=False) == [
        (E.INVALID_REQUEST, "Null value not supported for : retention.ms")]
    assert alter(b, [("legacy", [("segment.ms", "1"), ("segment.ms", "2")])], incremental=False) == [
        (E.INVALID_REQUEST, "Error due to duplicate config keys")]
    assert {c.name: c.value for c in describe_topic(b, "legacy").configs}["retention.ms"] == "5000"


def test_describe_configs_answers_synonyms_and_documentation_when_asked(tmp_path):
    c, close = with_broker(tmp_path, **{"log.retention.ms": "3600000"})
    try:
        create(c, new_topic("syn", configs={"retention.ms": "5000"}))
        resp = c.call(44, 1, {"resources": [{"resource_type": 4, "resource_name": "", "configs": [
            {"name": "log.retention.ms", "config_operation": SET, "value": "7200000"}]}], "validate_only": False})
        assert int(resp.responses[0].error_code) == E.NONE
        [entry] = describe_topic(c, "syn", ["retention.ms"], synonyms=True, docs=True).configs
        assert [(s.name, s.value, int(s.source)) for s in entry.synonyms] == [
            ("retention.ms", "5000", DYNAMIC_TOPIC), ("log.retention.ms", "7200000", 3),
            ("log.retention.ms", "3600000", STATIC_BROKER), ("log.retention.ms", "604800000", DEFAULT_CONFIG)]
        assert entry.documentation
        [plain] = describe_topic(c, "syn", ["retention.ms"]).configs
        assert list(plain.synonyms) == [] and plain.documentation is None
    finally:
        close()


# ---- Produce: message.timestamp.before/after.max.ms (Kafka's LogValidator)
def produce_at(c: InProcess, topic: str, ts_ms: int):
    from sandbox.protocol.records import encode_batch
    resp = c.call(0, 9, {"transactional_id": None, "acks": 1, "timeout": 5000, "topic_data": [
        {"name": topic, "partition_data": [{"index": 0, "records": encode_batch(0, [b"a", b"b"], ts_ms)}]}]})
    return resp.responses[0].partition_responses[0]


def test_produce_refuses_create_time_timestamps_out_of_the_topic_bounds(b):
    import time
    now = int(time.time() * 1000)
    create(b, new_topic("ts"))
    create(b, new_topic("ts-open", configs={"message.timestamp.after.max.ms": str(2**63 - 1)}))
    create(b, new_topic("ts-append", configs={"message.timestamp.type": "LogAppendTime"}))
    create(b, new_topic("ts-old", configs={"message.timestamp.before.max.ms": "60000"}))
    ahead = produce_at(b, "ts", now + 3 * 3_600_000)   # three hours ahead; the default allows one
    assert int(ahead.error_code) == E.INVALID_TIMESTAMP
    assert [int(e.batch_index) for e in ahead.record_errors] == [0, 1]
    assert "is out of range" in ahead.record_errors[0].batch_index_error_message
    assert int(produce_at(b, "ts", now).error_code) == E.NONE
    assert int(produce_at(b, "ts-open", now + 3 * 3_600_000).error_code) == E.NONE
    assert int(produce_at(b, "ts-append", now + 3 * 3_600_000).error_code) == E.NONE
    assert int(produce_at(b, "ts-old", now - 3_600_000).error_code) == E.INVALID_TIMESTAMP
    assert int(produce_at(b, "ts", now - 10 * 86_400_000).error_code) == E.NONE   # no lower bound by default
