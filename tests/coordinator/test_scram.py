"""SCRAM credentials in the coordinator's metadata: kept across a restart of its journal, only
derived keys stored, a deletion leaving the user's other mechanism."""
from __future__ import annotations

import hashlib
import hmac

from sandbox.protocol import errors as E


def test_credentials_survive_a_restart_and_keep_only_derived_keys(make_coordinator, tmp_path):
    c = make_coordinator()
    salted = hashlib.pbkdf2_hmac("sha256", b"pencil", b"salt", 4096)
    assert c.alter_scram_credentials([], [("alice", 1, 4096, b"salt", salted), ("alice2", 2, 8192, b"s", b"x")]) == [
        ("alice", E.NONE, None), ("alice2", E.NONE, None)]
    c.alter_scram_credentials([], [("alice2", 1, 5000, b"s", b"x")])
    c.alter_scram_credentials([("alice2", 2)], [])
    state = c.state()
    c.close()
    c2 = make_coordinator()
    assert c2.state() == state
    assert c2.scram_credentials(None) == [
        {"user": "alice", "error_code": E.NONE, "error_message": None,
         "credential_infos": [{"mechanism": 1, "iterations": 4096}]},
        {"user": "alice2", "error_code": E.NONE, "error_message": None,
         "credential_infos": [{"mechanism": 1, "iterations": 5000}]}]
    kept = state.scram["alice"]["1"]
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    assert kept["stored_key"] == hashlib.sha256(client_key).hexdigest()
    assert kept["server_key"] == hmac.new(salted, b"Server Key", "sha256").hexdigest()
    journal = b"".join(p.read_bytes() for p in (tmp_path / "coordinator").rglob("*") if p.is_file())
    assert salted.hex().encode() not in journal
