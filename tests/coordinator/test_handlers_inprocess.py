"""Every API key the coordinator registers, answered in-process through its registry: a
coordinator server opened in a temp dir without sockets (as start() opens it), a request encoded
with kio, the frame dispatched, the reply decoded with kio. A key registered without a case here
fails the suite."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
import pytest

from inprocess import SHARED, Cases, InProcess
from sandbox.coordinator.handlers import REGISTRY
from sandbox.coordinator.server import CoordinatorConfig, CoordinatorServer
from sandbox.protocol import errors as E
from sandbox.protocol.records import decode_batches

BROKER_PORT = 19092
CASES = Cases(SHARED)   # the admin APIs both services answer alike, then this service's own
case = CASES.add


@pytest.fixture
def coord(tmp_path):
    loop = asyncio.new_event_loop()
    server = CoordinatorServer(CoordinatorConfig(data_dir=Path(tmp_path / "coordinator"), port=0))
    try:
        server.open()
        c = InProcess(REGISTRY, loop, server)
        c.before_topics = lambda: register(c)
        yield c
    finally:
        server.close()
        loop.close()


# ---- shared steps
def register(c: InProcess, broker_id: int = 1):
    return c.call(62, 3, {"broker_id": broker_id, "cluster_id": c.owner.coordinator.cluster_id,
                          "incarnation_id": uuid.uuid4(), "features": [], "rack": None, "listeners": [
                              {"name": "PLAINTEXT", "host": "127.0.0.1", "port": BROKER_PORT, "security_protocol": 0}]})


def metadata_end(c: InProcess) -> int:
    resp = c.call(2, 7, {"replica_id": -1, "isolation_level": 0, "topics": [
        {"name": "__cluster_metadata", "partitions": [{"partition_index": 0, "timestamp": -1}]}]})
    p = resp.topics[0].partitions[0]
    assert int(p.error_code) == E.NONE
    return p.offset


# ---- one case per API key
@case(1)
def fetch_of_the_metadata_log_follows_its_end(c):
    c.create_topic()
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
    c.create_topic()
    assert metadata_end(c) > before


@case(3)
def metadata_shows_a_created_topic_and_the_registered_broker(c):
    created = c.create_topic("orders", 3)
    resp = c.metadata("orders")
    t = resp.topics[0]
    assert int(t.error_code) == E.NONE and t.topic_id == created.topic_id
    assert sorted(p.partition_index for p in t.partitions) == [0, 1, 2]
    assert [(b.node_id, b.port) for b in resp.brokers] == [(1, BROKER_PORT)]
    assert int(c.metadata("never-made").topics[0].error_code) == E.UNKNOWN_TOPIC_OR_PARTITION


@case(18)
def api_versions_lists_every_key(c):
    resp = c.call(18, 3, {"client_software_name": "t", "client_software_version": "1"})
    assert int(resp.error_code) == E.NONE
    assert [(k.api_key, k.min_version, k.max_version) for k in resp.api_keys] == REGISTRY.supported_versions()


@case(20)
def delete_topics_removes_it_from_metadata(c):
    c.create_topic()
    resp = c.call(20, 5, {"topic_names": ["t"], "timeout": 5000})
    assert [(r.name, int(r.error_code)) for r in resp.responses] == [("t", E.NONE)]
    assert int(c.metadata().topics[0].error_code) == E.UNKNOWN_TOPIC_OR_PARTITION


@case(55)
def describe_quorum_names_the_controller_the_only_voter(c):
    resp = c.call(55, 2, {"topics": [{"topic_name": "__cluster_metadata", "partitions": [{"partition_index": 0}]}]})
    p = resp.topics[0].partitions[0]
    assert int(resp.error_code) == E.NONE and int(p.error_code) == E.NONE
    assert [v.replica_id for v in p.current_voters] == [p.leader_id] and p.high_watermark == metadata_end(c)


@case(60)
def describe_cluster_lists_the_registered_broker(c):
    register(c)
    resp = c.call(60, 1, {"include_cluster_authorized_operations": False, "endpoint_type": 1})
    assert int(resp.error_code) == E.NONE and resp.cluster_id == c.owner.coordinator.cluster_id
    assert [(b.broker_id, b.port) for b in resp.brokers] == [(1, BROKER_PORT)]


@case(56)
def alter_partition_shrinks_the_isr_once_and_refuses_the_stale_repeat(c):
    epochs = {b: register(c, b).broker_epoch for b in (1, 2)}
    resp = c.call(19, 7, {"topics": [{"name": "r", "num_partitions": 1, "replication_factor": 2,
                                      "assignments": [], "configs": []}], "timeout": 5000, "validate_only": False})
    tid = resp.topics[0].topic_id
    p = c.owner.coordinator.topic("r").partitions[0]
    ask = {"broker_id": p.leader, "broker_epoch": epochs[p.leader], "topics": [{"topic_id": tid, "partitions": [{
        "partition_index": 0, "leader_epoch": p.leader_epoch, "partition_epoch": p.partition_epoch,
        "leader_recovery_state": 0, "new_isr_with_epochs": [{"broker_id": p.leader, "broker_epoch": -1}]}]}]}
    out = c.call(56, 3, ask).topics[0].partitions[0]
    assert int(out.error_code) == E.NONE and list(out.isr) == [p.leader]
    assert out.partition_epoch == p.partition_epoch + 1
    assert c.owner.coordinator.topic("r").partitions[0].isr == (p.leader,)
    again = c.call(56, 3, ask).topics[0].partitions[0]
    assert int(again.error_code) == E.INVALID_UPDATE_VERSION
    assert int(c.call(56, 3, dict(ask, broker_epoch=epochs[p.leader] + 9)).error_code) == E.STALE_BROKER_EPOCH


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
    assert c.metadata().brokers == ()


@case(67)
def allocate_producer_ids_hands_out_disjoint_blocks(c):
    epoch = register(c).broker_epoch
    first = c.call(67, 0, {"broker_id": 1, "broker_epoch": epoch})
    second = c.call(67, 0, {"broker_id": 1, "broker_epoch": epoch})
    assert int(first.error_code) == E.NONE and first.producer_id_len > 0
    assert second.producer_id_start >= first.producer_id_start + first.producer_id_len


# ---- the registry and the cases agree
def test_every_registered_key_has_a_case():
    CASES.assert_covers(REGISTRY)


@pytest.mark.parametrize("api_key", list(REGISTRY))
def test_handler_in_process(api_key, coord):
    CASES.run(REGISTRY, api_key, coord)
