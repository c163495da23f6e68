"""Every API key the broker registers, answered in-process through its registry: a broker state
opened in a temp dir as the server opens it, a request encoded with kio, the frame dispatched,
the reply decoded with kio. A key registered without a case here fails the suite."""

from __future__ import annotations

import asyncio
import time
import uuid
import pytest

from inprocess import SHARED, Cases, InProcess
from sandbox.broker.config import DEFAULT_LISTENER, BrokerConfig
from sandbox.broker.handlers import REGISTRY
from sandbox.broker.state import BrokerState
from sandbox.log.batch import ATTR_TRANSACTIONAL, build_batch
from sandbox.protocol import errors as E
from sandbox.protocol.records import decode_batches, encode_batch

PORT = 19092
CASES = Cases(SHARED)   # the admin APIs both services answer alike, then this service's own
case = CASES.add


@pytest.fixture
def broker(tmp_path):
    loop = asyncio.new_event_loop()
    state = BrokerState(BrokerConfig(data_dir=tmp_path / "broker", port=PORT))
    try:
        loop.run_until_complete(state.open())
        yield InProcess(REGISTRY, loop, state, DEFAULT_LISTENER)
    finally:
        loop.run_until_complete(state.close())
        loop.close()


# ---- shared steps
def produce(b: InProcess, values: list[bytes], name: str = "t", partition: int = 0):
    resp = b.call(0, 9, {"transactional_id": None, "acks": -1, "timeout": 5000, "topic_data": [
        {"name": name, "partition_data": [{"index": partition, "records": encode_batch(0, values)}]}]})
    return resp.responses[0].partition_responses[0]


# ---- one case per API key
@case(0)
def produce_appends_at_offset_zero_then_one(b):
    b.create_topic()
    first = produce(b, [b"a", b"b"])
    assert int(first.error_code) == E.NONE and first.base_offset == 0
    assert produce(b, [b"c"]).base_offset == 2
    ghost = produce(b, [b"x"], partition=99)
    assert int(ghost.error_code) == E.UNKNOWN_TOPIC_OR_PARTITION


@case(1)
def fetch_returns_what_was_produced(b):
    b.create_topic()
    produce(b, [b"hello"])
    resp = b.call(1, 12, {"replica_id": -1, "max_wait": 0, "min_bytes": 1, "max_bytes": 1 << 20,
                          "isolation_level": 0, "session_id": 0, "session_epoch": -1, "rack_id": "",
                          "forgotten_topics_data": [], "topics": [{"topic": "t", "partitions": [
                              {"partition": 0, "fetch_offset": 0, "partition_max_bytes": 1 << 20}]}]})
    p = resp.responses[0].partitions[0]
    assert int(resp.error_code) == E.NONE and int(p.error_code) == E.NONE and p.high_watermark == 1
    assert [r.value for r in decode_batches(bytes(p.records))] == [b"hello"]


@case(2)
def list_offsets_latest_is_the_log_end(b):
    b.create_topic()
    produce(b, [b"a", b"b", b"c"])
    resp = b.call(2, 7, {"replica_id": -1, "isolation_level": 0, "topics": [
        {"name": "t", "partitions": [{"partition_index": 0, "timestamp": -1}, {"partition_index": 0, "timestamp": -2}]}]})
    latest, earliest = resp.topics[0].partitions
    assert int(latest.error_code) == E.NONE and latest.offset == 3 and earliest.offset == 0


@case(3)
def metadata_shows_a_created_topic_and_this_broker(b):
    created = b.create_topic("orders", 3)
    resp = b.metadata("orders")
    t = resp.topics[0]
    assert int(t.error_code) == E.NONE and t.topic_id == created.topic_id
    assert sorted(p.partition_index for p in t.partitions) == [0, 1, 2]
    assert {p.leader_id for p in t.partitions} == {1}
    assert [(br.node_id, br.port) for br in resp.brokers] == [(1, PORT)]
    assert int(b.metadata("never-made").topics[0].error_code) == E.UNKNOWN_TOPIC_OR_PARTITION
    # while a replaced coordinator journal's topics are being put back, an unknown topic is "not
    # available yet" (LEADER_NOT_AVAILABLE, as during a creation), not gone: a client told it is
    # gone drops its partitions, and an idempotent producer its sequence state with them
    b.owner.restoring = lambda: True
    assert int(b.metadata("never-made").topics[0].error_code) == E.LEADER_NOT_AVAILABLE


