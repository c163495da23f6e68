"""A destroyed coordinator journal's replacement starts with the ACL bindings the supervisor's
catalog kept (`sandbox coordinator --seed-acls`), journaled before it serves anything: brokers never
see a moment without them, when allow.everyone.if.no.acl.found would open what they closed. Only
a fresh journal takes them; one with a history keeps its own. The real stack's case (the catalog
put back, a SASL principal still refused) is tests/integration/test_acls_stack.py."""

from __future__ import annotations

import asyncio
import json
import shutil
import time

from coordinator.server_helpers import CoordinatorProcess
from sandbox.coordinator import Coordinator
from sandbox.coordinator.client import RemoteCoordinator
from sandbox.coordinator.server import read_seed_acls
from sandbox.protocol import build, request_class

TOPIC, LITERAL, PREFIXED, READ, WRITE, DENY, ALLOW = 2, 3, 4, 3, 4, 2, 3
ALICE_DENIED = [TOPIC, "orders", LITERAL, "User:alice", "*", WRITE, DENY]
BOB_ALLOWED = [TOPIC, "ord", PREFIXED, "User:bob", "*", READ, ALLOW]


def _bindings(c) -> list[list]:
    return sorted(b.to_json() for b in c.acls())


def test_a_fresh_journal_starts_with_the_seed_and_an_old_one_keeps_its_own(tmp_path):
    c = Coordinator(tmp_path / "j", seed_acls=lambda: [ALICE_DENIED, BOB_ALLOWED])
    assert c.seeded_acls == 2 and _bindings(c) == sorted([ALICE_DENIED, BOB_ALLOWED])
    c.delete_acls([])   # nothing matched: still both
    c.close()
    # reopened with another seed: the journal has a history, so its ACLs are its own
    asked = []
    c = Coordinator(tmp_path / "j", seed_acls=lambda: asked.append(1) or [[TOPIC, "other", LITERAL, "User:carol",
                                                                          "*", READ, ALLOW]])
    assert c.seeded_acls == 0 and _bindings(c) == sorted([ALICE_DENIED, BOB_ALLOWED])
    assert asked == []   # the seed (the supervisor's whole catalog) is not even read
    c.close()


def test_entries_that_cannot_be_bindings_are_left_out(tmp_path):
    seed = [ALICE_DENIED, ["too", "short"], "text", [TOPIC, "x", LITERAL, "alice", "*", READ, ALLOW],   # no "User:"
            [0, "x", LITERAL, "User:a", "*", READ, ALLOW], [TOPIC, "x", LITERAL, "User:a", "*", "READ?", ALLOW]]
    c = Coordinator(tmp_path / "j", seed_acls=lambda: seed)
    assert c.seeded_acls == 1 and _bindings(c) == [ALICE_DENIED]
    c.close()


def test_the_seed_file_is_read_leniently(tmp_path, caplog):
    assert read_seed_acls(None) == [] and read_seed_acls(tmp_path / "missing.json") == []
    (tmp_path / "bad.json").write_text("{not json")
    assert read_seed_acls(tmp_path / "bad.json") == []
    assert "cannot be read" in caplog.text
    (tmp_path / "list.json").write_text("[1, 2]")
    assert read_seed_acls(tmp_path / "list.json") == []
    (tmp_path / "catalog.json").write_text(json.dumps({"topics": {}, "acls": [ALICE_DENIED]}))
    assert read_seed_acls(tmp_path / "catalog.json") == [ALICE_DENIED]


def test_a_seed_file_being_replaced_on_windows_is_read_again(tmp_path, monkeypatch):
    """Windows refuses to open a file while the supervisor's rename replaces it: asked again,
    and a file that stays refused is a warning and no seed, never a coordinator that fails to start."""
    from pathlib import Path

    seed = tmp_path / "topics.json"
    seed.write_text(json.dumps({"acls": [ALICE_DENIED]}))
    real, refusals = Path.read_text, [2]

    def read_text(self, *a, **kw):
        if self == seed and refusals[0] > 0:
            refusals[0] -= 1
            raise PermissionError(13, "The process cannot access the file", str(self))
        return real(self, *a, **kw)

    monkeypatch.setattr(Path, "read_text", read_text)
    assert read_seed_acls(seed) == [ALICE_DENIED] and refusals == [0]
    refusals[0] = 10
    assert read_seed_acls(seed) == []


def test_a_broker_sees_the_replacement_journal_with_its_acls_from_the_first_moment(tmp_path):
    """A real coordinator process: ACLs created through it, the process SIGKILLed and its journal
    destroyed, a new process on the same port with the catalog as its seed. The broker's mirror is
    watched every 2 ms: the first view of the new history already holds both bindings."""
    data, catalog = tmp_path / "coordinator", tmp_path / "topics.json"
    first = CoordinatorProcess(data).start()
    second = None

    async def main():
        nonlocal second
        rc = RemoteCoordinator(("127.0.0.1", first.port), request_timeout=1.0, connect_timeout=0.5)
        try:
            await rc.start(1, "127.0.0.1", 9201)
            await rc.forward(build(request_class(30, 3), {"creations": [
                {"resource_type": b[0], "resource_name": b[1], "resource_pattern_type": b[2], "principal": b[3],
                 "host": b[4], "operation": b[5], "permission_type": b[6]} for b in (ALICE_DENIED, BOB_ALLOWED)]}),
                catch_up=True)
            t0 = time.monotonic()
            while len(rc.acls()) < 2 and time.monotonic() - t0 < 10:
                await asyncio.sleep(0.01)
            catalog.write_text(json.dumps({"acls": _bindings(rc)}))   # what the supervisor's catalog keeps
            old = rc.cluster_id
            first.kill()
            shutil.rmtree(data)
            second = CoordinatorProcess(data, port=first.port, seed_acls=catalog)
            await asyncio.to_thread(second.start)
            seen = []
            while rc.cluster_id == old and time.monotonic() - t0 < 20:
                await asyncio.sleep(0.002)
            seen.append(_bindings(rc))
            assert rc.cluster_id != old, "the mirror never followed the new journal"
            assert seen == [sorted([ALICE_DENIED, BOB_ALLOWED])]
        finally:
            await rc.stop()

    try:
        asyncio.run(main())
        assert "started with the 2 ACL binding(s)" in second.log_text()
    finally:
        first.kill()
        if second is not None:
            second.kill()


