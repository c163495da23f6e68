"""ACLs on a real 2-broker stack with [sasl] users and real clients: confluent-kafka's admin
client creates, describes and deletes ACLs through the plain listener (User:ANONYMOUS, a super user
by default); SASL logins of librdkafka, kafka-python and aiokafka are allowed and refused by them
with Kafka's errors, on both brokers; the ACLs come back after the coordinator's journal is
destroyed (the supervisor's catalog keeps them, so healing never opens what they closed). 127.0.0.1 only."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from confluent_kafka import Consumer, KafkaError, Producer
from confluent_kafka.admin import (
    AclBinding, AclBindingFilter, AclOperation, AclPermissionType, AdminClient, ResourcePatternType, ResourceType,
)

from helpers import listen_port, wait_for

from .stack_kit import all_running_healthy, events, freeze_then_kill, service, wait_status

pytestmark = pytest.mark.integration

ALLOW = AclPermissionType.ALLOW


def _sasl_conf(bootstrap: str, user: str, mechanism: str = "SCRAM-SHA-256") -> dict:
    return {"bootstrap.servers": bootstrap, "security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": mechanism,
            "sasl.username": user, "sasl.password": f"{user}-pw", "log_level": 0}


def _produce(bootstrap: str, user: str, topic: str, count: int) -> list:
    """The delivery errors (None for each record delivered)."""
    results: list = []
    p = Producer({**_sasl_conf(bootstrap, user), "message.timeout.ms": 10000, "retries": 0})
    for i in range(count):
        p.produce(topic, f"{user}-{i}".encode(), partition=i % 2, on_delivery=lambda err, _m: results.append(err))
    p.flush(20)
    return results


def _consume(bootstrap: str, user: str, topic: str, group: str, want: int, seconds: float = 15) -> tuple[list, list]:
    """(values read, error codes seen) by a consumer of `group`."""
    c = Consumer({**_sasl_conf(bootstrap, user, "SCRAM-SHA-512"), "group.id": group, "auto.offset.reset": "earliest"})
    c.subscribe([topic])
    values, errors = [], []
    deadline = time.monotonic() + seconds
    try:
        while len(values) < want and time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is None:
                continue
            if m.error():
                errors.append(m.error().code())
                if m.error().code() in (KafkaError.GROUP_AUTHORIZATION_FAILED, KafkaError.TOPIC_AUTHORIZATION_FAILED):
                    break
                continue
            values.append(m.value())
    finally:
        c.close()
    return values, errors


def _bindings(admin: AdminClient) -> set[tuple]:
    every = AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY, None, None, AclOperation.ANY,
                             AclPermissionType.ANY)
    return {(b.restype, b.name, b.resource_pattern_type, b.principal, b.operation)
            for b in admin.describe_acls(every).result(15)}


def test_acls_allow_and_refuse_real_clients_and_survive_a_destroyed_coordinator_journal(projects):
    sasl_port = listen_port(2)
    proj = projects("acls", brokers=2, topics="[topics.orders]\npartitions = 2\n[topics.audit]\npartitions = 1\n"
                                              "[topics.ledger]\npartitions = 1\n")
    proj.write_toml(proj.toml + f'\n[sasl]\nport = {sasl_port}\nusers = {{ alice = "alice-pw", bob = "bob-pw" }}\n')
    r = proj.up()
    assert r.returncode == 0, r.stdout + r.stderr
    _, st = proj.status()
    plain, sasl = st["bootstrap"], f"127.0.0.1:{sasl_port},127.0.0.1:{sasl_port + 1}"

    # before any ACL: every SASL login may use everything (allow.everyone.if.no.acl.found)
    assert _produce(sasl, "alice", "orders", 2) == [None, None]

    admin = AdminClient({"bootstrap.servers": plain})
    acls = [AclBinding(ResourceType.TOPIC, "ord", ResourcePatternType.PREFIXED, "User:bob", "*", AclOperation.WRITE, ALLOW),
            AclBinding(ResourceType.TOPIC, "orders", ResourcePatternType.LITERAL, "User:alice", "*", AclOperation.READ, ALLOW),
            AclBinding(ResourceType.GROUP, "billing", ResourcePatternType.LITERAL, "User:alice", "*", AclOperation.READ, ALLOW),
            AclBinding(ResourceType.TOPIC, "ledger", ResourcePatternType.LITERAL, "User:bob", "*", AclOperation.READ, ALLOW)]
    for f in admin.create_acls(acls).values():
        f.result(15)
    bad = AclBinding(ResourceType.BROKER, "not-the-cluster", ResourcePatternType.LITERAL, "User:x", "*",
                     AclOperation.ALTER, ALLOW)
    with pytest.raises(Exception, match="(?i)kafka-cluster"):
        admin.create_acls([bad])[bad].result(15)
    assert _bindings(admin) == {
        (ResourceType.TOPIC, "ord", ResourcePatternType.PREFIXED, "User:bob", AclOperation.WRITE),
        (ResourceType.TOPIC, "orders", ResourcePatternType.LITERAL, "User:alice", AclOperation.READ),
        (ResourceType.GROUP, "billing", ResourcePatternType.LITERAL, "User:alice", AclOperation.READ),
        (ResourceType.TOPIC, "ledger", ResourcePatternType.LITERAL, "User:bob", AclOperation.READ)}

    # librdkafka: bob writes to both partitions (both brokers), alice no longer may
    assert _produce(sasl, "bob", "orders", 4) == [None] * 4
    refused = _produce(sasl, "alice", "orders", 1)
    assert [e.code() for e in refused] == [KafkaError.TOPIC_AUTHORIZATION_FAILED], refused
    # status says who was refused what, and why (the client is told only the error code)
    _, st = wait_status(proj, lambda code, st: any("User:alice" in e["detail"] and "WRITE on topic orders" in e["detail"]
                                                   for e in events(st, kind="authorization-failed")),
                        20, "the refusal in status")
    told = [e["detail"] for e in events(st, kind="authorization-failed") if "User:alice" in e["detail"]]
    assert any("its ACLs allow WRITE to others only" in d for d in told), told
    # alice reads orders in group billing; bob may not read it, nor join billing
    values, errors = _consume(sasl, "alice", "orders", "billing", 6)
    assert sorted(values) == sorted([b"alice-0", b"alice-1"] + [f"bob-{i}".encode() for i in range(4)]), errors
    _, errors = _consume(sasl, "bob", "orders", "billing", 1)
    assert errors and errors[0] in (KafkaError.GROUP_AUTHORIZATION_FAILED, KafkaError.TOPIC_AUTHORIZATION_FAILED)

    # kafka-python: ledger (bob's alone) is not listed to alice; orders (her READ) and audit (no ACL) are
    from kafka import KafkaAdminClient, KafkaConsumer
    kp = KafkaConsumer(bootstrap_servers=sasl.split(",")[1], security_protocol="SASL_PLAINTEXT",
                       sasl_mechanism="PLAIN", sasl_plain_username="alice", sasl_plain_password="alice-pw")
    listed = kp.topics()
    kp.close()
    assert {"orders", "audit"} <= listed and "ledger" not in listed, listed
    # aiokafka, SCRAM-SHA-512: bob's writes to audit are allowed (no ACL names it)
    from aiokafka import AIOKafkaProducer

    async def aio() -> None:
        p = AIOKafkaProducer(bootstrap_servers=sasl, security_protocol="SASL_PLAINTEXT",
                             sasl_mechanism="SCRAM-SHA-512", sasl_plain_username="bob", sasl_plain_password="bob-pw")
        await p.start()
        try:
            await p.send_and_wait("audit", b"from-aiokafka")
        finally:
            await p.stop()
    asyncio.run(aio())
    # kafka-python's admin client sees the same ACLs the coordinator journaled
    from kafka.admin import ACLFilter, ACLOperation, ACLPermissionType, ResourcePatternFilter
    from kafka.admin import ResourceType as KResourceType, ACLResourcePatternType
    ka = KafkaAdminClient(bootstrap_servers=plain)
    found, err = ka.describe_acls(ACLFilter(principal=None, host="*", operation=ACLOperation.ANY,
                                            permission_type=ACLPermissionType.ANY,
                                            resource_pattern=ResourcePatternFilter(KResourceType.TOPIC, None,
                                                                                   ACLResourcePatternType.ANY)))
    ka.close()
    assert sorted(a.principal for a in found) == ["User:alice", "User:bob", "User:bob"], err

    # the coordinator's journal destroyed: the catalog's ACLs are put back, so alice stays refused
    wait_for(lambda: len(json.loads((proj.data_dir / "topics.json").read_text()).get("acls", [])) == 4, 20,
             what="the catalog to record the ACLs")
    from .test_self_healing import _garble_coordinator_journal
    _, st = proj.status()
    freeze_then_kill(service(st, "coordinator")["pid"], lambda: _garble_coordinator_journal(proj))
    _, st = wait_status(proj, lambda code, st: any("ACL" in e["detail"] for e in events(st, kind="configs-restored"))
                        and all_running_healthy(st), 90, "the ACLs put back after the coordinator's journal was lost")
    # the new journal began with them (--seed-acls from the catalog): no moment without them
    said = [e["detail"] for e in events(st, kind="configs-restored") if "ACL" in e["detail"]]
    assert said == ["put back: 4 ACL bindings (in the new journal before it served)"], said
    assert "started with the 4 ACL binding(s)" in (proj.data_dir / "logs" / "coordinator.log").read_text()
    assert len(_bindings(admin)) == 4
    refused = _produce(sasl, "alice", "orders", 1)
    assert [e.code() for e in refused] == [KafkaError.TOPIC_AUTHORIZATION_FAILED], refused

    # deleted: bob's write ACL is gone, and orders still names alice, so bob is refused too
    gone = admin.delete_acls([AclBindingFilter(ResourceType.TOPIC, "ord", ResourcePatternType.PREFIXED, None, None,
                                               AclOperation.ANY, AclPermissionType.ANY)])
    assert [b.principal for f in gone.values() for b in f.result(15)] == ["User:bob"]
    refused = _produce(sasl, "bob", "orders", 1)
    assert [e.code() for e in refused] == [KafkaError.TOPIC_AUTHORIZATION_FAILED], refused


def test_declared_acls_apply_at_up_and_when_the_file_is_saved(projects):
    sasl_port = listen_port(1)
    proj = projects("aclfile", brokers=1, topics="[topics.orders]\npartitions = 1\n")
    bob_writes = '\n[[acls]]\nprincipal = "bob"\ntopic = "orders"\noperations = ["write", "describe"]\n'
    base = proj.toml + f'\n[sasl]\nport = {sasl_port}\nusers = {{ alice = "alice-pw", bob = "bob-pw" }}\n'
    proj.write_toml(base + bob_writes)
    r = proj.up()
    assert r.returncode == 0, r.stdout + r.stderr
    assert "created 2 declared ACL bindings" in r.stdout, r.stdout
    sasl = f"127.0.0.1:{sasl_port}"
    assert _produce(sasl, "bob", "orders", 1) == [None]
    refused = _produce(sasl, "alice", "orders", 1)
    assert [e.code() for e in refused] == [KafkaError.TOPIC_AUTHORIZATION_FAILED], refused

    # saved: alice may write too, without a restart
    proj.write_toml(base + bob_writes + '\n[[acls]]\nprincipal = "User:alice"\ntopic = "ord"\npattern = "prefixed"\n'
                                        'operations = "write"\n')
    wait_status(proj, lambda code, st: any("created 1 declared ACL binding" == e["detail"]
                                           for e in events(st, kind="acls-created")), 20, "the saved [[acls]]")
    assert _produce(sasl, "alice", "orders", 1) == [None]
    _, st = proj.status()
    assert st["restart_needed"] is None
    # `topics apply` (compose's way) finds nothing missing, then puts back a declared binding deleted
    r = proj.cli("topics", "apply", "--config", str(proj.root / "sandbox.toml"), "--bootstrap", st["bootstrap"])
    assert r.returncode == 0 and "ACL" not in r.stdout, r.stdout + r.stderr
    admin = AdminClient({"bootstrap.servers": st["bootstrap"]})
    gone = admin.delete_acls([AclBindingFilter(ResourceType.TOPIC, "ord", ResourcePatternType.PREFIXED, None, None,
                                               AclOperation.ANY, AclPermissionType.ANY)])
    assert [b.principal for f in gone.values() for b in f.result(15)] == ["User:alice"]
    r = proj.cli("topics", "apply", "--config", str(proj.root / "sandbox.toml"), "--bootstrap", st["bootstrap"])
    assert r.returncode == 0 and "created 1 declared ACL binding" in r.stdout, r.stdout + r.stderr
    assert _produce(sasl, "alice", "orders", 1) == [None]
