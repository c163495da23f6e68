"""sandbox.toml's [sasl] with a real 2-broker stack and real clients: every broker serves a
SASL_PLAINTEXT listener, the declared users log in with PLAIN and SCRAM (kafka-python, aiokafka,
librdkafka, kafkajs, Debian's kcat), a saved change of users applies live, and a destroyed coordinator
journal (where SCRAM credentials live) gets the declared users back. 127.0.0.1 only."""

from __future__ import annotations

import asyncio
import json
import os
import time

import pytest
from confluent_kafka import KafkaError, Producer

from helpers import listen_port, wait_for

from .kit import kcat
from .stack_kit import all_running_healthy, events, freeze_then_kill, service, wait_status

pytestmark = pytest.mark.integration


def _sasl(port: int, users: str) -> str:
    return f"\n[sasl]\nport = {port}\nusers = {{ {users} }}\n"


def _login(bootstrap: str, mechanism: str, user: str, password: str) -> list:
    """A librdkafka producer's errors while it asks for metadata: [] when it logged in."""
    errors: list = []
    p = Producer({"bootstrap.servers": bootstrap, "security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": mechanism,
                  "sasl.username": user, "sasl.password": password, "error_cb": lambda e: errors.append(e),
                  "log_level": 0})
    try:
        p.list_topics(timeout=5)
    except Exception as e:   # noqa: BLE001 - the metadata times out when the login was refused
        errors.append(e)
    p.poll(0.5)   # error_cb runs from poll
    return errors


def _kafkajs(bootstrap: str, mechanism: str, user: str, password: str, topic: str):
    import os
    import subprocess
    from pathlib import Path
    from .test_transactions_clients import _kafkajs_dir   # installs kafkajs from npm on first need
    node_modules = _kafkajs_dir() / "node_modules"
    return subprocess.run(["node", str(Path(__file__).parent / "js" / "sasl.js"), bootstrap.split(",")[0], mechanism,
                           user, password, topic], capture_output=True, text=True, timeout=90,
                          env=dict(os.environ, NODE_PATH=str(node_modules)))


def _refused(errors: list) -> bool:
    return any(getattr(e, "code", lambda: None)() == KafkaError._AUTHENTICATION for e in errors)