def test_a_fresh_journal_answers_with_the_seed_s_cluster_id_and_an_old_one_keeps_its_own(tmp_path):
    """So clients never see the cluster id change while a destroyed journal is put back (they
    warned twice: once for the fresh journal's id, once when the restore put the old one back)."""
    c = Coordinator(tmp_path / "j", seed_cluster_id=lambda: "Kept_Cluster-Id")
    history = c.cluster_id
    assert c.public_cluster_id == "Kept_Cluster-Id" and history != "Kept_Cluster-Id"
    c.close()
    c = Coordinator(tmp_path / "j", seed_cluster_id=lambda: "Another-Id")   # a history: its own
    assert (c.cluster_id, c.public_cluster_id) == (history, "Kept_Cluster-Id")
    c.close()
    for bad in (None, "", "not a cluster id!", 42):
        c = Coordinator(tmp_path / f"j-{bad!r}", seed_cluster_id=lambda bad=bad: bad)
        assert c.public_cluster_id == c.cluster_id   # left out: the journal's own
        c.close()


def test_the_server_reads_the_seed_once_for_both(tmp_path, monkeypatch):
    from sandbox.coordinator import server
    seed = tmp_path / "topics.json"
    seed.write_text(json.dumps({"acls": [ALICE_DENIED], "cluster_id": "Kept_Cluster-Id", "topics": {}}))
    reads = []
    real = server.read_seed
    monkeypatch.setattr(server, "read_seed", lambda path: reads.append(path) or real(path))
    srv = server.CoordinatorServer(server.CoordinatorConfig(data_dir=tmp_path / "j", port=0, seed_acls=seed))
    srv.open()
    try:
        assert srv.coordinator.public_cluster_id == "Kept_Cluster-Id"
        assert _bindings(srv.coordinator) == [ALICE_DENIED]
        assert reads == [seed]
    finally:
        srv.close()


def test_the_history_its_acls_and_its_cluster_id_are_one_write(tmp_path, monkeypatch):
    """Review: three writes, and a crash between them left a journal with a history, which is
    never seeded again: it served without the ACLs, under a new cluster id."""
    from sandbox.coordinator.journal import MetadataJournal

    batches = []
    real = MetadataJournal.append
    monkeypatch.setattr(MetadataJournal, "append", lambda self, records: batches.append(list(records))
                        or real(self, records))
    c = Coordinator(tmp_path / "j", seed_acls=lambda: [ALICE_DENIED], seed_cluster_id=lambda: "Kept_Cluster-Id")
    try:
        assert [[r["type"] for r in b] for b in batches] == [["cluster", "acl", "public-cluster-id"]]
        assert c.seeded_acls == 1 and c.public_cluster_id == "Kept_Cluster-Id"
        assert _bindings(c) == [ALICE_DENIED]
    finally:
        c.close()


def test_a_fresh_journal_starts_with_the_seed_s_scram_users_an_old_one_keeps_its_own(tmp_path):
    """Users made with Kafka's tools (AlterUserScramCredentials) are in the supervisor's catalog as
    the journal keeps them (salt, stored and server keys): a destroyed journal's replacement starts
    with them, so they log in again. Entries that cannot be credentials are left out."""
    from sandbox.coordinator.scram import keys_of
    stored, server = keys_of(1, b"x" * 32)
    good = {"iterations": 4096, "salt": b"salt".hex(), "stored_key": stored.hex(), "server_key": server.hex()}
    seed = {"dave": {"1": good},
            "eve": {"1": {**good, "iterations": 10}},            # too few iterations
            "frank": {"3": good},                               # no such mechanism
            "gina": {"2": good},                                # SHA-256 keys for SCRAM-SHA-512
            "hal": {"1": {**good, "stored_key": "not hex"}},
            "": {"1": good}, "ivy": "text"}
    c = Coordinator(tmp_path / "j", seed_scram=lambda: seed)
    assert c.seeded_users == 1
    assert c.scram_credential("dave", 1) == good
    assert [r["user"] for r in c.scram_credentials(None)] == ["dave"]
    c.close()
    asked = []
    c = Coordinator(tmp_path / "j", seed_scram=lambda: asked.append(1) or {"zed": {"1": good}})
    assert c.seeded_users == 0 and asked == [] and c.scram_credential("zed", 1) is None
    assert c.scram_credential("dave", 1) == good   # journaled: still there
    c.close()
