"""Requests answered in-process through a service's registry (no sockets, no subprocess): a
request dict is built with kio at the chosen version, encoded, dispatched as the server does,
and the reply decoded with kio."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any, Callable

from sandbox.protocol import (
    CLOSE, Registry, RequestHeader, build, decode_response, encode_request, join_parts, request_class,
)
from sandbox.protocol import errors as E


class InProcess:
    """One service's registry and the owner its handlers see (broker state or coordinator
    server), on an event loop of its own."""

    def __init__(self, registry: Registry, loop: asyncio.AbstractEventLoop, owner: Any, *extra: Any) -> None:
        self.registry, self.loop, self.owner, self.extra = registry, loop, owner, extra
        self._corr = itertools.count(1)

    def frame(self, api_key: int, version: int, body: dict | Any, correlation_id: int) -> bytes | bytearray:
        """The request frame (no size prefix) as the server's connection hands it over."""
        entity = build(request_class(api_key, version), body)
        raw = encode_request(RequestHeader(api_key, version, correlation_id, "in-process"), entity)[4:]
        return bytearray(raw) if api_key in self.registry.writable_keys else raw

    def raw(self, frame) -> Any:
        """The registry's answer to one frame, awaited if it had to wait, parts joined."""
        out = self.registry.dispatch(frame, self.owner, "in-process", *self.extra)
        if asyncio.iscoroutine(out):
            out = self.loop.run_until_complete(out)
        if isinstance(out, list):
            out = bytes(join_parts(out))
        return out

    def call(self, api_key: int, version: int, body: dict | Any) -> Any:
        """The decoded response entity (None when the handler sends no response)."""
        corr = next(self._corr)
        out = self.raw(self.frame(api_key, version, body, corr))
        assert out is not CLOSE, f"api key {api_key} v{version}: the connection would be closed"
        if out is None:
            return None
        got, response = decode_response(bytes(out)[4:], api_key, version)
        assert got == corr
        return response

    # ---- steps both services' cases take
    def create_topic(self, name: str = "t", partitions: int = 3):
        self.before_topics()
        resp = self.call(19, 7, {"topics": [{"name": name, "num_partitions": partitions, "replication_factor": 1,
                                             "assignments": [], "configs": []}],
                                 "timeout": 5000, "validate_only": False})
        return resp.topics[0]

    def before_topics(self) -> None:
        """What must be true before a topic can be created (the coordinator: a registered broker)."""

    def begin_txn(self, tid: str, topic: str, parts) -> tuple[int, int]:
        """A transactional id with an open transaction on partitions of `topic` (the broker):
        (producer id, epoch)."""
        assert int(self.call(10, 4, {"key_type": 1, "coordinator_keys": [tid]}).coordinators[0].error_code) == E.NONE
        init = self.call(22, 5, {"transactional_id": tid, "transaction_timeout": 10_000, "producer_id": -1,
                                 "producer_epoch": -1})
        assert int(init.error_code) == E.NONE
        add = self.call(24, 3, {"v3_and_below_transactional_id": tid, "v3_and_below_producer_id": init.producer_id,
                                "v3_and_below_producer_epoch": init.producer_epoch,
                                "v3_and_below_topics": [{"name": topic, "partitions": list(parts)}]})
        codes = [int(r.partition_error_code) for r in add.results_by_topic_v3_and_below[0].results_by_partition]
        assert codes == [E.NONE] * len(parts)
        return init.producer_id, init.producer_epoch

    def metadata(self, name: str = "t"):
        return self.call(3, 12, {"topics": [{"name": name, "topic_id": None}], "allow_auto_topic_creation": False,
                                 "include_topic_authorized_operations": False})

    def config_value(self, name: str, key: str) -> str | None:
        resp = self.call(32, 4, {"resources": [{"resource_type": 2, "resource_name": name,
                                                "configuration_keys": [key]}],
                                 "include_synonyms": False, "include_documentation": False})
        assert int(resp.results[0].error_code) == E.NONE
        return {c.name: c.value for c in resp.results[0].configs}[key]

    def describe_quotas(self):
        return self.call(48, 1, {"components": [{"entity_type": "client-id", "match_type": 0, "match": "c1"}],
                                 "strict": False})


