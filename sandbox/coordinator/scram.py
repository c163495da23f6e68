"""SCRAM credentials (KIP-554) as Kafka's controller keeps them, pure: AlterUserScramCredentials
validated into journal records, and what DescribeUserScramCredentials lists. Like Kafka, only
the salt, the stored key and the server key derived from the salted password are kept (never the
password or the salted password), whether or not a SASL listener exists; brokers' SASL_PLAINTEXT
listeners check logins against them (broker/sasl.py)."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any, Iterable, Mapping

from sandbox.protocol.errors import (
    DUPLICATE_RESOURCE, NONE, RESOURCE_NOT_FOUND, UNACCEPTABLE_CREDENTIAL, UNSUPPORTED_SASL_MECHANISM,
)

MECHANISMS = {1: "sha256", 2: "sha512"}   # SCRAM-SHA-256, SCRAM-SHA-512
MIN_ITERATIONS, MAX_ITERATIONS = 4096, 16384
_DIGEST_SIZES = {m: hashlib.new(d).digest_size for m, d in MECHANISMS.items()}

Credentials = dict[str, dict[int, dict[str, Any]]]   # user -> mechanism -> salt, keys, iterations
Result = tuple[str, int, str | None]                  # (user, error code, message)


def _check(name: str, mechanism: int) -> tuple[int, str] | None:
    if not name:
        return UNACCEPTABLE_CREDENTIAL, "Username must not be empty"
    if mechanism not in MECHANISMS:
        return UNSUPPORTED_SASL_MECHANISM, "Unknown SCRAM mechanism"
    return None


def keys_of(mechanism: int, salted_password: bytes) -> tuple[bytes, bytes]:
    """(stored key, server key) of RFC 5802, as Kafka's ScramFormatter derives them."""
    digest = MECHANISMS[mechanism]
    client_key = hmac.new(salted_password, b"Client Key", digest).digest()
    return hashlib.new(digest, client_key).digest(), hmac.new(salted_password, b"Server Key", digest).digest()


def alterations(store: Credentials, deletions: Iterable[tuple[str, int]],
                upsertions: Iterable[tuple[str, int, int, bytes, bytes]]) -> tuple[list[dict], list[Result]]:
    """deletions (user, mechanism), upsertions (user, mechanism, iterations, salt, salted password):
    the records and one result per user, checked as Kafka's ScramControlManager checks them (a
    user named twice in one request is refused whole)."""
    errors: dict[str, tuple[int, str]] = {}
    deleting: dict[str, tuple[str, int]] = {}
    upserting: dict[str, tuple[str, int, int, bytes, bytes]] = {}
    twice = DUPLICATE_RESOURCE, "A user credential cannot be altered twice in the same request"
    for name, mechanism in deletions:
        if name in errors:
            continue
        if deleting.pop(name, None) is not None:
            errors[name] = twice
            continue
        bad = _check(name, mechanism)
        if bad is None and mechanism not in store.get(name, {}):
            bad = RESOURCE_NOT_FOUND, "Attempt to delete a user credential that does not exist"
        if bad is None:
            deleting[name] = (name, mechanism)
        else:
            errors[name] = bad
    for name, mechanism, iterations, salt, salted in upsertions:
        if name in errors:
            continue
        if deleting.pop(name, None) is not None or upserting.pop(name, None) is not None:
            errors[name] = twice
            continue
        bad = _check(name, mechanism)
        if bad is None and iterations < MIN_ITERATIONS:
            bad = UNACCEPTABLE_CREDENTIAL, "Too few iterations"
        elif bad is None and iterations > MAX_ITERATIONS:
            bad = UNACCEPTABLE_CREDENTIAL, "Too many iterations"
        if bad is None:
            upserting[name] = (name, mechanism, iterations, bytes(salt), bytes(salted))
        else:
            errors[name] = bad
    records: list[dict] = []
    results: list[Result] = []
    for name, mechanism in deleting.values():
        records.append({"type": "scram", "user": name, "mechanism": mechanism, "removed": True})
        results.append((name, NONE, None))
    for name, mechanism, iterations, salt, salted in upserting.values():
        stored_key, server_key = keys_of(mechanism, salted)
        records.append({"type": "scram", "user": name, "mechanism": mechanism, "iterations": iterations,
                        "salt": salt.hex(), "stored_key": stored_key.hex(), "server_key": server_key.hex()})
        results.append((name, NONE, None))
    results += [(name, code, message) for name, (code, message) in errors.items()]
    return records, results


