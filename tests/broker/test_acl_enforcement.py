"""ACLs enforced by a real broker state, in-process: requests dispatched through the broker's
registry as a SASL login's principal (User:alice, User:bob) and as the plain listener's
User:ANONYMOUS (a super user by default), with Kafka's error codes per API."""

from __future__ import annotations

import asyncio

import pytest

from inprocess import InProcess
from sandbox.broker.config import DEFAULT_LISTENER, BrokerConfig
from sandbox.broker.handlers import REGISTRY
from sandbox.broker.state import BrokerState
from sandbox.protocol import errors as E
from sandbox.protocol.records import encode_batch

TOPIC, GROUP, CLUSTER, TXN_ID = 2, 3, 4, 5
LITERAL, PREFIXED = 3, 4
ALL, READ, WRITE, CREATE, DESCRIBE, ALTER = 2, 3, 4, 5, 8, 7
DENY, ALLOW = 2, 3


def open_broker(tmp_path, **settings):
    loop = asyncio.new_event_loop()
    config = BrokerConfig(data_dir=tmp_path / "broker", port=19093)
    if settings:
        config.apply_overrides(settings)
    state = BrokerState(config)
    loop.run_until_complete(state.open())
    return loop, state


@pytest.fixture
def cluster(tmp_path):
    """(admin, as_user): the plain listener's view and a factory of SASL principals' views."""
    loop, state = open_broker(tmp_path)
    try:
        yield (InProcess(REGISTRY, loop, state, DEFAULT_LISTENER),
               lambda user: InProcess(REGISTRY, loop, state, "SASL_PLAINTEXT", f"User:{user}"))
    finally:
        loop.run_until_complete(state.close())
        loop.close()


def acl(rtype, name, principal, op, perm=ALLOW, pattern=LITERAL, host="*"):
    return {"resource_type": rtype, "resource_name": name, "resource_pattern_type": pattern,
            "principal": principal, "host": host, "operation": op, "permission_type": perm}


def grant(admin: InProcess, *bindings) -> None:
    resp = admin.call(30, 3, {"creations": list(bindings)})
    assert [int(r.error_code) for r in resp.results] == [E.NONE] * len(bindings)


def produce(c: InProcess, topic: str, value: bytes = b"v", tid: str | None = None) -> int:
    resp = c.call(0, 9, {"transactional_id": tid, "acks": 1, "timeout": 5000, "topic_data": [
        {"name": topic, "partition_data": [{"index": 0, "records": encode_batch(0, [value])}]}]})
    return int(resp.responses[0].partition_responses[0].error_code)


def fetch(c: InProcess, topic: str):
    resp = c.call(1, 12, {"replica_id": -1, "max_wait": 0, "min_bytes": 1, "max_bytes": 1 << 20,
                          "isolation_level": 0, "session_id": 0, "session_epoch": -1, "rack_id": "",
                          "forgotten_topics_data": [], "topics": [{"topic": topic, "partitions": [
                              {"partition": 0, "fetch_offset": 0, "partition_max_bytes": 1 << 20}]}]})
    return resp.responses[0].partitions[0]


def listed_topics(c: InProcess) -> set[str]:
    resp = c.call(3, 12, {"topics": None, "allow_auto_topic_creation": False,
                          "include_topic_authorized_operations": False})
    return {t.name for t in resp.topics}


def join(c: InProcess, group: str) -> int:
    return int(c.call(11, 5, {"group_id": group, "session_timeout": 10000, "rebalance_timeout": 10000,
                              "member_id": "", "group_instance_id": None, "protocol_type": "consumer",
                              "protocols": [{"name": "range", "metadata": b"m"}]}).error_code)