def commit(b, group="g", offset=5):
    return b.call(8, 8, {"group_id": group, "generation_id_or_member_epoch": -1, "member_id": "",
                         "group_instance_id": None, "topics": [{"name": "t", "partitions": [
                             {"partition_index": 0, "committed_offset": offset, "committed_metadata": "m"}]}]})


@case(8)
def offset_commit_of_a_simple_consumer(b):
    b.create_topic()
    resp = commit(b)
    assert int(resp.topics[0].partitions[0].error_code) == E.NONE


@case(9)
def offset_fetch_returns_the_committed_offset(b):
    b.create_topic()
    commit(b, offset=5)
    resp = b.call(9, 8, {"groups": [{"group_id": "g", "topics": [{"name": "t", "partition_indexes": [0]}]}],
                         "require_stable": False})
    g = resp.groups[0]
    p = g.topics[0].partitions[0]
    assert int(g.error_code) == E.NONE and int(p.error_code) == E.NONE
    assert (p.committed_offset, p.metadata) == (5, "m")


@case(10)
def find_coordinator_names_this_broker(b):
    resp = b.call(10, 4, {"key_type": 0, "coordinator_keys": ["g"]})
    c = resp.coordinators[0]
    assert int(c.error_code) == E.NONE and (c.key, c.node_id, c.port) == ("g", 1, PORT)


@case(27)
def write_txn_markers_to_a_partition_with_an_open_transaction(b):
    b.create_topic()
    batch = build_batch([(None, b"x")], producer_id=4, producer_epoch=0, base_sequence=0, attributes=ATTR_TRANSACTIONAL)
    b.call(0, 9, {"transactional_id": "tx", "acks": -1, "timeout": 5000, "topic_data": [
        {"name": "t", "partition_data": [{"index": 0, "records": batch}]}]})
    resp = b.call(27, 1, {"markers": [{"producer_id": 4, "producer_epoch": 0, "transaction_result": True,
                                       "coordinator_epoch": 0, "topics": [{"name": "t", "partition_indexes": [0]}]}]})
    m = resp.markers[0]
    assert m.producer_id == 4 and [(p.partition_index, int(p.error_code)) for p in m.topics[0].partitions] == [(0, E.NONE)]
    assert b.owner.partitions[("t", 0)].last_stable_offset == 2


@case(28)
def txn_offset_commit_of_a_simple_consumer_group(b):
    b.create_topic()
    resp = b.call(28, 3, {"transactional_id": "tx", "group_id": "g", "producer_id": 4, "producer_epoch": 0,
                          "generation_id": -1, "member_id": "", "group_instance_id": None,
                          "topics": [{"name": "t", "partitions": [{"partition_index": 0, "committed_offset": 3,
                                                                   "committed_metadata": ""}]}]})
    assert int(resp.topics[0].partitions[0].error_code) == E.NONE


def join(b, member_id=""):
    return b.call(11, 5, {"group_id": "jg", "session_timeout": 10000, "rebalance_timeout": 10000,
                          "member_id": member_id, "group_instance_id": None, "protocol_type": "consumer",
                          "protocols": [{"name": "range", "metadata": b"m"}]})


@case(11)
def join_group_asks_for_a_member_id_then_elects_the_leader(b):
    first = join(b)
    assert int(first.error_code) == E.MEMBER_ID_REQUIRED and first.member_id
    second = join(b, first.member_id)
    assert int(second.error_code) == E.NONE and second.leader == first.member_id and second.generation_id == 1


@case(12)
def heartbeat_from_an_unknown_member(b):
    resp = b.call(12, 4, {"group_id": "g", "generation_id": 1, "member_id": "nobody", "group_instance_id": None})
    assert int(resp.error_code) == E.UNKNOWN_MEMBER_ID


@case(13)
def leave_group_reports_each_member(b):
    resp = b.call(13, 4, {"group_id": "g", "members": [{"member_id": "nobody"}]})
    assert int(resp.error_code) == E.NONE
    assert [(m.member_id, int(m.error_code)) for m in resp.members] == [("nobody", E.UNKNOWN_MEMBER_ID)]
    # v0-v2 have no member results: the one member's error is the answer's (found by review: NONE)
    assert int(b.call(13, 1, {"group_id": "g", "member_id": "nobody"}).error_code) == E.UNKNOWN_MEMBER_ID


