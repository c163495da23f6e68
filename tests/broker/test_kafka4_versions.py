"""The Kafka 4.0 request versions whose shape changed, byte for byte on the wire: Fetch v13+ and
DeleteTopics v6 name topics by id, Metadata v13 carries a top-level error code, ListOffsets
v8/v9 know the tiered-storage specs."""

from __future__ import annotations

import uuid

from rawclient import RawClient
from sandbox.protocol import build, request_class

FETCH_KEYS = {"replica_id": -1, "replica_state": {"replica_id": -1, "replica_epoch": -1},
              "max_wait": 0, "min_bytes": 1, "max_bytes": 1 << 20, "isolation_level": 0,
              "session_id": 0, "session_epoch": -1, "forgotten_topics_data": (), "rack_id": "",
              "cluster_id": None}


def _metadata(c, name: str):
    return c.request(build(request_class(3, 13), {
        "topics": [{"name": name, "topic_id": None}], "allow_auto_topic_creation": True,
        "include_topic_authorized_operations": False}))


def _fetch(c, version: int, topic_id):
    return c.request(build(request_class(1, version), dict(FETCH_KEYS, topics=[{
        "topic_id": topic_id, "topic": None, "partitions": [{
            "partition": 0, "current_leader_epoch": -1, "fetch_offset": 0, "last_fetched_epoch": -1,
            "log_start_offset": -1, "partition_max_bytes": 1 << 20, "replica_directory_id": None}]}])))


def test_fetch_by_topic_id_and_unknown_id(broker):
    with RawClient(broker.port) as c:
        md = _metadata(c, "by-id")
        assert int(md.error_code) == 0
        tid = md.topics[0].topic_id
        for version in (13, 15, 16, 17):
            resp = _fetch(c, version, tid)
            t = resp.responses[0]
            assert t.topic_id == tid and int(t.partitions[0].error_code) == 0, (version, resp)
            resp = _fetch(c, version, uuid.uuid4())
            assert int(resp.responses[0].partitions[0].error_code) == 100  # UNKNOWN_TOPIC_ID


def test_delete_topics_v6_by_id(broker):
    with RawClient(broker.port) as c:
        tid = _metadata(c, "doomed").topics[0].topic_id
        ghost = uuid.uuid4()
        resp = c.request(build(request_class(20, 6), {"timeout": 10000, "topics": [
            {"name": None, "topic_id": tid}, {"name": None, "topic_id": ghost}]}))
        by_id = {r.topic_id: r for r in resp.responses}
        assert int(by_id[tid].error_code) == 0 and by_id[tid].name == "doomed"
        assert int(by_id[ghost].error_code) == 100
        assert int(_metadata(c, "doomed").topics[0].error_code) == 0  # auto-created afresh
        assert _metadata(c, "doomed").topics[0].topic_id != tid


def test_list_offsets_tiered_specs(broker):
    with RawClient(broker.port) as c:
        _metadata(c, "lo")
        def ask(ts):
            resp = c.request(build(request_class(2, 10), {
                "replica_id": -1, "isolation_level": 0, "timeout": 1000, "topics": [
                    {"name": "lo", "partitions": [{"partition_index": 0, "current_leader_epoch": -1,
                                                    "timestamp": ts}]}]}))
            p = resp.topics[0].partitions[0]
            return int(p.error_code), p.offset, p.leader_epoch
        assert ask(-4) == (0, 0, ask(-2)[2])       # earliest local = log start offset
        assert ask(-5) == (0, -1, -1)              # latest tiered: nothing is tiered