def test_topic_acls_decide_produce_fetch_and_metadata(cluster):
    admin, as_user = cluster
    alice, bob = as_user("alice"), as_user("bob")
    for name in ("orders", "audit", "free"):
        admin.create_topic(name, 1)
    grant(admin, acl(TOPIC, "orders", "User:alice", READ), acl(TOPIC, "ord", "User:bob", WRITE, pattern=PREFIXED),
          acl(TOPIC, "audit", "User:bob", ALL))
    # orders: alice reads but may not write; bob writes (prefixed ACL) but may not read
    assert produce(alice, "orders") == E.TOPIC_AUTHORIZATION_FAILED
    assert produce(bob, "orders") == E.NONE
    assert int(fetch(alice, "orders").error_code) == E.NONE and fetch(alice, "orders").high_watermark == 1
    assert int(fetch(bob, "orders").error_code) == E.TOPIC_AUTHORIZATION_FAILED
    # audit belongs to bob alone; free has no ACL, so anyone may use it (allow.everyone.if.no.acl.found)
    assert produce(alice, "audit") == E.TOPIC_AUTHORIZATION_FAILED and produce(bob, "audit") == E.NONE
    assert produce(alice, "free") == E.NONE
    # a topic the principal may not DESCRIBE is not listed, and is refused when named
    assert listed_topics(alice) >= {"orders", "free"} and "audit" not in listed_topics(alice)
    assert int(alice.metadata("audit").topics[0].error_code) == E.TOPIC_AUTHORIZATION_FAILED
    assert "audit" in listed_topics(admin)   # User:ANONYMOUS is a super user by default
    # ListOffsets needs DESCRIBE (implied by READ for alice on orders)
    lo = {"replica_id": -1, "isolation_level": 0, "topics": [{"name": "audit", "partitions": [
        {"partition_index": 0, "current_leader_epoch": -1, "timestamp": -1}]}]}
    assert int(alice.call(2, 7, lo).topics[0].partitions[0].error_code) == E.TOPIC_AUTHORIZATION_FAILED
    lo["topics"][0]["name"] = "orders"
    assert int(alice.call(2, 7, lo).topics[0].partitions[0].error_code) == E.NONE


def test_deny_beats_allow_and_a_wildcard_principal(cluster):
    admin, as_user = cluster
    alice, carol = as_user("alice"), as_user("carol")
    admin.create_topic("shared", 1)
    grant(admin, acl(TOPIC, "*", "User:*", WRITE), acl(TOPIC, "shared", "User:carol", WRITE, perm=DENY))
    assert produce(alice, "shared") == E.NONE
    assert produce(carol, "shared") == E.TOPIC_AUTHORIZATION_FAILED


def test_groups_transactions_and_cluster_operations(cluster):
    admin, as_user = cluster
    alice = as_user("alice")
    grant(admin, acl(GROUP, "team-", "User:bob", READ, pattern=PREFIXED), acl(TXN_ID, "tx", "User:bob", WRITE),
          acl(CLUSTER, "kafka-cluster", "User:ops", ALTER))
    assert join(alice, "team-a") == E.GROUP_AUTHORIZATION_FAILED
    assert join(alice, "other") == E.MEMBER_ID_REQUIRED   # a group without ACLs: the usual first answer
    find = alice.call(10, 4, {"key_type": 0, "coordinator_keys": ["team-a"]}).coordinators[0]
    assert int(find.error_code) == E.GROUP_AUTHORIZATION_FAILED
    init = alice.call(22, 5, {"transactional_id": "tx", "transaction_timeout": 10_000, "producer_id": -1,
                              "producer_epoch": -1})
    assert int(init.error_code) == E.TRANSACTIONAL_ID_AUTHORIZATION_FAILED
    # the cluster has an ACL now (ops may ALTER it): alice may no longer create ACLs
    denied = alice.call(30, 3, {"creations": [acl(TOPIC, "x", "User:alice", ALL)]})
    assert [int(r.error_code) for r in denied.results] == [E.CLUSTER_AUTHORIZATION_FAILED]
    ops = as_user("ops")
    allowed = ops.call(30, 3, {"creations": [acl(TOPIC, "x", "User:alice", ALL)]})
    assert [int(r.error_code) for r in allowed.results] == [E.NONE]
    # creating a topic needs CREATE on the cluster (closed to alice by the ops ACL) or on the topic
    # (open while no ACL names it, closed once bob's does)
    assert int(alice.create_topic("open", 1).error_code) == E.NONE
    grant(admin, acl(TOPIC, "new", "User:bob", READ))
    assert int(alice.create_topic("new", 1).error_code) == E.TOPIC_AUTHORIZATION_FAILED
    grant(admin, acl(TOPIC, "new", "User:alice", CREATE))
    assert int(alice.create_topic("new", 1).error_code) == E.NONE


