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
    loop, state = open_broker(tmp_path, **{"authorizer.class.name": "", "super.users": ""})
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
    from sandbox.broker import access, state
    from sandbox.runner.logscan import describe_event
    reported: list[dict] = []
    monkeypatch.setattr(access, "DENIAL_REPORTS", access.Reporter(every_s=60))
    monkeypatch.setattr(state, "emit_event", lambda kind, detail: reported.append(detail)
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