def apply(store: Credentials, r: Mapping[str, Any]) -> None:
    user, mechanism = str(r["user"]), int(r["mechanism"])
    if r.get("removed"):
        mechanisms = store[user]
        del mechanisms[mechanism]   # KeyError: a record that does not fit
        if not mechanisms:
            del store[user]
    else:
        store.setdefault(user, {})[mechanism] = {k: r[k] for k in ("iterations", "salt", "stored_key", "server_key")}


def to_json(store: Credentials) -> dict:
    return {u: {str(m): dict(v) for m, v in sorted(ms.items())} for u, ms in sorted(store.items())}


def from_json(data: Mapping[str, Any] | None) -> Credentials:
    return {str(u): {int(m): dict(v) for m, v in ms.items()} for u, ms in (data or {}).items()}


def described(store: Credentials, users: list[str] | None) -> list[dict]:
    """DescribeUserScramCredentials results: every user when `users` is None or empty."""
    def infos(name: str) -> list[dict]:
        return [{"mechanism": m, "iterations": int(v["iterations"])} for m, v in sorted(store[name].items())]

    if not users:
        return [{"user": u, "error_code": NONE, "error_message": None, "credential_infos": infos(u)}
                for u in sorted(store)]
    out = []
    for name in dict.fromkeys(users):
        if users.count(name) > 1:
            code, message = DUPLICATE_RESOURCE, ("Cannot describe SCRAM credentials for the same user twice "
                                                 "in a single request")
        elif name not in store:
            code, message = RESOURCE_NOT_FOUND, "Attempt to describe a user credential that does not exist"
        else:
            code, message = NONE, None
        out.append({"user": name, "error_code": code, "error_message": message,
                    "credential_infos": infos(name) if code == NONE else []})
    return out


def changes_of(request: Any) -> tuple[list[tuple[str, int]], list[tuple[str, int, int, bytes, bytes]]]:
    """(deletions, upsertions) of an AlterUserScramCredentials request."""
    return ([(d.name, int(d.mechanism)) for d in request.deletions],
            [(u.name, int(u.mechanism), int(u.iterations), bytes(u.salt), bytes(u.salted_password))
             for u in request.upsertions])


def alter_response(results: list[Result]) -> dict:
    return {"throttle_time": 0, "results": [{"user": u, "error_code": c, "error_message": m} for u, c, m in results]}


def seed_records(seed: Any) -> list[dict]:
    """A fresh journal's first SCRAM records from a seed (the supervisor's catalog: {user:
    {mechanism: {"iterations", "salt", "stored_key", "server_key" (hex)}}}), so users made with
    tools log in again after a destroyed journal was replaced. One that cannot be a credential
    (a name or mechanism AlterUserScramCredentials would refuse, iterations out of range, keys
    that are not hex of the mechanism's digest size) is left out."""
    if not isinstance(seed, Mapping):
        return []
    records = []
    for user, mechanisms in sorted(seed.items()):
        if not isinstance(user, str) or not isinstance(mechanisms, Mapping):
            continue
        for m, cred in sorted(mechanisms.items(), key=lambda kv: str(kv[0])):
            try:
                mechanism, iterations = int(m), int(cred["iterations"])
                salt, stored, server = (bytes.fromhex(cred[k]) for k in ("salt", "stored_key", "server_key"))
            except (KeyError, TypeError, ValueError):
                continue
            size = _DIGEST_SIZES.get(mechanism)
            if (_check(user, mechanism) is not None or not MIN_ITERATIONS <= iterations <= MAX_ITERATIONS
                    or not salt or len(stored) != size or len(server) != size):
                continue
            records.append({"type": "scram", "user": user, "mechanism": mechanism, "iterations": iterations,
                            "salt": salt.hex(), "stored_key": stored.hex(), "server_key": server.hex()})
    return records