def test_without_acls_found_denied_when_the_broker_says_so(tmp_path):
    loop, state = open_broker(tmp_path, **{"allow.everyone.if.no.acl.found": "false",
                                           "super.users": "User:ANONYMOUS;User:root"})
    try:
        admin = InProcess(REGISTRY, loop, state, DEFAULT_LISTENER)
        admin.create_topic("free", 1)
        alice = InProcess(REGISTRY, loop, state, "SASL_PLAINTEXT", "User:alice")
        root = InProcess(REGISTRY, loop, state, "SASL_PLAINTEXT", "User:root")
        assert produce(alice, "free") == E.TOPIC_AUTHORIZATION_FAILED
        assert produce(root, "free") == E.NONE
        assert listed_topics(alice) == set()
    finally:
        loop.run_until_complete(state.close())
        loop.close()


def test_no_authorizer_allows_everything_and_refuses_the_acl_apis(tmp_path):
    loop, state = open_broker(tmp_path, **{"authorizer.class.name": ""})
    try:
        admin = InProcess(REGISTRY, loop, state, DEFAULT_LISTENER)
        admin.create_topic("t", 1)
        alice = InProcess(REGISTRY, loop, state, "SASL_PLAINTEXT", "User:alice")
        assert produce(alice, "t") == E.NONE
        resp = alice.call(30, 3, {"creations": [acl(TOPIC, "t", "User:bob", READ)]})
        assert [int(r.error_code) for r in resp.results] == [E.SECURITY_DISABLED]
        assert int(alice.call(29, 3, {"resource_type_filter": 1, "resource_name_filter": None,
                                      "pattern_type_filter": 1, "principal_filter": None, "host_filter": None,
                                      "operation": 1, "permission_type": 1}).error_code) == E.SECURITY_DISABLED
    finally:
        loop.run_until_complete(state.close())
        loop.close()


def test_acls_survive_a_restart_of_the_broker_and_its_embedded_coordinator(tmp_path):
    loop, state = open_broker(tmp_path)
    admin = InProcess(REGISTRY, loop, state, DEFAULT_LISTENER)
    admin.create_topic("orders", 1)
    grant(admin, acl(TOPIC, "orders", "User:bob", WRITE))
    loop.run_until_complete(state.close())
    loop.close()
    loop, state = open_broker(tmp_path)
    try:
        alice = InProcess(REGISTRY, loop, state, "SASL_PLAINTEXT", "User:alice")
        bob = InProcess(REGISTRY, loop, state, "SASL_PLAINTEXT", "User:bob")
        assert produce(alice, "orders") == E.TOPIC_AUTHORIZATION_FAILED and produce(bob, "orders") == E.NONE
    finally:
        loop.run_until_complete(state.close())
        loop.close()


def test_a_refusal_is_reported_once_with_why_and_a_listing_is_not(cluster, monkeypatch):
    from sandbox import lifecycle
    from sandbox.broker import access
    from sandbox.broker.reporter import Reporter
    from sandbox.runner.logscan import describe_event
    reported: list[dict] = []
    monkeypatch.setattr(access, "DENIAL_REPORTS", Reporter(every_s=60))
    monkeypatch.setattr(lifecycle, "emit_event", lambda _log, kind, detail: reported.append(detail)
                        if kind == "authorization-failed" else None)
    admin, as_user = cluster
    alice = as_user("alice")
    admin.create_topic("orders", 1)
    admin.create_topic("secret", 1)
    grant(admin, acl(TOPIC, "orders", "User:bob", WRITE), acl(TOPIC, "secret", "User:alice", ALL, perm=DENY))
    assert produce(alice, "orders") == E.TOPIC_AUTHORIZATION_FAILED
    assert produce(alice, "orders") == E.TOPIC_AUTHORIZATION_FAILED   # the same refusal: reported once
    assert "secret" not in listed_topics(alice)                        # a listing leaving it out: not reported
    assert [(d["principal"], d["operation"], d["resource"]) for d in reported] == [("User:alice", "WRITE", "orders")]
    assert describe_event("authorization-failed", reported[0]) == (
        "User:alice (from in-process) was refused WRITE on topic orders: its ACLs allow WRITE to others only")
    assert produce(alice, "secret") == E.TOPIC_AUTHORIZATION_FAILED
    assert reported[-1]["why"] == "an ACL denies it (User:alice DENY ALL from host *)"