Case = Callable[[InProcess], None]


class Cases(dict):
    """One in-process case per API key; check() fails when a registry has a key without one."""

    def add(self, api_key: int) -> Callable[[Case], Case]:
        def register(fn: Case) -> Case:
            assert api_key not in self, f"two cases for api key {api_key}"
            self[api_key] = fn
            return fn
        return register

    def assert_covers(self, registry: Registry) -> None:
        assert sorted(self) == list(registry), "a handler was added or removed: add or remove its case"

    def run(self, registry: Registry, api_key: int, service: InProcess) -> None:
        fn = self.get(api_key)
        assert fn is not None, f"api key {api_key} ({registry.get(api_key).name}) has no in-process case"
        fn(service)


#: the admin APIs the broker and the coordinator answer alike
SHARED = Cases()


@SHARED.add(19)
def create_topics_then_again(c: InProcess) -> None:
    t = c.create_topic("t", 3)
    assert int(t.error_code) == E.NONE and t.num_partitions == 3 and t.topic_id is not None
    assert int(c.create_topic("t", 3).error_code) == E.TOPIC_ALREADY_EXISTS


@SHARED.add(43)
def elect_leaders_not_needed_with_one_replica(c: InProcess) -> None:
    c.create_topic()
    resp = c.call(43, 2, {"election_type": 0, "topic_partitions": [{"topic": "t", "partitions": [0]}], "timeout": 5000})
    r = resp.replica_election_results[0]
    assert int(resp.error_code) == E.NONE and r.topic == "t"
    assert [(p.partition_id, int(p.error_code)) for p in r.partition_result] == [(0, E.ELECTION_NOT_NEEDED)]
    every = c.call(43, 2, {"election_type": 0, "topic_partitions": None, "timeout": 5000})
    assert int(every.error_code) == E.NONE and list(every.replica_election_results) == []   # no-ops unlisted


@SHARED.add(32)
def describe_configs_of_a_topic(c: InProcess) -> None:
    c.create_topic()
    assert c.config_value("t", "cleanup.policy") == "delete"


@SHARED.add(33)
def alter_configs_sets_a_topic_config(c: InProcess) -> None:
    c.create_topic()
    resp = c.call(33, 2, {"resources": [{"resource_type": 2, "resource_name": "t", "configs": [
        {"name": "retention.ms", "value": "1234"}]}], "validate_only": False})
    assert int(resp.responses[0].error_code) == E.NONE and resp.responses[0].resource_name == "t"
    assert c.config_value("t", "retention.ms") == "1234"


@SHARED.add(37)
def create_partitions_grows_the_topic(c: InProcess) -> None:
    c.create_topic("t", 3)
    resp = c.call(37, 3, {"topics": [{"name": "t", "count": 5, "assignments": None}], "timeout": 5000,
                          "validate_only": False})
    assert int(resp.results[0].error_code) == E.NONE
    assert len(c.metadata().topics[0].partitions) == 5