@case(14)
def sync_group_gives_the_leader_its_assignment(b):
    member = join(b).member_id
    gen = join(b, member).generation_id
    resp = b.call(14, 5, {"group_id": "jg", "generation_id": gen, "member_id": member, "protocol_type": "consumer",
                          "protocol_name": "range", "assignments": [{"member_id": member, "assignment": b"mine"}]})
    assert int(resp.error_code) == E.NONE and resp.assignment == b"mine"


@case(15)
def describe_groups_known_and_unknown(b):
    b.create_topic()
    commit(b)
    resp = b.call(15, 5, {"groups": ["g", "nope"], "include_authorized_operations": False})
    states = {g.group_id: (int(g.error_code), g.group_state) for g in resp.groups}
    assert states == {"g": (E.NONE, "Empty"), "nope": (E.NONE, "Dead")}


@case(16)
def list_groups_lists_a_group_with_offsets(b):
    b.create_topic()
    commit(b, group="listed")
    resp = b.call(16, 4, {"states_filter": []})
    assert int(resp.error_code) == E.NONE and [g.group_id for g in resp.groups] == ["listed"]


@case(18)
def api_versions_lists_every_advertised_key(b):
    resp = b.call(18, 3, {"client_software_name": "t", "client_software_version": "1"})
    assert int(resp.error_code) == E.NONE
    assert [(k.api_key, k.min_version, k.max_version) for k in resp.api_keys] == REGISTRY.supported_versions()
    assert [f.name for f in resp.finalized_features] == ["metadata.version"]


@case(20)
def delete_topics_removes_it_from_metadata(b):
    b.create_topic()
    resp = b.call(20, 6, {"topics": [{"name": "t", "topic_id": None}], "timeout": 5000})
    assert int(resp.responses[0].error_code) == E.NONE and resp.responses[0].name == "t"
    assert int(b.metadata().topics[0].error_code) == E.UNKNOWN_TOPIC_OR_PARTITION


@case(21)
def delete_records_moves_the_low_watermark(b):
    b.create_topic()
    produce(b, [b"a", b"b", b"c"])
    resp = b.call(21, 2, {"topics": [{"name": "t", "partitions": [{"partition_index": 0, "offset": 2}]}],
                          "timeout": 5000})
    p = resp.topics[0].partitions[0]
    assert int(p.error_code) == E.NONE and p.low_watermark == 2


@case(22)
def init_producer_id_hands_out_distinct_ids(b):
    ask = {"transactional_id": None, "transaction_timeout": 60000, "producer_id": -1, "producer_epoch": -1}
    first, second = b.call(22, 4, ask), b.call(22, 4, ask)
    assert int(first.error_code) == E.NONE and first.producer_id >= 0 and first.producer_epoch == 0
    assert second.producer_id != first.producer_id
    # naming an id: a new one at epoch 0, as Kafka gives an idempotent producer (found by review:
    # the named id's epoch was bumped, so any client could take over another producer's id)
    named = b.call(22, 4, {**ask, "producer_id": first.producer_id, "producer_epoch": 0})
    assert int(named.error_code) == E.NONE and named.producer_epoch == 0
    assert named.producer_id not in (first.producer_id, second.producer_id)
    # one of id and epoch without the other: INVALID_REQUEST (KafkaApis.handleInitProducerIdRequest)
    for pid, epoch in ((first.producer_id, -1), (-1, 3)):
        odd = b.call(22, 4, {**ask, "producer_id": pid, "producer_epoch": epoch})
        assert int(odd.error_code) == E.INVALID_REQUEST and odd.producer_id == -1


def begin_txn(b: InProcess, tid: str = "tx", parts=(0,)):
    b.create_topic()
    return b.begin_txn(tid, "t", parts)


@case(24)
def add_partitions_to_txn_then_verify_them(b):
    pid, epoch = begin_txn(b, parts=(0, 1))
    verify = b.call(24, 4, {"transactions": [{"transactional_id": "tx", "producer_id": pid, "producer_epoch": epoch,
                                              "verify_only": True, "topics": [{"name": "t", "partitions": [1, 2]}]}]})
    r = verify.results_by_transaction[0].topic_results[0]
    assert [(p.partition_index, int(p.partition_error_code)) for p in r.results_by_partition] == \
        [(1, E.NONE), (2, E.TRANSACTION_ABORTABLE)]