def test_declared_users_log_in_on_every_broker_with_every_client(projects):
    sasl_port = listen_port(2)
    proj = projects("sasl", brokers=2, topics="[topics.orders]\npartitions = 2\n")
    proj.write_toml(proj.toml + _sasl(sasl_port, 'alice = "alice-secret", "bob,x" = "b=b"'))
    r = proj.up()
    assert r.returncode == 0, r.stdout + r.stderr
    sasl = f"127.0.0.1:{sasl_port},127.0.0.1:{sasl_port + 1}"
    assert f"SASL_PLAINTEXT bootstrap {sasl}" in r.stdout and "set SASL credentials of user(s) alice, bob,x" in r.stdout
    code, st = proj.status()
    assert code == 0 and st["sasl_bootstrap"] == sasl, st

    # kafka-python, SCRAM-SHA-512: both partitions, so both brokers' SASL listeners (from Metadata)
    from kafka import KafkaConsumer, KafkaProducer
    p = KafkaProducer(bootstrap_servers=f"127.0.0.1:{sasl_port}", security_protocol="SASL_PLAINTEXT",
                      sasl_mechanism="SCRAM-SHA-512", sasl_plain_username="alice", sasl_plain_password="alice-secret",
                      acks="all")
    leaders = {p.send("orders", f"kp-{i}".encode(), partition=i % 2).get(15).partition for i in range(4)}
    p.close()
    assert leaders == {0, 1}
    # kafka-python, PLAIN, a name that SCRAM must escape
    c = KafkaConsumer("orders", bootstrap_servers=f"127.0.0.1:{sasl_port + 1}", security_protocol="SASL_PLAINTEXT",
                      sasl_mechanism="PLAIN", sasl_plain_username="bob,x", sasl_plain_password="b=b",
                      auto_offset_reset="earliest", consumer_timeout_ms=8000)
    assert sorted(m.value for m in c) == [b"kp-0", b"kp-1", b"kp-2", b"kp-3"]
    c.close()

    # aiokafka, SCRAM-SHA-256 producing and PLAIN consuming
    async def aio() -> list[bytes]:
        from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
        ap = AIOKafkaProducer(bootstrap_servers=f"127.0.0.1:{sasl_port}", security_protocol="SASL_PLAINTEXT",
                              sasl_mechanism="SCRAM-SHA-256", sasl_plain_username="bob,x", sasl_plain_password="b=b")
        await ap.start()
        try:
            for i in range(2):
                await ap.send_and_wait("orders", f"aio-{i}".encode(), partition=i)
        finally:
            await ap.stop()
        ac = AIOKafkaConsumer("orders", bootstrap_servers=f"127.0.0.1:{sasl_port}", security_protocol="SASL_PLAINTEXT",
                              sasl_mechanism="PLAIN", sasl_plain_username="alice", sasl_plain_password="alice-secret",
                              auto_offset_reset="earliest")
        await ac.start()
        got: list[bytes] = []
        try:
            deadline = time.monotonic() + 15
            while len(got) < 6 and time.monotonic() < deadline:
                for msgs in (await ac.getmany(timeout_ms=500)).values():
                    got += [m.value for m in msgs]
        finally:
            await ac.stop()
        return sorted(got)
    assert asyncio.run(aio()) == [b"aio-0", b"aio-1", b"kp-0", b"kp-1", b"kp-2", b"kp-3"]

    # Debian's kcat (librdkafka 2.0) with PLAIN; with SCRAM it repeats its own nonce in the last
    # message, which Kafka 4 refuses: so does the sandbox, and status says why
    out = kcat("-b", f"127.0.0.1:{sasl_port}", "-X", "security.protocol=SASL_PLAINTEXT", "-X",
               "sasl.mechanism=PLAIN", "-X", "sasl.username=alice", "-X", "sasl.password=alice-secret",
               "-C", "-t", "orders", "-e", "-q")
    assert sorted(out.stdout.split()) == [b"aio-0", b"aio-1", b"kp-0", b"kp-1", b"kp-2", b"kp-3"]
    import subprocess
    old = subprocess.run(["kcat", "-b", f"127.0.0.1:{sasl_port}", "-X", "security.protocol=SASL_PLAINTEXT", "-X",
                          "sasl.mechanism=SCRAM-SHA-256", "-X", "sasl.username=alice", "-X",
                          "sasl.password=alice-secret", "-m", "3", "-L"], capture_output=True, timeout=30)
    assert old.returncode != 0 and b"invalid credentials with SASL mechanism SCRAM-SHA-256" in old.stderr, old.stderr
    wait_status(proj, lambda code, st: any("librdkafka before 2.6.1" in e["detail"]
                                           for e in events(st, kind="sasl-login-failed")), 20,
                "the old librdkafka's SCRAM refusal explained in status")

    # kafkajs, SCRAM-SHA-512 and PLAIN; a wrong password is refused as SASLAuthenticationError
    for mechanism, password, code in (("SCRAM-SHA-512", "b=b", 0), ("PLAIN", "b=b", 0), ("SCRAM-SHA-256", "no", 2)):
        r = _kafkajs(sasl, mechanism, "bob,x", password, "orders")
        assert r.returncode == code, r.stdout + r.stderr[-2000:]
        if code:
            assert "refused KAFKA_SASL_AUTHENTICATION_FAILED" in r.stdout or "SASLAuthenticationError" in r.stdout, r.stdout

    # a wrong password is refused in Kafka's words; the PLAINTEXT listener still needs no login
    assert _refused(_login(sasl, "SCRAM-SHA-256", "alice", "guess"))
    assert _refused(_login(sasl, "PLAIN", "mallory", "alice-secret"))
    # ... and `sandbox status` tells the developer which it was
    def told(st: dict) -> str:
        return " | ".join(e["detail"] for e in events(st, kind="sasl-login-failed"))
    _, st = wait_status(proj, lambda code, st: "wrong password for user 'alice'" in told(st)
                        and "user 'mallory' has no SCRAM credentials" in told(st), 20, "the refused logins in status")
    told = told(st)
    assert "(SCRAM-SHA-256) refused: wrong password for user 'alice'" in told, told
    assert "(PLAIN) refused: user 'mallory' has no SCRAM credentials" in told, told
    from .kit import admin
    assert "orders" in admin(proj.bootstrap).list_topics(timeout=10).topics