@SHARED.add(44)
def incremental_alter_configs_sets_a_topic_config(c: InProcess) -> None:
    c.create_topic()
    resp = c.call(44, 1, {"resources": [{"resource_type": 2, "resource_name": "t", "configs": [
        {"name": "retention.ms", "config_operation": 0, "value": "999"}]}], "validate_only": False})
    assert int(resp.responses[0].error_code) == E.NONE
    assert c.config_value("t", "retention.ms") == "999"
    # a GROUP resource (KIP-848 group configs): set, described with source GROUP_CONFIG (8)
    group = {"resource_type": 32, "resource_name": "g", "configuration_keys": None}
    resp = c.call(44, 1, {"resources": [{"resource_type": 32, "resource_name": "g", "configs": [
        {"name": "consumer.session.timeout.ms", "config_operation": 0, "value": "50000"}]}], "validate_only": False})
    assert int(resp.responses[0].error_code) == E.NONE, resp.responses[0].error_message
    described = c.call(32, 4, {"resources": [group], "include_synonyms": False, "include_documentation": False})
    entries = {e.name: e for e in described.results[0].configs}
    assert int(described.results[0].error_code) == E.NONE
    assert (entries["consumer.session.timeout.ms"].value, entries["consumer.session.timeout.ms"].config_source) == (
        "50000", 8)
    assert entries["consumer.heartbeat.interval.ms"].config_source == 5   # DEFAULT_CONFIG
    resp = c.call(44, 1, {"resources": [{"resource_type": 32, "resource_name": "g", "configs": [
        {"name": "consumer.session.timeout.ms", "config_operation": 0, "value": "100"}]}], "validate_only": False})
    assert int(resp.responses[0].error_code) == E.INVALID_CONFIG
    # APPEND on a key that is not a list is refused for that resource only, and changes nothing
    c.create_topic("t2")
    resp = c.call(44, 1, {"resources": [
        {"resource_type": 2, "resource_name": "t", "configs": [
            {"name": "retention.ms", "config_operation": 2, "value": "5"}]},
        {"resource_type": 2, "resource_name": "t2", "configs": [
            {"name": "cleanup.policy", "config_operation": 2, "value": "compact"}]}], "validate_only": False})
    assert [int(r.error_code) for r in resp.responses] == [E.INVALID_CONFIG, E.NONE]
    assert resp.responses[0].error_message == "Config value append is not allowed for config key: retention.ms"
    resp = c.call(44, 1, {"resources": [{"resource_type": 2, "resource_name": "t", "configs": [
        {"name": "cleanup.policy", "config_operation": 2, "value": "compact"}]}], "validate_only": False})
    assert int(resp.responses[0].error_code) == E.NONE
    assert c.config_value("t", "retention.ms") == "999"
    assert c.config_value("t", "cleanup.policy") == "delete,compact"


@SHARED.add(45)
def alter_partition_reassignments_checks_the_target(c: InProcess) -> None:
    c.create_topic("t", 1)
    here = list(c.metadata().topics[0].partitions[0].replica_nodes)

    def one(partition: int, replicas) -> int:
        resp = c.call(45, 0, {"timeout": 5000, "topics": [{"name": "t", "partitions": [
            {"partition_index": partition, "replicas": replicas}]}]})
        assert int(resp.error_code) == E.NONE
        return int(resp.responses[0].partitions[0].error_code)

    assert one(0, here) == E.NONE                      # already there: a no-op
    assert one(0, [99]) == E.INVALID_REPLICA_ASSIGNMENT  # not a registered broker
    assert one(0, here + here) == E.INVALID_REPLICA_ASSIGNMENT
    assert one(0, None) == E.NO_REASSIGNMENT_IN_PROGRESS
    assert one(7, here) == E.UNKNOWN_TOPIC_OR_PARTITION


@SHARED.add(46)
def list_partition_reassignments_none_running(c: InProcess) -> None:
    c.create_topic("t", 1)
    resp = c.call(46, 0, {"timeout": 5000, "topics": None})
    assert int(resp.error_code) == E.NONE and resp.topics == ()
    resp = c.call(46, 0, {"timeout": 5000, "topics": [{"name": "t", "partition_indexes": [0]}]})
    assert int(resp.error_code) == E.NONE and resp.topics == ()


@SHARED.add(51)
def alter_user_scram_credentials_stores_and_checks(c: InProcess) -> None:
    def alter(deletions=(), upsertions=()):
        resp = c.call(51, 0, {"deletions": list(deletions), "upsertions": [
            {"name": n, "mechanism": m, "iterations": i, "salt": b"salt", "salted_password": b"salted"}
            for n, m, i in upsertions]})
        return {r.user: int(r.error_code) for r in resp.results}

    assert alter(upsertions=[("alice", 1, 8192), ("", 1, 8192), ("bob", 1, 1000), ("carol", 3, 8192)]) == {
        "alice": E.NONE, "": E.UNACCEPTABLE_CREDENTIAL, "bob": E.UNACCEPTABLE_CREDENTIAL,
        "carol": E.UNSUPPORTED_SASL_MECHANISM}
    assert alter(deletions=[{"name": "dave", "mechanism": 1}]) == {"dave": E.RESOURCE_NOT_FOUND}
    assert alter(deletions=[{"name": "alice", "mechanism": 1}], upsertions=[("alice", 2, 4096)]) == {
        "alice": E.DUPLICATE_RESOURCE}
    assert alter(deletions=[{"name": "alice", "mechanism": 1}]) == {"alice": E.NONE}
    assert alter(deletions=[{"name": "alice", "mechanism": 1}]) == {"alice": E.RESOURCE_NOT_FOUND}