def test_a_follower_fetch_needs_cluster_action_and_reads_nothing_without_it(cluster):
    admin, as_user = cluster
    admin.create_topic("orders", 1)
    produce(admin, "orders", b"secret")
    # the cluster named by an ACL (else allow.everyone.if.no.acl.found grants CLUSTER_ACTION, as in Kafka)
    grant(admin, acl(TOPIC, "orders", "User:alice", READ), acl(CLUSTER, "kafka-cluster", "User:ops", ALTER))
    mallory = as_user("mallory")   # a login pretending to be broker 2: no CLUSTER_ACTION
    resp = mallory.call(1, 12, {"replica_id": 2, "max_wait": 0, "min_bytes": 1, "max_bytes": 1 << 20,
                                "isolation_level": 0, "session_id": 0, "session_epoch": -1, "rack_id": "",
                                "forgotten_topics_data": [], "topics": [{"topic": "orders", "partitions": [
                                    {"partition": 0, "fetch_offset": 0, "partition_max_bytes": 1 << 20}]}]})
    p = resp.responses[0].partitions[0]
    assert int(p.error_code) == E.TOPIC_AUTHORIZATION_FAILED and not p.records
    # OffsetForLeaderEpoch: CLUSTER_ACTION or DESCRIBE on the topic, whoever asks
    ofle = {"replica_id": 2, "topics": [{"topic": "orders", "partitions": [
        {"partition": 0, "current_leader_epoch": -1, "leader_epoch": 0}]}]}
    assert int(mallory.call(23, 4, ofle).topics[0].partitions[0].error_code) == E.TOPIC_AUTHORIZATION_FAILED
    assert int(as_user("alice").call(23, 4, ofle).topics[0].partitions[0].error_code) == E.NONE


