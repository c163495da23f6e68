"""Every API key the coordinator registers, answered in-process through its registry: a
coordinator server opened in a temp dir without sockets (as start() opens it), a request encoded
with kio, the frame dispatched, the reply decoded with kio. A key registered without a case here
fails the suite."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Callable

import pytest

from inprocess import InProcess
from sandbox.coordinator.handlers import REGISTRY
from sandbox.coordinator.server import CoordinatorConfig, CoordinatorServer
from sandbox.protocol import errors as E
from sandbox.protocol.records import decode_batches

BROKER_PORT = 19092
CASES: dict[int, Callable[[InProcess], None]] = {}


def case(api_key: int):
    def register(fn):
        assert api_key not in CASES, f"two cases for api key {api_key}"
        CASES[api_key] = fn
        return fn
    return register


@pytest.fixture
def coord(tmp_path):
    loop = asyncio.new_event_loop()
    server = CoordinatorServer(CoordinatorConfig(data_dir=Path(tmp_path / "coordinator"), port=0))
    try:
        server.open()
        yield InProcess(REGISTRY, loop, server)
    finally:
        server.close()
        loop.close()


# ---- shared steps
def register(c: InProcess, broker_id: int = 1):
    return c.call(62, 3, {"broker_id": broker_id, "cluster_id": c.owner.coordinator.cluster_id,
                          "incarnation_id": uuid.uuid4(), "features": [], "rack": None, "listeners": [
                              {"name": "PLAINTEXT", "host": "127.0.0.1", "port": BROKER_PORT, "security_protocol": 0}]})


def create_topic(c: InProcess, name: str = "t", partitions: int = 3):
    register(c)
    resp = c.call(19, 7, {"topics": [{"name": name, "num_partitions": partitions, "replication_factor": 1,
                                      "assignments": [], "configs": []}], "timeout": 5000, "validate_only": False})
    return resp.topics[0]


def metadata(c: InProcess, name: str = "t"):
    return c.call(3, 12, {"topics": [{"name": name, "topic_id": None}], "allow_auto_topic_creation": False,
                          "include_topic_authorized_operations": False})


def config_value(c: InProcess, name: str, key: str) -> str | None:
    resp = c.call(32, 4, {"resources": [{"resource_type": 2, "resource_name": name, "configuration_keys": [key]}],
                          "include_synonyms": False, "include_documentation": False})
    assert int(resp.results[0].error_code) == E.NONE
    return {x.name: x.value for x in resp.results[0].configs}[key]


def metadata_end(c: InProcess) -> int:
    resp = c.call(2, 7, {"replica_id": -1, "isolation_level": 0, "topics": [
        {"name": "__cluster_metadata", "partitions": [{"partition_index": 0, "timestamp": -1}]}]})
    p = resp.topics[0].partitions[0]
    assert int(p.error_code) == E.NONE
    return p.offset


# ---- one case per API key
@case(1)
def fetch_of_the_metadata_log_follows_its_end(c):
    create_topic(c)
    resp = c.call(1, 12, {"replica_id": 1, "max_wait": 0, "min_bytes": 1, "max_bytes": 1 << 20, "isolation_level": 0,
                          "session_id": 0, "session_epoch": -1, "cluster_id": None, "rack_id": "",
                          "forgotten_topics_data": [], "topics": [{"topic": "__cluster_metadata", "partitions": [
                              {"partition": 0, "fetch_offset": 0, "partition_max_bytes": 1 << 20}]}]})
    p = resp.responses[0].partitions[0]
    assert int(resp.error_code) == E.NONE and int(p.error_code) == E.NONE
    assert p.high_watermark == metadata_end(c)
    last = decode_batches(bytes(p.records))[-1]    # from offset 0, a follower gets the state as a snapshot
    record = json.loads(last.value)
    assert last.offset == p.high_watermark - 1 and record["type"] == "snapshot"
    assert [t["name"] for t in record["state"]["topics"]] == ["t"]


@case(2)
def list_offsets_of_the_metadata_log_grows_with_changes(c):
    before = metadata_end(c)
    create_topic(c)
    assert metadata_end(c) > before


@case(3)
def metadata_shows_a_created_topic_and_the_registered_broker(c):
    created = create_topic(c, "orders", 3)
    resp = metadata(c, "orders")
    t = resp.topics[0]
    assert int(t.error_code) == E.NONE and t.topic_id == created.topic_id
    assert sorted(p.partition_index for p in t.partitions) == [0, 1, 2]
    assert [(b.node_id, b.port) for b in resp.brokers] == [(1, BROKER_PORT)]
    assert int(metadata(c, "never-made").topics[0].error_code) == E.UNKNOWN_TOPIC_OR_PARTITION


@case(18)
def api_versions_lists_every_key(c):
    resp = c.call(18, 3, {"client_software_name": "t", "client_software_version": "1"})
    assert int(resp.error_code) == E.NONE
    assert [(k.api_key, k.min_version, k.max_version) for k in resp.api_keys] == REGISTRY.supported_versions()


@case(19)
def create_topics_then_again(c):
    t = create_topic(c, "t", 3)
    assert int(t.error_code) == E.NONE and t.num_partitions == 3 and t.topic_id is not None
    assert int(create_topic(c, "t", 3).error_code) == E.TOPIC_ALREADY_EXISTS


@case(20)
def delete_topics_removes_it_from_metadata(c):
    create_topic(c)
    resp = c.call(20, 5, {"topic_names": ["t"], "timeout": 5000})
    assert [(r.name, int(r.error_code)) for r in resp.responses] == [("t", E.NONE)]
    assert int(metadata(c).topics[0].error_code) == E.UNKNOWN_TOPIC_OR_PARTITION


@case(32)
def describe_configs_of_a_topic(c):
    create_topic(c)
    assert config_value(c, "t", "cleanup.policy") == "delete"


@case(33)
def alter_configs_sets_a_topic_config(c):
    create_topic(c)
    resp = c.call(33, 2, {"resources": [{"resource_type": 2, "resource_name": "t", "configs": [
        {"name": "retention.ms", "value": "1234"}]}], "validate_only": False})
    assert int(resp.responses[0].error_code) == E.NONE and resp.responses[0].resource_name == "t"
    assert config_value(c, "t", "retention.ms") == "1234"


@case(37)
def create_partitions_grows_the_topic(c):
    create_topic(c, "t", 3)
    resp = c.call(37, 3, {"topics": [{"name": "t", "count": 5, "assignments": None}], "timeout": 5000,
                          "validate_only": False})
    assert int(resp.results[0].error_code) == E.NONE
    assert len(metadata(c).topics[0].partitions) == 5


@case(44)
def incremental_alter_configs_sets_a_topic_config(c):
    create_topic(c)
    resp = c.call(44, 1, {"resources": [{"resource_type": 2, "resource_name": "t", "configs": [
        {"name": "retention.ms", "config_operation": 0, "value": "999"}]}], "validate_only": False})
    assert int(resp.responses[0].error_code) == E.NONE
    assert config_value(c, "t", "retention.ms") == "999"


def describe_quotas(c):
    return c.call(48, 1, {"components": [{"entity_type": "client-id", "match_type": 0, "match": "c1"}], "strict": False})


@case(48)
def describe_client_quotas_none_set(c):
    resp = describe_quotas(c)
    assert int(resp.error_code) == E.NONE and resp.entries == ()


@case(49)
def alter_client_quotas_then_describe(c):
    resp = c.call(49, 1, {"entries": [{"entity": [{"entity_type": "client-id", "entity_name": "c1"}], "ops": [
        {"key": "producer_byte_rate", "value": 1024.0, "remove": False}]}], "validate_only": False})
    assert [int(e.error_code) for e in resp.entries] == [E.NONE]
    values = describe_quotas(c).entries[0].values
    assert [(v.key, v.value) for v in values] == [("producer_byte_rate", 1024.0)]


@case(55)
def describe_quorum_names_the_controller_the_only_voter(c):
    resp = c.call(55, 2, {"topics": [{"topic_name": "__cluster_metadata", "partitions": [{"partition_index": 0}]}]})
    p = resp.topics[0].partitions[0]
    assert int(resp.error_code) == E.NONE and int(p.error_code) == E.NONE
    assert [v.replica_id for v in p.current_voters] == [p.leader_id] and p.high_watermark == metadata_end(c)


@case(57)
def update_features_validate_only(c):
    resp = c.call(57, 1, {"timeout": 5000, "validate_only": True, "feature_updates": [
        {"feature": "metadata.version", "max_version_level": 25, "upgrade_type": 1}]})
    assert int(resp.error_code) == E.NONE
    assert [(r.feature, int(r.error_code)) for r in resp.results] == [("metadata.version", E.NONE)]


@case(60)
def describe_cluster_lists_the_registered_broker(c):
    register(c)
    resp = c.call(60, 1, {"include_cluster_authorized_operations": False, "endpoint_type": 1})
    assert int(resp.error_code) == E.NONE and resp.cluster_id == c.owner.coordinator.cluster_id
    assert [(b.broker_id, b.port) for b in resp.brokers] == [(1, BROKER_PORT)]


@case(62)
def broker_registration_gives_an_epoch(c):
    resp = register(c)
    assert int(resp.error_code) == E.NONE and resp.broker_epoch > 0
    assert c.owner.sessions == {1: resp.broker_epoch}


@case(63)
def broker_heartbeat_with_the_current_and_a_stale_epoch(c):
    epoch = register(c).broker_epoch
    beat = {"broker_id": 1, "current_metadata_offset": 0, "want_fence": False, "want_shut_down": False}
    resp = c.call(63, 2, dict(beat, broker_epoch=epoch))
    assert int(resp.error_code) == E.NONE and not resp.is_fenced and not resp.should_shut_down
    assert int(c.call(63, 2, dict(beat, broker_epoch=epoch + 100)).error_code) == E.STALE_BROKER_EPOCH


@case(64)
def unregister_broker_removes_it(c):
    register(c)
    resp = c.call(64, 0, {"broker_id": 1})
    assert int(resp.error_code) == E.NONE
    assert metadata(c).brokers == ()


@case(67)
def allocate_producer_ids_hands_out_disjoint_blocks(c):
    epoch = register(c).broker_epoch
    first = c.call(67, 0, {"broker_id": 1, "broker_epoch": epoch})
    second = c.call(67, 0, {"broker_id": 1, "broker_epoch": epoch})
    assert int(first.error_code) == E.NONE and first.producer_id_len > 0
    assert second.producer_id_start >= first.producer_id_start + first.producer_id_len


# ---- the registry and the cases agree
def test_every_registered_key_has_a_case():
    assert sorted(CASES) == list(REGISTRY), "a handler was added or removed: add or remove its case here"


@pytest.mark.parametrize("api_key", list(REGISTRY))
def test_handler_in_process(api_key, coord):
    fn = CASES.get(api_key)
    assert fn is not None, f"api key {api_key} ({REGISTRY.get(api_key).name}) has no in-process case"
    fn(coord)
