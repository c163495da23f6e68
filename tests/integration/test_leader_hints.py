"""KIP-951 on a real 3-broker cluster: a Produce (v10+) or Fetch (v16+) sent to a broker that
does not lead the partition is answered NOT_LEADER_OR_FOLLOWER with the leader's id and epoch
(current_leader) and its address (node_endpoints), so librdkafka 2.4+ and Java 3.7+ move to it
without a metadata round trip first."""

from __future__ import annotations

import pytest
from confluent_kafka.admin import NewTopic

from rawclient import RawClient
from sandbox.protocol import build, request_class
from sandbox.protocol.records import encode_batch

from .kit import unique
from .replication_kit import cluster3  # noqa: F401 - the fixture

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


def test_a_broker_that_does_not_lead_names_the_leader_and_its_address(cluster3):
    cluster = cluster3
    topic = unique("t")
    admin = cluster.admin()   # kept alive until the answer is in
    admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=3)])[topic].result(timeout=20)
    cluster.wait_in_sync(topic, 1, timeout=30)
    leader = cluster.partition(topic, 0)[0]
    other = next(n for n in cluster.ports if n != leader)
    with RawClient(cluster.ports[other]) as c:
        produce = c.request(build(request_class(0, 12), {
            "transactional_id": None, "acks": -1, "timeout": 5000, "topic_data": [
                {"name": topic, "partition_data": [{"index": 0, "records": encode_batch(0, [b"x"])}]}]}))
        p = produce.responses[0].partition_responses[0]
        assert int(p.error_code) == 6   # NOT_LEADER_OR_FOLLOWER
        assert p.current_leader.leader_id == leader and p.current_leader.leader_epoch >= 0
        assert [(n.node_id, n.host, n.port) for n in produce.node_endpoints] == \
            [(leader, "127.0.0.1", cluster.ports[leader])]
        fetch = c.request(build(request_class(1, 16), {
            "replica_id": -1, "max_wait": 0, "min_bytes": 1, "max_bytes": 1 << 20, "isolation_level": 0,
            "session_id": 0, "session_epoch": -1, "rack_id": "", "forgotten_topics_data": [],
            "topics": [{"topic_id": _topic_id(c, topic), "partitions": [
                {"partition": 0, "fetch_offset": 0, "partition_max_bytes": 1 << 20, "current_leader_epoch": -1,
                 "log_start_offset": -1, "last_fetched_epoch": -1}]}]}))
        fp = fetch.responses[0].partitions[0]
        assert int(fp.error_code) == 6 and fp.current_leader.leader_id == leader
        assert [n.node_id for n in fetch.node_endpoints] == [leader]


def _topic_id(c: RawClient, topic: str):
    md = c.request(build(request_class(3, 12), {"topics": [{"name": topic, "topic_id": None}],
                                                  "allow_auto_topic_creation": False,
                                                  "include_topic_authorized_operations": False}))
    return md.topics[0].topic_id
