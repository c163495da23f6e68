"""The coordinator service over real sockets: ApiVersions, broker registration/heartbeat/fencing,
placement across brokers, admin APIs, the __cluster_metadata feed, and bad input."""
from __future__ import annotations

import socket
import struct
import threading
import time
import uuid

import pytest

from coordinator.server_helpers import (
    RawClient, ThreadedCoordinator, create_topics_request, fetch_request, heartbeat_request,
    metadata_request, register_request,
)

from helpers import wait_for
from sandbox.coordinator import MetadataMachine
from sandbox.coordinator.feed import decode_record
from sandbox.protocol import build, request_class
from sandbox.protocol.records import decode_batches


@pytest.fixture
def start_server(tmp_path):
    started: list[ThreadedCoordinator] = []

    def make(**kw) -> ThreadedCoordinator:
        kw.setdefault("tick_interval_s", 0.05)
        srv = ThreadedCoordinator(tmp_path / "coordinator", **kw).start()
        started.append(srv)
        return srv

    yield make
    for srv in started:
        srv.stop()


@pytest.fixture
def server(start_server) -> ThreadedCoordinator:
    return start_server()


def register(c: RawClient, broker_id: int, **kw) -> int:
    resp = c.request(register_request(broker_id, 9000 + broker_id, **kw))
    assert resp.error_code == 0, resp
    return resp.broker_epoch


def leaders(c: RawClient, topic: str) -> list[int]:
    meta = c.request(metadata_request([topic]))
    return [p.leader_id for p in meta.topics[0].partitions]


def records_of(partition) -> list[tuple[int, dict]]:
    return [(r.offset, decode_record(r.value)) for r in decode_batches(bytes(partition.records))]


def test_api_versions_derived_from_registry_with_v0_fallback(server):
    with RawClient(server.port) as c:
        resp = c.request(build(request_class(18, 3), {"client_software_name": "t",
                                                       "client_software_version": "1"}))
        keys = {k.api_key: (k.min_version, k.max_version) for k in resp.api_keys}
        assert resp.error_code == 0
        for key in (1, 2, 3, 18, 19, 20, 32, 33, 37, 44, 60, 62, 63, 64, 67):
            assert key in keys
        assert keys[18] == (0, 4) and keys[3] == (0, 13) and keys[62][1] >= 3
        # a version we lack: the v0 body with UNSUPPORTED_VERSION and the full list
        body = struct.pack(">hhih", 18, 9, 7, 1) + b"t"
        c.send_raw(struct.pack(">i", len(body)) + body)
        frame = c.recv_frame()
        corr, err, count = struct.unpack_from(">ihi", frame)
        assert (corr, err, count) == (7, 35, len(keys))


def test_registration_heartbeat_and_their_errors(server):
    with RawClient(server.port) as c:
        epoch = register(c, 1)
        ok = c.request(heartbeat_request(1, epoch))
        assert (ok.error_code, ok.is_fenced, ok.should_shut_down) == (0, False, False)
        assert c.request(heartbeat_request(1, epoch - 1)).error_code == 77  # STALE_BROKER_EPOCH
        assert c.request(heartbeat_request(7, 0)).error_code == 102  # BROKER_ID_NOT_REGISTERED
        cluster = c.request(metadata_request()).cluster_id
        bad = c.request(register_request(2, 9002, cluster_id="not-" + cluster))
        assert bad.error_code == 104  # INCONSISTENT_CLUSTER_ID
        assert c.request(register_request(2, 9002, cluster_id=cluster)).error_code == 0
        # a second process claiming a live broker id is refused
        assert c.request(register_request(1, 9101)).error_code == 101
        for bid, version in ((3, 0), (4, 4)):
            assert c.request(register_request(bid, 9000 + bid, version=version)).error_code == 0
        c.request(build(request_class(64, 0), {"broker_id": 4}))
        meta = c.request(metadata_request())
        assert {(b.node_id, b.port) for b in meta.brokers} == {(1, 9001), (2, 9002), (3, 9003)}
        assert meta.controller_id == -1
        # controlled shutdown: fenced now, out of Metadata, heartbeats must re-register
        resp = c.request(build(request_class(64, 0), {"broker_id": 3}))
        assert resp.error_code == 0
        assert 3 not in {b.node_id for b in c.request(metadata_request()).brokers}
        cluster_v2 = c.request(build(request_class(60, 2), {
            "include_cluster_authorized_operations": False, "include_fenced_brokers": True}))
        assert {(b.broker_id, b.is_fenced) for b in cluster_v2.brokers} == {
            (1, False), (2, False), (3, True), (4, True)}
        # want_shut_down in a heartbeat: fenced and told to proceed
        bye = c.request(heartbeat_request(1, epoch, want_shut_down=True))
        assert (bye.error_code, bye.should_shut_down, bye.is_fenced) == (0, True, True)
        assert c.request(heartbeat_request(1, epoch)).error_code == 102  # must register again