ACL = {"resource_type": 2, "resource_name": "t", "resource_pattern_type": 3, "principal": "User:alice",
       "host": "*", "operation": 3, "permission_type": 3}


@SHARED.add(30)
def create_acls_checked_as_kafka_checks_them(c: InProcess) -> None:
    other_cluster = dict(ACL, resource_type=4, resource_name="other")
    no_colon = dict(ACL, principal="alice")
    resp = c.call(30, 3, {"creations": [ACL, other_cluster, no_colon, ACL]})
    assert [int(r.error_code) for r in resp.results] == [E.NONE, E.INVALID_REQUEST, E.INVALID_REQUEST, E.NONE]


@SHARED.add(31)
def delete_acls_removes_what_the_filter_matches(c: InProcess) -> None:
    write = dict(ACL, operation=4)
    c.call(30, 3, {"creations": [ACL, write]})
    only_writes = {"resource_type_filter": 2, "resource_name_filter": "t", "pattern_type_filter": 3,
                   "principal_filter": None, "host_filter": None, "operation": 4, "permission_type": 1}
    resp = c.call(31, 3, {"filters": [only_writes]})
    assert [[(m.resource_name, int(m.operation)) for m in r.matching_acls] for r in resp.filter_results] == [[("t", 4)]]
    assert [[int(m.operation) for m in r.matching_acls] for r in c.call(31, 3, {"filters": [
        dict(only_writes, operation=1)]}).filter_results] == [[3]]


@SHARED.add(48)
def describe_client_quotas_none_set(c: InProcess) -> None:
    resp = c.describe_quotas()
    assert int(resp.error_code) == E.NONE and resp.entries == ()


@SHARED.add(49)
def alter_client_quotas_then_describe(c: InProcess) -> None:
    resp = c.call(49, 1, {"entries": [{"entity": [{"entity_type": "client-id", "entity_name": "c1"}], "ops": [
        {"key": "producer_byte_rate", "value": 1024.0, "remove": False}]}], "validate_only": False})
    assert [int(e.error_code) for e in resp.entries] == [E.NONE]
    values = c.describe_quotas().entries[0].values
    assert [(v.key, v.value) for v in values] == [("producer_byte_rate", 1024.0)]


@SHARED.add(74)
def list_config_resources_names_topics_brokers_and_configured_groups(c: InProcess) -> None:
    c.create_topic("t", 1)
    resp = c.call(44, 1, {"resources": [{"resource_type": 32, "resource_name": "g1", "configs": [
        {"name": "consumer.session.timeout.ms", "config_operation": 0, "value": "50000"}]}], "validate_only": False})
    assert int(resp.responses[0].error_code) == E.NONE
    listed = c.call(74, 1, {"resource_types": []})
    got = {(r.resource_name, int(r.resource_type)) for r in listed.config_resources}
    assert int(listed.error_code) == E.NONE
    assert {("t", 2), ("g1", 32)} <= got and any(kind == 4 for _n, kind in got)
    groups = c.call(74, 1, {"resource_types": [32]})
    assert [(r.resource_name, int(r.resource_type)) for r in groups.config_resources] == [("g1", 32)]
    assert int(c.call(74, 1, {"resource_types": [99]}).error_code) == E.UNSUPPORTED_VERSION
    assert c.call(74, 0, {}).config_resources == ()   # v0: client metrics resources, none kept


@SHARED.add(57)
def update_features_validate_only(c: InProcess) -> None:
    resp = c.call(57, 1, {"timeout": 5000, "validate_only": True, "feature_updates": [
        {"feature": "metadata.version", "max_version_level": 25, "upgrade_type": 1}]})
    assert int(resp.error_code) == E.NONE
    assert [(r.feature, int(r.error_code)) for r in resp.results] == [("metadata.version", E.NONE)]