def test_offsets_and_transactions_of_a_restricted_principal(cluster):
    admin, as_user = cluster
    alice = as_user("alice")
    for name in ("orders", "ledger"):
        admin.create_topic(name, 1)
    grant(admin, acl(GROUP, "billing", "User:alice", READ), acl(TOPIC, "orders", "User:alice", READ),
          acl(TOPIC, "ledger", "User:bob", READ))
    commit = {"group_id": "billing", "generation_id_or_member_epoch": -1, "member_id": "", "group_instance_id": None,
              "retention_time_ms": -1, "topics": [{"name": n, "partitions": [
                  {"partition_index": 0, "committed_offset": 5, "committed_leader_epoch": -1, "committed_metadata": ""}]}
                  for n in ("orders", "ledger")]}
    resp = alice.call(8, 8, commit)
    assert {t.name: int(t.partitions[0].error_code) for t in resp.topics} == {
        "orders": E.NONE, "ledger": E.TOPIC_AUTHORIZATION_FAILED}
    admin.call(8, 8, dict(commit, topics=[dict(commit["topics"][1])]))   # a super user commits ledger
    # OffsetFetch of every topic leaves ledger out; named, it is refused
    every = alice.call(9, 8, {"groups": [{"group_id": "billing", "topics": None}], "require_stable": False})
    assert [t.name for t in every.groups[0].topics] == ["orders"]
    named = alice.call(9, 8, {"groups": [{"group_id": "billing", "topics": [
        {"name": "ledger", "partition_indexes": [0]}]}], "require_stable": False})
    assert int(named.groups[0].topics[0].partitions[0].error_code) == E.TOPIC_AUTHORIZATION_FAILED
    other = alice.call(9, 8, {"groups": [{"group_id": "payroll-x", "topics": None}], "require_stable": False})
    assert int(other.groups[0].error_code) == E.NONE   # no ACL names that group: open
    grant(admin, acl(GROUP, "payroll", "User:bob", ALL, pattern=PREFIXED))
    other = alice.call(9, 8, {"groups": [{"group_id": "payroll-x", "topics": None}], "require_stable": False})
    assert int(other.groups[0].error_code) == E.GROUP_AUTHORIZATION_FAILED
    # a transactional id bob owns: alice may not describe it; her own shows only the topics she may see
    grant(admin, acl(TXN_ID, "bob-tx", "User:bob", ALL))
    admin.begin_txn("bob-tx", "orders", [0])
    admin.begin_txn("alice-tx", "ledger", [0])
    pid, epoch = admin.begin_txn("alice-tx2", "ledger", [0])
    admin.call(24, 3, {"v3_and_below_transactional_id": "alice-tx2", "v3_and_below_producer_id": pid,
                       "v3_and_below_producer_epoch": epoch,
                       "v3_and_below_topics": [{"name": "orders", "partitions": [0]}]})
    desc = alice.call(65, 0, {"transactional_ids": ["bob-tx", "alice-tx", "alice-tx2"]})
    assert [int(s.error_code) for s in desc.transaction_states] == [
        E.TRANSACTIONAL_ID_AUTHORIZATION_FAILED, E.NONE, E.NONE]
    assert desc.transaction_states[1].topics == ()   # ledger is bob's to read
    assert [t.topic for t in desc.transaction_states[2].topics] == ["orders"]
    assert {s.transactional_id for s in admin.call(66, 0, {"state_filters": [], "producer_id_filters": []})
            .transaction_states} == {"bob-tx", "alice-tx", "alice-tx2"}
    assert [s.transactional_id for s in alice.call(66, 0, {"state_filters": [], "producer_id_filters": []})
            .transaction_states] == ["alice-tx", "alice-tx2"]


def test_an_idempotent_producer_needs_write_on_some_topic_when_nothing_is_open(tmp_path):
    loop, state = open_broker(tmp_path, **{"allow.everyone.if.no.acl.found": "false"})
    try:
        admin = InProcess(REGISTRY, loop, state, DEFAULT_LISTENER)
        grant(admin, acl(TOPIC, "ord", "User:alice", WRITE, pattern=PREFIXED),
              acl(TOPIC, "ord", "User:carol", WRITE, pattern=PREFIXED), acl(TOPIC, "ord", "User:carol", WRITE,
                                                                           perm=DENY, pattern=PREFIXED))
        init = {"transactional_id": None, "transaction_timeout": 10_000, "producer_id": -1, "producer_epoch": -1}
        codes = {u: int(InProcess(REGISTRY, loop, state, "SASL_PLAINTEXT", f"User:{u}").call(22, 5, init).error_code)
                 for u in ("alice", "bob", "carol")}
        # alice: a prefixed WRITE (no topic exists yet); bob: nothing; carol: her allow is denied
        assert codes == {"alice": E.NONE, "bob": E.CLUSTER_AUTHORIZATION_FAILED, "carol": E.CLUSTER_AUTHORIZATION_FAILED}
    finally:
        loop.run_until_complete(state.close())
        loop.close()


def test_delete_topics_tells_nothing_of_a_topic_the_principal_may_not_describe(cluster):
    admin, as_user = cluster
    t = admin.create_topic("ledger", 1)
    # an ACL names the cluster: no longer open to every login (DELETE there deletes any topic)
    grant(admin, acl(TOPIC, "ledger", "User:bob", ALL), acl(CLUSTER, "kafka-cluster", "User:bob", DESCRIBE))
    alice = as_user("alice")
    by_name = alice.call(20, 6, {"topics": [{"name": "ledger", "topic_id": None}], "timeout_ms": 5000})
    by_id = alice.call(20, 6, {"topics": [{"name": None, "topic_id": t.topic_id}], "timeout_ms": 5000})
    for resp, name in ((by_name, "ledger"), (by_id, None)):
        r = resp.responses[0]
        assert int(r.error_code) == E.TOPIC_AUTHORIZATION_FAILED and r.name == name
    assert by_name.responses[0].topic_id != t.topic_id
    assert "ledger" in listed_topics(admin)