def test_fencing_after_session_timeout_and_reregistration(start_server):
    server = start_server(session_timeout_ms=1500)
    with RawClient(server.port) as c:
        e1, e2 = register(c, 1), register(c, 2)
        created = c.request(create_topics_request(("orders", 2)))
        assert created.topics[0].error_code == 0
        assert sorted(leaders(c, "orders")) == [1, 2]
        t0 = time.monotonic()

        def fenced() -> bool:  # only broker 2 keeps heartbeating
            assert c.request(heartbeat_request(2, e2)).error_code == 0
            return -1 in leaders(c, "orders")

        wait_for(fenced, 10, interval=0.2, what="broker 1 fenced (a partition without leader)")
        fenced_after = time.monotonic() - t0
        assert fenced_after >= 1.4
        meta = c.request(metadata_request(["orders"]))
        assert {b.node_id for b in meta.brokers} == {2}
        dead = [p for p in meta.topics[0].partitions if p.leader_id == -1]
        assert len(dead) == 1 and dead[0].error_code == 5  # LEADER_NOT_AVAILABLE
        # a fenced broker's heartbeat at its current epoch unfences it ...
        assert c.request(heartbeat_request(1, e1)).is_fenced is False
        assert sorted(leaders(c, "orders")) == [1, 2]
        # ... and after a restart (new incarnation, new epoch) registration restores it too
        c.request(build(request_class(64, 0), {"broker_id": 1}))
        assert -1 in leaders(c, "orders")
        new_epoch = register(c, 1)
        assert new_epoch > e1
        assert sorted(leaders(c, "orders")) == [1, 2]
        assert c.request(heartbeat_request(1, e1)).error_code == 77


def test_create_topics_places_partitions_across_three_brokers(server):
    with RawClient(server.port) as c:
        for b in (1, 2, 3):
            register(c, b)
        dry = c.request(create_topics_request(("orders", 6), validate_only=True))
        assert dry.topics[0].error_code == 0 and dry.topics[0].num_partitions == 6
        assert c.request(metadata_request(["orders"])).topics[0].error_code == 3
        resp = c.request(create_topics_request(("orders", 6), ("bad name!", 1)))
        by_name = {t.name: t for t in resp.topics}
        assert by_name["orders"].error_code == 0 and by_name["bad name!"].error_code == 17
        assert by_name["orders"].topic_id != uuid.UUID(int=0)
        meta = c.request(metadata_request(["orders"]))
        topic = meta.topics[0]
        assert topic.topic_id == by_name["orders"].topic_id
        placed = [p.leader_id for p in topic.partitions]
        assert sorted(placed) == [1, 1, 2, 2, 3, 3]
        assert all(p.replica_nodes == (p.leader_id,) == p.isr_nodes for p in topic.partitions)
        again = c.request(create_topics_request(("orders", 1)))
        assert again.topics[0].error_code == 36  # TOPIC_ALREADY_EXISTS
        # v0 Metadata: [] means all topics
        assert [t.name for t in c.request(metadata_request([], version=0)).topics] == ["orders"]


def test_create_topics_answers_a_duplicated_name_once_and_creates_it_not(server):
    """The coordinator's own CreateTopics, as the broker's and Kafka's ControllerApis: a name
    asked for twice is INVALID_REQUEST "Duplicate topic name." once, and not created."""
    with RawClient(server.port) as c:
        register(c, 1)
        resp = c.request(create_topics_request(("dup", 1), ("dup", 2), ("single", 1)))
        assert sorted((t.name, t.error_code, t.error_message) for t in resp.topics) == [
            ("dup", 42, "Duplicate topic name."), ("single", 0, None)]
        assert c.request(metadata_request(["dup"])).topics[0].error_code == 3