@case(25)
def add_offsets_to_txn_adds_the_groups_partition(b):
    pid, epoch = begin_txn(b)
    resp = b.call(25, 3, {"transactional_id": "tx", "producer_id": pid, "producer_epoch": epoch, "group_id": "g"})
    assert int(resp.error_code) == E.NONE
    topics = b.call(65, 0, {"transactional_ids": ["tx"]}).transaction_states[0].topics
    assert sorted(x.topic for x in topics) == ["__consumer_offsets", "t"]


@case(26)
def end_txn_commits_then_a_retry_is_answered_alike(b):
    pid, epoch = begin_txn(b)
    end = {"transactional_id": "tx", "producer_id": pid, "producer_epoch": epoch, "committed": True}
    assert int(b.call(26, 3, end).error_code) == E.NONE
    b.loop.run_until_complete(asyncio.sleep(0.2))   # the markers, then CompleteCommit
    assert b.call(65, 0, {"transactional_ids": ["tx"]}).transaction_states[0].transaction_state == "CompleteCommit"
    assert int(b.call(26, 3, end).error_code) == E.NONE
    assert int(b.call(26, 3, dict(end, committed=False)).error_code) == E.INVALID_TXN_STATE
    # v5 (as Kafka 4.0 advertises it) answers the producer id and epoch: unchanged, transaction
    # version 2 not being finalized
    v5 = b.call(26, 5, end)
    assert (int(v5.error_code), v5.producer_id, v5.producer_epoch) == (E.NONE, pid, epoch)


@case(65)
def describe_transactions_known_and_unknown(b):
    pid, epoch = begin_txn(b, parts=(0, 2))
    states = b.call(65, 0, {"transactional_ids": ["tx", "nope"]}).transaction_states
    assert [(s.transactional_id, int(s.error_code), s.transaction_state) for s in states] == [
        ("tx", E.NONE, "Ongoing"), ("nope", E.TRANSACTIONAL_ID_NOT_FOUND, "")]
    assert (states[0].producer_id, states[0].producer_epoch) == (pid, epoch)
    assert [(x.topic, list(x.partitions)) for x in states[0].topics] == [("t", [0, 2])]


@case(66)
def list_transactions_by_state(b):
    begin_txn(b)
    resp = b.call(66, 1, {"state_filters": ["Ongoing", "Bogus"], "producer_id_filters": [], "duration_filter": -1})
    assert [(s.transactional_id, s.transaction_state) for s in resp.transaction_states] == [("tx", "Ongoing")]
    assert list(resp.unknown_state_filters) == ["Bogus"]
    empty = b.call(66, 0, {"state_filters": ["CompleteAbort"], "producer_id_filters": []})
    assert empty.transaction_states == ()


@case(23)
def offset_for_leader_epoch_is_the_log_end(b):
    b.create_topic()
    produce(b, [b"a", b"b"])
    resp = b.call(23, 4, {"replica_id": -1, "topics": [{"topic": "t", "partitions": [
        {"partition": 0, "current_leader_epoch": -1, "leader_epoch": 0}]}]})
    p = resp.topics[0].partitions[0]
    assert int(p.error_code) == E.NONE and (p.leader_epoch, p.end_offset) == (0, 2)


ACL_ALICE_READS_T = {"resource_type": 2, "resource_name": "t", "resource_pattern_type": 3,
                     "principal": "User:alice", "host": "*", "operation": 3, "permission_type": 3}
ACL_FILTER = {"resource_type_filter": 1, "resource_name_filter": None, "pattern_type_filter": 1,
              "principal_filter": None, "host_filter": None, "operation": 1, "permission_type": 1}


@case(29)
def describe_acls_lists_what_was_created(b):
    b.call(30, 3, {"creations": [ACL_ALICE_READS_T]})
    resp = b.call(29, 3, ACL_FILTER)
    assert int(resp.error_code) == E.NONE
    assert [(int(r.resource_type), r.resource_name, int(r.pattern_type), [(a.principal, a.host, int(a.operation),
             int(a.permission_type)) for a in r.acls]) for r in resp.resources] == [
        (2, "t", 3, [("User:alice", "*", 3, 3)])]
    narrow = dict(ACL_FILTER, resource_name_filter="other")
    assert b.call(29, 3, narrow).resources == ()


