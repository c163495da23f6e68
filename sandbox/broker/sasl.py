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
import logging
import secrets
from typing import Any, Callable, Mapping

from sandbox.coordinator.scram import keys_of
from sandbox.server_properties import SASL_MECHANISMS
from sandbox.protocol.errors import ILLEGAL_SASL_STATE, NONE, SASL_AUTHENTICATION_FAILED, UNSUPPORTED_SASL_MECHANISM

from .reporter import Reporter

MECHANISMS = SASL_MECHANISMS   # every mechanism offered; sasl.enabled.mechanisms may offer fewer
SCRAM = {"SCRAM-SHA-256": (1, "sha256"), "SCRAM-SHA-512": (2, "sha512")}   # name -> (KIP-554 id, digest)

# credential(user, mechanism id) -> {"iterations", "salt", "stored_key", "server_key"} (hex) or None
Lookup = Callable[[str, int], "Mapping[str, Any] | None"]


class SaslFailed(Exception):
    """The exchange failed: error code and the message Kafka gives the client (the connection is then
    closed), and `reason`, what went wrong in words for the sandbox's own log and status."""

    def __init__(self, error_code: int, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        self.error_code, self.message, self.reason = error_code, message, reason or message


def _failed(mechanism: str, reason: str) -> SaslFailed:
    # Kafka's words: the same for an unknown user and a wrong password (no user enumeration)
    return SaslFailed(SASL_AUTHENTICATION_FAILED, "Authentication failed during authentication due to invalid "
                                                  f"credentials with SASL mechanism {mechanism}", reason)


AUTHZID_DIFFERS = "Authentication failed: Client requested an authorization id that is different from username"


def no_credentials(user: str) -> str:
    return (f"user {user!r} has no SCRAM credentials (declare it in sandbox.toml's [sasl] users, or create "
            f"it with kafka-configs --entity-type users)")


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


LOGIN_REPORTS = Reporter()   # sasl-login-failed events: one per reason every 10 s
ON_PLAIN_LISTENER = ("a SASL client connected to a PLAINTEXT listener: give it the SASL_PLAINTEXT bootstrap "
                     "address (`sandbox status` shows it), or set security.protocol=PLAINTEXT")


def report_refused(listener: str, peer: str, mechanism: str | None, reason: str) -> None:
    """A refused login in the broker's log, and (once per reason every 10 s) as an EVENT the
    supervisor shows in `sandbox status`: why an application cannot connect, in words."""
    from .state import emit_event   # late: this module stays free of the broker's state for its tests

    logging.getLogger("sandbox.broker").info("SASL login from %s on listener %s refused (%s): %s", peer, listener,
                                             mechanism, reason)
    if LOGIN_REPORTS.due(reason):
        emit_event("sasl-login-failed", {"listener": listener, "peer": peer, "mechanism": mechanism, "reason": reason})


class SaslSession:
    """One connection's authentication: `handshake(mechanism)` then `step(token)` until `principal`
    is set. Every failure is a SaslFailed; the caller answers it and closes the connection."""

    def __init__(self, lookup: Lookup, nonce: Callable[[], str] | None = None,
                 enabled: tuple[str, ...] = MECHANISMS) -> None:
        self.lookup = lookup
        self.enabled = enabled   # sasl.enabled.mechanisms
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
        if mechanism not in self.enabled:
            return UNSUPPORTED_SASL_MECHANISM
        self.mechanism = mechanism
        return NONE

    def step(self, token: bytes) -> bytes:
        """One client token -> the server's answer token; SaslFailed on bad credentials or input,
        with the message Kafka gives the client and the sandbox's own reason."""
        if self.mechanism is None or self.authenticated:
            raise SaslFailed(ILLEGAL_SASL_STATE, "SaslAuthenticate before SaslHandshake or after authentication")
        if self.mechanism == "PLAIN":
            return self._plain(bytes(token))
        try:
            return self._scram_step(bytes(token).decode("utf-8"))
        except (ValueError, KeyError, IndexError) as e:   # malformed (UnicodeDecodeError is a ValueError)
            # Kafka answers a malformed SCRAM message with its generic words
            raise _failed(self.mechanism, f"a malformed {self.mechanism} message ({e})") from None

    # ---- PLAIN (RFC 4616): authzid NUL authcid NUL passwd, refused in Kafka's PlainSaslServer words
    def _plain(self, token: bytes) -> bytes:
        parts = token.decode("utf-8", errors="replace").split("\0")
        if len(parts) != 3:
            raise SaslFailed(SASL_AUTHENTICATION_FAILED,
                             f"Invalid SASL/PLAIN response: expected 3 tokens, got {len(parts)}",
                             "a malformed PLAIN message (not authzid, username and password separated by NUL)")
        authzid, user, password = parts
        if not user:
            raise SaslFailed(SASL_AUTHENTICATION_FAILED, "Authentication failed: username not specified")
        if not password:
            raise SaslFailed(SASL_AUTHENTICATION_FAILED, "Authentication failed: password not specified",
                             f"an empty password for user {user!r}")
        if authzid and authzid != user:
            raise SaslFailed(SASL_AUTHENTICATION_FAILED, AUTHZID_DIFFERS, f"user {user!r} asked to act as {authzid!r}")
        for mech_id, digest in SCRAM.values():
            cred = self.lookup(user, mech_id)
            if cred is None:
                continue
            salted = hashlib.pbkdf2_hmac(digest, password.encode("utf-8"), bytes.fromhex(cred["salt"]),
                                         int(cred["iterations"]))
            if hmac.compare_digest(keys_of(mech_id, salted)[0], bytes.fromhex(cred["stored_key"])):
                self.principal = f"User:{user}"
                return b""
            raise SaslFailed(SASL_AUTHENTICATION_FAILED, "Authentication failed: Invalid username or password",
                             f"wrong password for user {user!r}")   # one credential decides
        raise SaslFailed(SASL_AUTHENTICATION_FAILED, "Authentication failed: Invalid username or password",
                         no_credentials(user))

    # ---- SCRAM (RFC 5802), parsed as Kafka's ScramMessages parse it
    def _scram_step(self, text: str) -> bytes:
        mech_id, digest = SCRAM[self.mechanism]   # type: ignore[index]
        if self._scram is None:
            return self._scram_first(text, mech_id)
        s = self._scram
        # c=CHANNEL,r=NONCE[,extensions],p=PROOF
        parts = text.split(",")
        if len(parts) < 3 or not parts[0].startswith("c=") or not parts[1].startswith("r=") \
                or not parts[-1].startswith("p="):
            raise ValueError("not c=...,r=...,p=...")
        without_proof = ",".join(parts[:-1])
        if parts[1][2:] != s["nonce"]:
            # librdkafka before 2.6.1 puts its own nonce in front of the server's once more: Kafka 4
            # refuses that too (Kafka 3.8.1-3.9 accepted it), so the sandbox tells the developer
            reason = ("the client repeated its own nonce in SCRAM's last message, as librdkafka before 2.6.1 "
                      "does; Kafka 4 refuses this too: upgrade the client, or log in with PLAIN"
                      if parts[1][2:].endswith(s["nonce"]) else "the SCRAM nonce does not match the server's")
            raise _failed(self.mechanism, reason)
        if base64.b64decode(parts[0][2:], validate=True) != s["gs2"].encode():
            raise ValueError("its channel binding data differs from the first message's header")
        auth = f"{s['first']},{s['server_first']},{without_proof}".encode()
        stored = bytes.fromhex(s["cred"]["stored_key"])
        signature = hmac.new(stored, auth, digest).digest()
        proof = base64.b64decode(parts[-1][2:], validate=True)
        client_key = bytes(a ^ b for a, b in zip(proof, signature))
        if len(proof) != len(signature) or not hmac.compare_digest(hashlib.new(digest, client_key).digest(), stored):
            raise _failed(self.mechanism, f"wrong password for user {s['user']!r}")
        self.principal = f"User:{s['user']}"
        self._scram = None
        server_signature = hmac.new(bytes.fromhex(s["cred"]["server_key"]), auth, digest).digest()
        return b"v=" + base64.b64encode(server_signature)

    def _scram_first(self, text: str, mech_id: int) -> bytes:
        # n,[a=AUTHZID],n=USER,r=NONCE[,extensions]: channel binding is not offered ("y" and "p" are
        # refused, as Kafka refuses them), nor a mandatory extension ("m="); other extensions are
        # ignored, as Kafka ignores those it does not support, except tokenauth (delegation tokens)
        parts = text.split(",")
        if len(parts) < 4 or parts[0] != "n" or not parts[2].startswith("n=") or not parts[3].startswith("r="):
            raise ValueError("not n,[a=AUTHZID],n=USER,r=NONCE")
        if parts[1] and not parts[1].startswith("a="):
            raise ValueError("an authorization id without a=")
        user, nonce = _saslname(parts[2][2:]), parts[3][2:]
        if not user or not nonce or any(not 0x21 <= ord(ch) <= 0x7e or ch == "," for ch in nonce):
            raise ValueError("an empty user name or an empty or unprintable nonce")
        extensions = dict(e.partition("=")[::2] for e in parts[4:])
        if extensions.get("tokenauth", "false").lower() == "true":
            raise _failed(self.mechanism, "a delegation token login (tokenauth): delegation tokens are not offered")
        if parts[1] and _saslname(parts[1][2:]) != user:
            raise SaslFailed(SASL_AUTHENTICATION_FAILED, AUTHZID_DIFFERS, f"user {user!r} asked to act as {parts[1][2:]!r}")
        cred = self.lookup(user, mech_id)
        if cred is None:
            raise _failed(self.mechanism, no_credentials(user) if self.lookup(user, 3 - mech_id) is None else
                          f"user {user!r} has no {self.mechanism} credential (only the other SCRAM one)")
        full_nonce = nonce + self._nonce()
        server_first = (f"r={full_nonce},s={base64.b64encode(bytes.fromhex(cred['salt'])).decode()},"
                        f"i={int(cred['iterations'])}")
        self._scram = {"user": user, "cred": cred, "nonce": full_nonce, "gs2": f"n,{parts[1]},",
                       "first": ",".join(parts[2:]), "server_first": server_first}
        return server_first.encode()