def test_partitions_configs_and_delete_over_the_wire(server):
    with RawClient(server.port) as c:
        register(c, 1)
        c.request(create_topics_request(("t", 1)))
        grow = c.request(build(request_class(37, 3), {
            "topics": [{"name": "t", "count": 3, "assignments": None}], "timeout": 5000,
            "validate_only": False}))
        assert grow.results[0].error_code == 0
        assert len(leaders(c, "t")) == 3
        shrink = c.request(build(request_class(37, 3), {
            "topics": [{"name": "t", "count": 2, "assignments": None}], "timeout": 5000,
            "validate_only": False}))
        assert shrink.results[0].error_code == 37  # INVALID_PARTITIONS

        inc = c.request(build(request_class(44, 1), {"validate_only": False, "resources": [{
            "resource_type": 2, "resource_name": "t", "configs": [
                {"name": "retention.ms", "config_operation": 0, "value": "1000"},
                {"name": "cleanup.policy", "config_operation": 2, "value": "compact"}]}]}))
        assert inc.responses[0].error_code == 0
        desc = c.request(build(request_class(32, 4), {
            "resources": [{"resource_type": 2, "resource_name": "t",
                           "configuration_keys": None}],
            "include_synonyms": False, "include_documentation": False}))
        configs = {e.name: (e.value, e.config_source == 5) for e in desc.results[0].configs}
        assert configs["retention.ms"] == ("1000", False)
        assert set(configs["cleanup.policy"][0].split(",")) == {"delete", "compact"}
        assert configs["cleanup.policy"][1] is False
        assert configs["segment.bytes"][1] is True
        # legacy AlterConfigs replaces the whole set
        alt = c.request(build(request_class(33, 2), {"validate_only": False, "resources": [{
            "resource_type": 2, "resource_name": "t",
            "configs": [{"name": "retention.ms", "value": "5000"}]}]}))
        assert alt.responses[0].error_code == 0
        assert server.run(server.coordinator.topic, "t").configs == {"retention.ms": "5000"}
        badcfg = c.request(build(request_class(44, 1), {"validate_only": False, "resources": [{
            "resource_type": 2, "resource_name": "t", "configs": [
                {"name": "no.such.config", "config_operation": 0, "value": "1"}]}]}))
        assert badcfg.responses[0].error_code == 40  # INVALID_CONFIG
        broker_desc = c.request(build(request_class(32, 1), {
            "resources": [{"resource_type": 4, "resource_name": "1", "configuration_keys": None}],
            "include_synonyms": False}))
        assert broker_desc.results[0].error_code == 0
        assert any(e.name == "broker.session.timeout.ms" for e in broker_desc.results[0].configs)

        deleted = c.request(build(request_class(20, 5), {"topic_names": ["t", "nope"],
                                                          "timeout": 5000}))
        assert [(r.name, r.error_code) for r in deleted.responses] == [("t", 0), ("nope", 3)]
        assert c.request(metadata_request(["t"])).topics[0].error_code == 3


def test_allocate_producer_ids_needs_a_live_registration(server):
    with RawClient(server.port) as c:
        epoch = register(c, 1)
        req = lambda bid, ep: build(request_class(67, 0), {"broker_id": bid, "broker_epoch": ep})  # noqa: E731
        first = c.request(req(1, epoch))
        second = c.request(req(1, epoch))
        assert first.error_code == 0 and first.producer_id_len == 1000
        assert second.producer_id_start >= first.producer_id_start + 1000
        assert c.request(req(1, epoch + 5)).error_code == 77
        assert c.request(req(9, 0)).error_code == 102