@case(34)
def alter_replica_log_dirs_to_the_one_dir(b):
    b.create_topic("t", 2)
    here = str(b.owner.config.data_dir)
    resp = b.call(34, 2, {"dirs": [
        {"path": here, "topics": [{"name": "t", "partitions": [0, 1, 5]}, {"name": "nope", "partitions": [0]}]},
        {"path": here + "-other", "topics": [{"name": "t", "partitions": [0]}]}]})
    got = [(r.topic_name, int(p.partition_index), int(p.error_code)) for r in resp.results for p in r.partitions]
    assert sorted(got) == sorted([("t", 0, E.NONE), ("t", 1, E.NONE), ("t", 5, E.REPLICA_NOT_AVAILABLE),
                                  ("nope", 0, E.REPLICA_NOT_AVAILABLE), ("t", 0, E.LOG_DIR_NOT_FOUND)])


@case(35)
def describe_log_dirs_lists_the_partitions(b):
    b.create_topic("t", 2)
    produce(b, [b"x" * 100])
    resp = b.call(35, 4, {"topics": None})
    d = resp.results[0]
    assert int(resp.error_code) == E.NONE and int(d.error_code) == E.NONE
    sizes = {(t.name, p.partition_index): p.partition_size for t in d.topics for p in t.partitions}
    assert set(sizes) == {("t", 0), ("t", 1)} and sizes[("t", 0)] > 100 and sizes[("t", 1)] == 0


def test_describe_log_dirs_tells_another_broker_each_folders_topic_id_only_when_asked(broker):
    """Another broker putting back a topic the metadata lost asks (this sandbox's tag) which topic
    id each folder names and when that was written; any other client gets Kafka's answer, which
    a reader that refuses unknown tags (kio) still decodes."""
    from kio.index import load_response_schema
    from kio.serial import entity_reader
    from sandbox.partition_metadata import PARTITION_METADATA
    from sandbox.protocol.codec import skip_tags
    broker.create_topic("t", 1)
    topic_id = broker.owner.partitions[("t", 0)].topic_id
    folder = broker.owner.partitions[("t", 0)].directory / PARTITION_METADATA
    [p] = broker.call(35, 4, {"topics": None, "folder_ids": True}).results[0].topics[0].partitions
    assert p.topic_id == topic_id and topic_id.int
    assert abs(p.metadata_written_ms - folder.stat().st_mtime * 1000) < 2
    answer = broker.call(35, 4, {"topics": [], "folder_ids": True})   # no folder: the broker's clock alone
    assert answer.results[0].topics == () and abs(answer.now_ms - time.time() * 1000) < 2000
    assert broker.call(35, 4, {"topics": []}).now_ms == -1              # not asked, not told
    out = bytes(broker.raw(broker.frame(35, 4, {"topics": None}, 7)))[4:]
    plain, _ = entity_reader(load_response_schema(35, 4))(out, skip_tags(out, 4))
    assert plain.results[0].topics[0].partitions[0].partition_index == 0


@case(42)
def delete_groups_known_and_unknown(b):
    b.create_topic()
    commit(b, group="gone")
    resp = b.call(42, 2, {"groups_names": ["gone", "nope"]})
    assert {r.group_id: int(r.error_code) for r in resp.results} == {"gone": E.NONE, "nope": E.GROUP_ID_NOT_FOUND}


@case(47)
def offset_delete_drops_a_committed_offset(b):
    b.create_topic()
    commit(b)
    resp = b.call(47, 0, {"group_id": "g", "topics": [{"name": "t", "partitions": [{"partition_index": 0}]}]})
    assert int(resp.error_code) == E.NONE and int(resp.topics[0].partitions[0].error_code) == E.NONE
    fetched = b.call(9, 8, {"groups": [{"group_id": "g", "topics": [{"name": "t", "partition_indexes": [0]}]}],
                            "require_stable": False})
    assert fetched.groups[0].topics[0].partitions[0].committed_offset == -1


@case(50)
def describe_user_scram_credentials_lists_what_is_stored(b):
    resp = b.call(50, 0, {"users": None})
    assert int(resp.error_code) == E.NONE and resp.results == ()
    b.call(51, 0, {"deletions": [], "upsertions": [
        {"name": "alice", "mechanism": 2, "iterations": 8192, "salt": b"s", "salted_password": b"p"}]})
    resp = b.call(50, 0, {"users": [{"name": "alice"}, {"name": "bob"}]})
    got = {r.user: (int(r.error_code), [(i.mechanism, i.iterations) for i in r.credential_infos]) for r in resp.results}
    assert got == {"alice": (E.NONE, [(2, 8192)]), "bob": (E.RESOURCE_NOT_FOUND, [])}