def test_delete_topics_as_kafka_authorizes_it_with_delete_on_the_cluster_and_describe_alone(cluster):
    admin, as_user = cluster
    admin.create_topic("ledger", 1)
    admin.create_topic("kept", 1)
    grant(admin, acl(TOPIC, "ghost", "User:alice", DESCRIBE), acl(TOPIC, "kept", "User:alice", DESCRIBE),
          acl(TOPIC, "ledger", "User:carol", ALL),
          acl(CLUSTER, "kafka-cluster", "User:bob", 6))   # 6: DELETE; the cluster is closed to alice

    def delete(c, name):
        r = c.call(20, 6, {"topics": [{"name": name, "topic_id": None}], "timeout_ms": 5000}).responses[0]
        return int(r.error_code)

    alice = as_user("alice")
    assert delete(as_user("dave"), "ledger") == E.TOPIC_AUTHORIZATION_FAILED   # ledger's ACLs name carol only
    # DELETE on the cluster deletes any topic (Kafka's hasClusterAuth)
    assert delete(as_user("bob"), "ledger") == E.NONE
    # describable, not deletable: a missing topic is told missing, an existing one refused
    assert delete(alice, "ghost") == E.UNKNOWN_TOPIC_OR_PARTITION
    assert delete(alice, "kept") == E.TOPIC_AUTHORIZATION_FAILED
    assert "ledger" not in listed_topics(admin) and "kept" in listed_topics(admin)


def test_a_regex_subscription_matches_only_topics_the_member_may_describe(cluster):
    admin, as_user = cluster
    for name in ("orders-eu", "orders-us"):
        admin.create_topic(name, 1)
    grant(admin, acl(TOPIC, "orders-us", "User:bob", ALL))
    alice = as_user("alice")
    beat = {"group_id": "regex-g", "member_id": "m-alice-0000000000000", "member_epoch": 0, "instance_id": None,
            "rack_id": None, "rebalance_timeout": 30000, "subscribed_topic_names": None,
            "subscribed_topic_regex": "orders-.*", "server_assignor": None, "topic_partitions": []}
    first = alice.call(68, 1, beat)
    assert int(first.error_code) == E.NONE
    ids = {t.name: t.topic_id for t in admin.call(3, 12, {"topics": None, "allow_auto_topic_creation": False,
                                                           "include_topic_authorized_operations": False}).topics}
    got = first.assignment
    for _ in range(5):
        if got is not None and got.topic_partitions:
            break
        nxt = alice.call(68, 1, dict(beat, member_id=first.member_id, member_epoch=first.member_epoch,
                                     subscribed_topic_regex=None, topic_partitions=None))
        got = nxt.assignment or got
    assert {tp.topic_id for tp in got.topic_partitions} == {ids["orders-eu"]}


def test_a_restricted_member_without_a_regex_keeps_its_epoch_when_other_topics_come(cluster):
    admin, as_user = cluster
    admin.create_topic("orders", 1)
    grant(admin, acl(TOPIC, "secret", "User:bob", ALL))
    alice = as_user("alice")
    beat = {"group_id": "names-g", "member_id": "m-alice-names-000000", "member_epoch": 0, "instance_id": None,
            "rack_id": None, "rebalance_timeout": 30000, "subscribed_topic_names": ["orders"],
            "subscribed_topic_regex": None, "server_assignor": None, "topic_partitions": []}
    first = alice.call(68, 1, beat)
    assert int(first.error_code) == E.NONE
    again = dict(beat, member_id=first.member_id, member_epoch=first.member_epoch, subscribed_topic_names=None,
                 topic_partitions=None)
    settled = alice.call(68, 1, again).member_epoch
    admin.create_topic("unrelated", 1)   # what alice may describe changed; her subscription did not
    admin.create_topic("secret", 1)
    assert alice.call(68, 1, dict(again, member_epoch=settled)).member_epoch == settled
