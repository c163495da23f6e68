"""[sasl] users and [[acls]] saved in the file, applied to a running stack: each part retried on
its own while the cluster does not answer; ACLs put back after a wipe even when the brokers no
longer have an authorizer (nothing is then open, and the re-creation must not stall)."""

from __future__ import annotations

from sandbox.client import KafkaClientError
from sandbox.protocol.errors import SECURITY_DISABLED
from sandbox.runner import catalog, declared

BINDING = (2, "orders", 3, "User:bob", "*", 4, 3)


class _Client:
    def __init__(self, acls_answer: bool = True, users_answer: bool = True, authorizer: bool = True) -> None:
        self.acls_answer, self.users_answer, self.authorizer = acls_answer, users_answer, authorizer
        self.bindings: list[list] = []
        self.users: list[dict] = []

    def acls(self):
        if not self.acls_answer:
            raise KafkaClientError("no answer")
        return list(self.bindings)

    def create_acls(self, bindings):
        if not self.authorizer and bindings:
            raise KafkaClientError("creating ACLs failed with SECURITY_DISABLED", SECURITY_DISABLED)
        self.bindings += bindings

    def set_scram_passwords(self, passwords):
        if not self.users_answer:
            raise KafkaClientError("no answer")
        self.users.append(dict(passwords))


def test_users_and_acls_are_retried_apart():
    client, events = _Client(acls_answer=False), []
    pending = declared.PendingDeclarations(client, lambda *e: events.append(e))
    pending.acls_saved((BINDING,))
    pending.users_saved({}, {"alice": "pw"})
    assert client.users == [{"alice": "pw"}] and client.bindings == []
    client.acls_answer = True
    pending.retry(force=True)
    # the users were done: not salted again; the ACLs, pending, are created now
    assert client.users == [{"alice": "pw"}] and client.bindings == [list(BINDING)]
    pending.retry(force=True)
    assert client.users == [{"alice": "pw"}] and client.bindings == [list(BINDING)]
    kinds = [k for _s, k, _d in events]
    assert kinds.count("acls-created") == 1 and kinds.count("sasl-users-set") == 1, events


def test_acls_put_back_from_the_catalog_and_the_file(tmp_path, monkeypatch):
    monkeypatch.setattr(catalog, "_read", lambda cfg: {"acls": [[3, "billing", 3, "User:alice", "*", 3, 3]]})
    client = _Client()
    assert catalog.restore_acls(None, client, declared=[BINDING]) == (2, 0)
    assert catalog.restore_acls(None, client, declared=[BINDING]) == (0, 2)
    assert catalog.restore_acls(None, _Client(authorizer=False), declared=[BINDING]) == (0, 0)


def test_only_missing_users_leaves_a_password_changed_with_a_tool():
    """`up` on a running stack and the restore after a destroyed coordinator journal give
    credentials only to declared users that lack either SCRAM mechanism, so a password changed
    with kafka-configs since is not reset; a plain `up` (only_missing False) sets every one."""
    from sandbox.runner.manifest import apply_users

    class _Have(_Client):
        def scram_users(self):   # user -> mechanisms held (1 SCRAM-SHA-256, 2 SCRAM-SHA-512)
            return {"alice": {1, 2}, "bob": {1}}

    users = {"alice": "a", "bob": "b", "carol": "c"}
    client = _Have()
    assert apply_users(users, client, only_missing=True) == ["set SASL credentials of user(s) bob, carol"]
    assert client.users == [{"bob": "b", "carol": "c"}]
    client = _Have()
    assert apply_users({"alice": "a"}, client, only_missing=True) == []
    assert apply_users(users, client) == ["set SASL credentials of user(s) alice, bob, carol"]
    assert client.users == [{}, users]