def test_users_change_live_and_come_back_after_a_destroyed_coordinator_journal(projects):
    sasl_port = listen_port(1)
    proj = projects("saslive", brokers=1)
    proj.write_toml(proj.toml + _sasl(sasl_port, 'alice = "first"'))
    assert proj.up().returncode == 0
    sasl = f"127.0.0.1:{sasl_port}"
    assert _login(sasl, "SCRAM-SHA-512", "alice", "first") == []

    # saved: alice's new password and a new user apply without a restart
    proj.write_toml(proj.toml.replace('alice = "first"', 'alice = "second", carol = "c-pw"'))
    wait_status(proj, lambda code, st: events(st, kind="sasl-users-set"), 20, "the users set from the saved file")
    _, st = proj.status()
    assert "alice, carol" in events(st, kind="sasl-users-set")[-1]["detail"]
    assert st["restart_needed"] is None
    assert _refused(_login(sasl, "SCRAM-SHA-256", "alice", "first"))
    assert _login(sasl, "SCRAM-SHA-256", "alice", "second") == []
    assert _login(sasl, "PLAIN", "carol", "c-pw") == []

    # a user made with Kafka's tools (AlterUserScramCredentials, salted by the client), kept in
    # the supervisor's catalog as the journal keeps it (salt and keys), in a file only its owner reads
    from sandbox.client import KafkaClient
    with KafkaClient(proj.bootstrap) as c:
        c.set_scram_passwords({"dave": "d-pw"}, mechanisms=(1,))
    assert _login(sasl, "SCRAM-SHA-256", "dave", "d-pw") == []
    catalog = proj.data_dir / "topics.json"
    wait_for(lambda: "dave" in json.loads(catalog.read_text()).get("scram", {}), 20,
             what="the tool-made user in the catalog")
    assert "d-pw" not in catalog.read_text()
    if os.name == "posix":
        assert catalog.stat().st_mode & 0o077 == 0

    # the coordinator's journal destroyed: quarantined, and the declared users are set again
    from .test_self_healing import _garble_coordinator_journal
    freeze_then_kill(service(st, "coordinator")["pid"], lambda: _garble_coordinator_journal(proj))
    # every user comes back: the fresh journal starts with the catalog's credentials, and the
    # declared users are set from the file again
    wait_status(proj, lambda code, st: events(st, kind="configs-restored")
                and any("SASL credentials" in e["detail"] for e in events(st, kind="configs-restored"))
                and all_running_healthy(st), 60, "the users put back after the coordinator's journal was lost")
    for mechanism, user, password in (("SCRAM-SHA-512", "carol", "c-pw"), ("PLAIN", "alice", "second"),
                                      ("SCRAM-SHA-256", "dave", "d-pw")):   # dave: made with tools
        wait_for(lambda: _login(sasl, mechanism, user, password) == [], 20, what=f"{user} logging in again")

    # a [sasl] port change needs a restart, and status says so
    proj.write_toml(proj.toml.replace(f"port = {sasl_port}\nusers", f"port = {sasl_port + 7}\nusers"))
    wait_for(lambda: (proj.status()[1].get("restart_needed") or "").find("[sasl] port") >= 0, 20,
             what="status to report the [sasl] port change")
    assert f"[sasl] port {sasl_port + 7}; the running stack uses {sasl_port}" in proj.status()[1]["restart_needed"]
    r = proj.cli("restart", timeout=150)
    assert r.returncode == 0, r.stdout + r.stderr
    wait_status(proj, lambda c, s: c == 0 and all_running_healthy(s) and s.get("restart_needed") is None
                and s.get("sasl_bootstrap") == f"127.0.0.1:{sasl_port + 7}", 60, "the stack on the new SASL port")
    assert _login(f"127.0.0.1:{sasl_port + 7}", "SCRAM-SHA-256", "carol", "c-pw") == []