@case(17)
def sasl_handshake_on_a_plaintext_listener_is_illegal_state(b):
    # on a SASL_PLAINTEXT listener the connection answers it before login (tests/broker/test_sasl.py)
    resp = b.call(17, 1, {"mechanism": "PLAIN"})
    assert int(resp.error_code) == E.ILLEGAL_SASL_STATE and "SCRAM-SHA-512" in resp.mechanisms


@case(36)
def sasl_authenticate_on_a_plaintext_listener_is_illegal_state(b):
    resp = b.call(36, 2, {"auth_bytes": b"\0alice\0pw"})
    assert int(resp.error_code) == E.ILLEGAL_SASL_STATE and "does not use SASL" in resp.error_message


@case(55)
def describe_quorum_names_this_broker_the_leader(b):
    resp = b.call(55, 2, {"topics": [{"topic_name": "__cluster_metadata", "partitions": [{"partition_index": 0}]}]})
    p = resp.topics[0].partitions[0]
    assert int(resp.error_code) == E.NONE and int(p.error_code) == E.NONE
    assert p.leader_id == 1 and [v.replica_id for v in p.current_voters] == [1] and p.high_watermark > 0


@case(60)
def describe_cluster_lists_this_broker(b):
    resp = b.call(60, 1, {"include_cluster_authorized_operations": False, "endpoint_type": 1})
    assert int(resp.error_code) == E.NONE and resp.cluster_id
    assert [(br.broker_id, br.port) for br in resp.brokers] == [(1, PORT)] and resp.controller_id == 1


@case(61)
def describe_producers_of_an_idle_partition(b):
    b.create_topic()
    resp = b.call(61, 0, {"topics": [{"name": "t", "partition_indexes": [0]}]})
    p = resp.topics[0].partitions[0]
    assert int(p.error_code) == E.NONE and p.active_producers == ()


def consumer_heartbeat(b):
    return b.call(68, 0, {"group_id": "cg", "member_id": "", "member_epoch": 0, "instance_id": None, "rack_id": None,
                          "rebalance_timeout": 30000, "subscribed_topic_names": ["t"], "server_assignor": None,
                          "topic_partitions": []})


@case(68)
def consumer_group_heartbeat_joins_and_assigns(b):
    created = b.create_topic("t", 2)
    resp = consumer_heartbeat(b)
    assert int(resp.error_code) == E.NONE and resp.member_id and resp.member_epoch == 1
    assert [(tp.topic_id, tp.partitions) for tp in resp.assignment.topic_partitions] == [(created.topic_id, (0, 1))]


@case(69)
def consumer_group_describe_shows_the_member(b):
    b.create_topic()
    member = consumer_heartbeat(b).member_id
    resp = b.call(69, 0, {"group_ids": ["cg"], "include_authorized_operations": False})
    g = resp.groups[0]
    assert int(g.error_code) == E.NONE and g.group_state == "Stable" and [m.member_id for m in g.members] == [member]


@case(71)
def get_telemetry_subscriptions_assigns_an_instance_id(b):
    resp = b.call(71, 0, {"client_instance_id": uuid.UUID(int=0)})
    assert int(resp.error_code) == E.NONE and resp.client_instance_id != uuid.UUID(int=0)
    assert resp.requested_metrics == ()


@case(72)
def push_telemetry_with_an_unknown_subscription(b):
    resp = b.call(72, 0, {"client_instance_id": uuid.uuid4(), "subscription_id": 0, "terminating": False,
                          "compression_type": 0, "metrics": b""})
    assert int(resp.error_code) == E.UNKNOWN_SUBSCRIPTION_ID


@case(75)
def describe_topic_partitions_of_a_topic(b):
    created = b.create_topic("t", 2)
    resp = b.call(75, 0, {"topics": [{"name": "t"}], "response_partition_limit": 2000, "cursor": None})
    t = resp.topics[0]
    assert int(t.error_code) == E.NONE and t.topic_id == created.topic_id
    assert [p.partition_index for p in t.partitions] == [0, 1]


# ---- the registry and the cases agree
def test_every_registered_key_has_a_case():
    CASES.assert_covers(REGISTRY)


@pytest.mark.parametrize("api_key", list(REGISTRY))
def test_handler_in_process(api_key, broker):
    CASES.run(REGISTRY, api_key, broker)


