"""SASL authentication on a SASL_PLAINTEXT listener, as a Kafka broker does it: PLAIN and
SCRAM-SHA-256/512 (RFC 5802, 7677; KIP-84) against the SCRAM credentials of the cluster's
metadata (AlterUserScramCredentials, `kafka-configs --entity-type users`, or sandbox.toml's
[sasl] users). Pure: one `SaslSession` per connection, fed the tokens of SaslHandshake (17) and
SaslAuthenticate (36), or raw tokens after a v0 handshake.

PLAIN is checked against the same credentials (the password salted and hashed as SCRAM stores it),
so one user list serves every mechanism and no password is ever kept."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from typing import Any, Callable, Mapping

from sandbox.protocol.errors import ILLEGAL_SASL_STATE, NONE, SASL_AUTHENTICATION_FAILED, UNSUPPORTED_SASL_MECHANISM

MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
SCRAM = {"SCRAM-SHA-256": (1, "sha256"), "SCRAM-SHA-512": (2, "sha512")}   # name -> (KIP-554 id, digest)

# credential(user, mechanism id) -> {"iterations", "salt", "stored_key", "server_key"} (hex) or None
Lookup = Callable[[str, int], "Mapping[str, Any] | None"]


class SaslFailed(Exception):
    """The exchange failed: error code and the message Kafka gives (the connection is then closed)."""

    def __init__(self, error_code: int, message: str) -> None:
        super().__init__(message)
        self.error_code, self.message = error_code, message


def _failed(mechanism: str) -> SaslFailed:
    # Kafka's words: the same for an unknown user and a wrong password (no user enumeration)
    return SaslFailed(SASL_AUTHENTICATION_FAILED, "Authentication failed during authentication due to invalid "
                                                  f"credentials with SASL mechanism {mechanism}")


def _stored_key(digest: str, salted: bytes) -> bytes:
    return hashlib.new(digest, hmac.new(salted, b"Client Key", digest).digest()).digest()


def _attributes(message: str) -> dict[str, str]:
    out = {}
    for part in message.split(","):
        key, eq, value = part.partition("=")
        if len(key) != 1 or not eq:
            raise ValueError(f"malformed SCRAM attribute {part!r}")
        out.setdefault(key, value)
    return out


def _saslname(name: str) -> str:
    """RFC 5802 saslname: "=2C" is ',' and "=3D" is '='; any other '=' is malformed."""
    out, i = [], 0
    while i < len(name):
        if name[i] == "=":
            code = name[i + 1:i + 3]
            if code not in ("2C", "3D"):
                raise ValueError("malformed username escape")
            out.append("," if code == "2C" else "=")
            i += 3
        else:
            out.append(name[i])
            i += 1
    return "".join(out)


class SaslSession:
    """One connection's authentication: `handshake(mechanism)` then `step(token)` until `principal`
    is set. Every failure is a SaslFailed; the caller answers it and closes the connection."""

    def __init__(self, lookup: Lookup, nonce: Callable[[], str] | None = None) -> None:
        self.lookup = lookup
        self.mechanism: str | None = None
        self.principal: str | None = None    # "User:NAME" once authenticated
        self._nonce = nonce or (lambda: secrets.token_urlsafe(24))
        self._scram: dict[str, Any] | None = None   # the SCRAM exchange between its two steps

    @property
    def authenticated(self) -> bool:
        return self.principal is not None

    def handshake(self, mechanism: str) -> int:
        """SaslHandshake: NONE, or UNSUPPORTED_SASL_MECHANISM / ILLEGAL_SASL_STATE."""
        if self.mechanism is not None:
            return ILLEGAL_SASL_STATE
        if mechanism not in MECHANISMS:
            return UNSUPPORTED_SASL_MECHANISM
        self.mechanism = mechanism
        return NONE

    def step(self, token: bytes) -> bytes:
        """One client token -> the server's answer token; SaslFailed on bad credentials or input."""
        if self.mechanism is None or self.authenticated:
            raise SaslFailed(ILLEGAL_SASL_STATE, "SaslAuthenticate before SaslHandshake or after authentication")
        try:
            if self.mechanism == "PLAIN":
                return self._plain(token)
            return self._scram_step(token)
        except (ValueError, KeyError, TypeError) as e:   # malformed input (UnicodeDecodeError is a ValueError)
            raise SaslFailed(SASL_AUTHENTICATION_FAILED, f"Authentication failed: invalid {self.mechanism} "
                                                         f"message ({e})") from None

    # ---- PLAIN (RFC 4616): authzid NUL authcid NUL passwd
    def _plain(self, token: bytes) -> bytes:
        parts = bytes(token).decode("utf-8").split("\0")
        if len(parts) != 3:
            raise ValueError("expected authzid, username and password separated by NUL")
        authzid, user, password = parts
        if not user or not password:
            raise ValueError("empty username or password")
        if authzid and authzid != user:
            raise SaslFailed(SASL_AUTHENTICATION_FAILED, "Authentication failed: Client requested an authorization "
                                                         "id that is different from username")
        for mech_id, digest in SCRAM.values():
            cred = self.lookup(user, mech_id)
            if cred is None:
                continue
            salted = hashlib.pbkdf2_hmac(digest, password.encode("utf-8"), bytes.fromhex(cred["salt"]),
                                         int(cred["iterations"]))
            if hmac.compare_digest(_stored_key(digest, salted), bytes.fromhex(cred["stored_key"])):
                self.principal = f"User:{user}"
                return b""
            break   # one credential decides: a wrong password is wrong whatever else is stored
        raise SaslFailed(SASL_AUTHENTICATION_FAILED, "Authentication failed: Invalid username or password")

    # ---- SCRAM: client-first -> server-first, client-final -> server-final
    def _scram_step(self, token: bytes) -> bytes:
        mech_id, digest = SCRAM[self.mechanism]   # type: ignore[index]
        text = bytes(token).decode("utf-8")
        if self._scram is None:
            cbind, _, rest = text.partition(",")
            authzid, _, bare = rest.partition(",")
            if cbind not in ("n", "y"):
                raise ValueError("channel binding is not supported")
            attrs = _attributes(bare)
            user = _saslname(attrs["n"])
            if authzid and _saslname(authzid.removeprefix("a=")) != user:
                raise SaslFailed(SASL_AUTHENTICATION_FAILED, "Authentication failed: Authorization id "
                                                             "does not match username")
            cred = self.lookup(user, mech_id)
            if cred is None:
                raise _failed(self.mechanism)
            nonce = attrs["r"] + self._nonce()
            server_first = (f"r={nonce},s={base64.b64encode(bytes.fromhex(cred['salt'])).decode()},"
                            f"i={int(cred['iterations'])}")
            self._scram = {"user": user, "cred": cred, "nonce": nonce, "gs2": f"{cbind},{authzid},",
                           "first": bare, "server_first": server_first}
            return server_first.encode()
        s = self._scram
        without_proof, _, proof_attr = text.rpartition(",")
        if not proof_attr.startswith("p="):
            raise ValueError("client-final message without a proof")
        attrs = _attributes(without_proof)
        # the nonce must end with ours; librdkafka before 2.6.1 puts its own nonce in front once more,
        # which Kafka accepts since 3.8.1 and Debian's kcat (librdkafka 2.0) still does
        if not attrs["r"].endswith(s["nonce"]):
            raise _failed(self.mechanism)
        if base64.b64decode(attrs["c"]) != s["gs2"].encode():
            raise ValueError("channel binding data does not match the first message")
        auth = f"{s['first']},{s['server_first']},{without_proof}".encode()
        stored = bytes.fromhex(s["cred"]["stored_key"])
        signature = hmac.new(stored, auth, digest).digest()
        proof = base64.b64decode(proof_attr[2:])
        if len(proof) != len(signature):
            raise _failed(self.mechanism)
        client_key = bytes(a ^ b for a, b in zip(proof, signature))
        if not hmac.compare_digest(hashlib.new(digest, client_key).digest(), stored):
            raise _failed(self.mechanism)
        self.principal = f"User:{s['user']}"
        self._scram = None
        server_signature = hmac.new(bytes.fromhex(s["cred"]["server_key"]), auth, digest).digest()
        return b"v=" + base64.b64encode(server_signature)