def test_fetch_serves_journal_records_then_snapshot_for_old_offsets(start_server, tmp_path):
    server = start_server(feed_capacity=4)
    with RawClient(server.port) as c:
        register(c, 1)
        c.request(create_topics_request(("a", 2)))  # topic + 2 partitions = 3 records
        hw = server.coordinator.metadata_offset
        start = hw - 4
        resp = c.request(fetch_request(start))
        part = resp.responses[0].partitions[0]
        assert part.error_code == 0 and part.high_watermark == hw
        got = records_of(part)
        assert [o for o, _ in got] == list(range(start, hw))
        assert [r["type"] for _, r in got][-3:] == ["topic", "partition", "partition"]
        # older than the ring: ONE snapshot record covering everything up to the watermark
        snap = records_of(c.request(fetch_request(0)).responses[0].partitions[0])
        assert len(snap) == 1 and snap[0][0] == hw - 1 and snap[0][1]["type"] == "snapshot"
        mirror = MetadataMachine()
        mirror.restore(snap[0][1]["state"])
        assert mirror.metadata_offset == hw
        assert mirror.topic("a") == server.run(server.coordinator.topic, "a")
        # caught up: nothing; ahead: OFFSET_OUT_OF_RANGE; other topics: unknown
        assert records_of(c.request(fetch_request(hw)).responses[0].partitions[0]) == []
        assert c.request(fetch_request(hw + 5)).responses[0].partitions[0].error_code == 1
        assert c.request(fetch_request(0, topic="orders")).responses[0].partitions[0] \
            .error_code == 3
        for version in (4, 11):
            old = c.request(fetch_request(start, version=version)).responses[0].partitions[0]
            assert [o for o, _ in records_of(old)] == list(range(start, hw))


def test_fetch_after_restart_from_a_journal_snapshot(tmp_path, start_server):
    first = start_server()
    with RawClient(first.port) as c:
        register(c, 1)
        c.request(create_topics_request(("kept", 3)))
    expected = first.run(first.coordinator.state)
    first.stop()  # close() snapshots the journal
    assert (tmp_path / "coordinator" / "snapshot.json").exists()
    second = start_server()
    with RawClient(second.port) as c:
        part = c.request(fetch_request(0)).responses[0].partitions[0]
        (offset, record), = records_of(part)
        assert record["type"] == "snapshot" and offset == part.high_watermark - 1
        assert record["state"]["topics"] == expected.to_dict()["topics"]
        mirror = MetadataMachine()
        mirror.restore(record["state"])
        # and records after the snapshot follow it at the next offsets
        c.request(create_topics_request(("later", 1)))
        later = records_of(c.request(fetch_request(mirror.metadata_offset))
                           .responses[0].partitions[0])
        assert later[0][0] == mirror.metadata_offset
        for _, r in later:
            mirror.apply(r)
        assert mirror.topic("later") is not None


def test_fetch_long_polls_until_a_change(server):
    with RawClient(server.port) as c, RawClient(server.port) as admin:
        register(admin, 1)
        hw = server.coordinator.metadata_offset
        t0 = time.monotonic()
        empty = c.request(fetch_request(hw, max_wait_ms=300)).responses[0].partitions[0]
        assert records_of(empty) == [] and 0.25 <= time.monotonic() - t0 < 2
        timer = threading.Timer(0.3, lambda: admin.request(create_topics_request(("x", 1))))
        timer.start()
        try:
            t0 = time.monotonic()
            part = c.request(fetch_request(hw, max_wait_ms=5000)).responses[0].partitions[0]
            waited = time.monotonic() - t0
        finally:
            timer.join()
        assert 0.2 < waited < 3
        assert records_of(part)[0] == (hw, records_of(part)[0][1])
        assert records_of(part)[0][1]["type"] == "topic"


def test_garbage_closes_only_that_connection(server):
    def closed_after(data: bytes) -> bool:
        with RawClient(server.port) as c:
            c.send_raw(data)
            return c.is_closed()

    assert closed_after(struct.pack(">i", -5) + b"xxxx")  # bad frame size
    assert closed_after(struct.pack(">i", 3) + b"abc")  # shorter than a header
    unknown = struct.pack(">hhih", 999, 0, 1, -1)
    assert closed_after(struct.pack(">i", len(unknown)) + unknown)
    bad_body = struct.pack(">hhih", 19, 7, 1, -1) + b"\xff" * 5
    assert closed_after(struct.pack(">i", len(bad_body)) + bad_body)
    with socket.create_connection(("127.0.0.1", server.port)) as s:
        s.sendall(b"\x00\x00")  # half a size prefix, then gone
    with RawClient(server.port) as c:  # the service is fine
        register(c, 1)
        assert c.request(metadata_request()).brokers[0].node_id == 1