def test_describe_user_scram_credentials_tells_a_super_user_the_keys_only_when_asked(broker):
    """The supervisor's catalog keeps users made with tools (sandbox.protocol.scram_keys): asked
    with this sandbox's tag on a super user's listener, each credential comes with its salt and
    keys; without the tag, or to any other principal, mechanisms and iterations only."""
    from kio.index import load_response_schema
    from kio.serial import entity_reader
    from sandbox.coordinator.scram import keys_of
    from sandbox.protocol.codec import skip_tags
    broker.call(51, 0, {"deletions": [], "upsertions": [
        {"name": "alice", "mechanism": 1, "iterations": 4096, "salt": b"salt", "salted_password": b"p" * 32}]})
    stored, server = keys_of(1, b"p" * 32)
    [r] = broker.call(50, 0, {"users": None, "stored_keys": True}).results
    [info] = r.credential_infos
    assert (r.user, info.mechanism, info.iterations) == ("alice", 1, 4096)
    assert (info.salt, info.stored_key, info.server_key) == (b"salt", stored, server)
    [plain] = broker.call(50, 0, {"users": None}).results[0].credential_infos   # not asked
    assert (plain.salt, plain.stored_key, plain.server_key) == (b"", b"", b"")
    alice = InProcess(REGISTRY, broker.loop, broker.owner, DEFAULT_LISTENER, "User:alice")   # not a super user
    [theirs] = alice.call(50, 0, {"users": None, "stored_keys": True}).results[0].credential_infos
    assert (theirs.mechanism, theirs.stored_key, theirs.server_key) == (1, b"", b"")
    # a SASL login named ANONYMOUS is User:ANONYMOUS, a super user, but on the SASL listener
    broker.owner.config.sasl_port = PORT + 1
    sasl_anonymous = InProcess(REGISTRY, broker.loop, broker.owner, "SASL_PLAINTEXT", "User:ANONYMOUS")
    [theirs] = sasl_anonymous.call(50, 0, {"users": None, "stored_keys": True}).results[0].credential_infos
    assert (theirs.mechanism, theirs.stored_key, theirs.server_key) == (1, b"", b"")
    [ours] = broker.call(50, 0, {"users": None, "stored_keys": True}).results[0].credential_infos
    assert ours.stored_key == stored   # the plain listener's still does
    out = bytes(broker.raw(broker.frame(50, 0, {"users": None}, 9)))[4:]   # plain kio still reads it
    answer, _ = entity_reader(load_response_schema(50, 0))(out, skip_tags(out, 4))
    assert answer.results[0].user == "alice"


def _txn_commit(b, gen: int, member: str) -> int:
    resp = b.call(28, 3, {"transactional_id": "tx", "group_id": "jg", "producer_id": 4, "producer_epoch": 0,
                          "generation_id": gen, "member_id": member, "group_instance_id": None,
                          "topics": [{"name": "t", "partitions": [{"partition_index": 0, "committed_offset": 3,
                                                                   "committed_metadata": ""}]}]})
    return int(resp.topics[0].partitions[0].error_code)


def test_txn_offset_commit_is_taken_while_the_group_completes_a_rebalance(broker):
    """Found by review: a TxnOffsetCommit, anonymous (aiokafka and kafka-python send v0) or from a
    member, was answered REBALANCE_IN_PROGRESS between JoinGroup and SyncGroup, which the Java
    producer treats as fatal and aiokafka raises. Kafka's ClassicGroup.validateOffsetCommit does not
    enforce the group state for transactional commits; a plain OffsetCommit still gets it."""
    b = broker
    b.create_topic()
    member = join(b).member_id
    gen = join(b, member).generation_id        # joined: CompletingRebalance until the leader's SyncGroup
    assert _txn_commit(b, -1, "") == E.NONE
    assert _txn_commit(b, gen, member) == E.NONE
    assert _txn_commit(b, gen + 1, member) == E.ILLEGAL_GENERATION
    plain = b.call(8, 8, {"group_id": "jg", "generation_id_or_member_epoch": gen, "member_id": member,
                          "group_instance_id": None, "retention_time_ms": -1,
                          "topics": [{"name": "t", "partitions": [{"partition_index": 0, "committed_offset": 3,
                                                                   "committed_leader_epoch": -1,
                                                                   "committed_metadata": ""}]}]})
    assert int(plain.topics[0].partitions[0].error_code) == E.REBALANCE_IN_PROGRESS
