"""The SASL gate of a broker connection (server.Connection): on a SASL_PLAINTEXT listener nothing
but ApiVersions and the SASL exchange is answered until the client has logged in, in the order
Kafka's SaslServerAuthenticator keeps; the exchange itself is broker/sasl.py's SaslSession."""

from __future__ import annotations

import asyncio
import logging

from sandbox.protocol import DecodeError, peek_header
from sandbox.protocol.codec import API_VERSIONS_KEY

from .handlers import REGISTRY
from .sasl import SaslFailed, SaslSession, report_refused

log = logging.getLogger("sandbox.broker")

SASL_HANDSHAKE_KEY, SASL_AUTHENTICATE_KEY = 17, 36


def frame_api_key(frame) -> int:
    """A request frame's API key, without decoding it (-1 for a frame too short to have one)."""
    return frame[0] << 8 | frame[1] if len(frame) >= 2 else -1


class SaslGate:
    """Mixed into Connection: `_dispatch(frame)` is the server's dispatch once logged in (or on a
    listener without SASL), the login exchange before."""

    def _init_sasl(self, server, listener: str) -> None:
        own = server.config.listener(listener)
        self.sasl = (SaslSession(lambda user, mechanism: server.state.coordinator.scram_credential(user, mechanism),
                                 enabled=server.config.sasl_enabled_mechanisms)
                     if own is not None and own.sasl else None)
        self.sasl_raw = False    # after a v0 SaslHandshake the tokens travel without Kafka headers
        self.sasl_versions_seen = False

    def _login_failed(self, reason: str) -> None:
        report_refused(self.listener, self.peer, self.sasl.mechanism if self.sasl is not None else None, reason)

    def _dispatch(self, frame):
        if self.sasl is None:
            return self.server._dispatch(frame, self.peer, self.listener)
        if self.sasl.principal is not None:
            return self.server._dispatch(frame, self.peer, self.listener, self.sasl.principal)
        return self._authenticate(frame)

    def _authenticate(self, frame):
        """A request before authentication: ApiVersions as usual; SaslHandshake and SaslAuthenticate
        (or a raw token after a v0 handshake) answered here; anything else closes the connection,
        as Kafka closes it. A failed authentication is answered, then the connection closed."""
        if self.sasl_raw:
            return self._raw_token(bytes(frame))
        api_key = frame_api_key(frame)
        handshaken = self.sasl.mechanism is not None
        # Kafka's order (SaslServerAuthenticator): ApiVersions at most once, before the handshake;
        # one SaslHandshake; then SaslAuthenticate only; anything else closes the connection
        if api_key == API_VERSIONS_KEY and not handshaken and not self.sasl_versions_seen:
            try:   # a version it cannot answer gets UNSUPPORTED_VERSION, and the client may ask again lower
                h = REGISTRY[API_VERSIONS_KEY]
                self.sasl_versions_seen = h.min_version <= peek_header(frame)[1] <= h.max_version
            except DecodeError:
                return False
            return self.server._dispatch(frame, self.peer, self.listener)
        if api_key not in (SASL_HANDSHAKE_KEY, SASL_AUTHENTICATE_KEY):
            self._login_failed(f"a request (api key {api_key}) came before logging in: set the client's "
                               f"security.protocol=SASL_PLAINTEXT and sasl.mechanism, or use the plain bootstrap address"
                               if api_key != API_VERSIONS_KEY else "ApiVersions after the SASL handshake, or twice")
            return False
        if (api_key == SASL_HANDSHAKE_KEY) == handshaken:
            self._login_failed("SaslHandshake and SaslAuthenticate out of order")
            return False
        handler = REGISTRY[api_key]
        try:
            _, version, correlation_id = peek_header(frame)
            if not handler.min_version <= version <= handler.max_version:
                raise DecodeError(f"unsupported version {version}")
            _, request = handler.decode(frame)
        except DecodeError as e:
            log.warning("closing connection from %s: bad %s request: %s", self.peer, handler.name, e)
            return False
        if api_key == SASL_HANDSHAKE_KEY:
            code = self.sasl.handshake(request.mechanism)
            enabled = self.sasl.enabled
            reply = handler.encode(correlation_id, version, {"error_code": code, "mechanisms": enabled})
            if code:   # answered, then closed (the client reads the mechanisms offered)
                self._login_failed(f"mechanism {request.mechanism!r} is not offered (sasl.enabled.mechanisms): "
                                   f"use one of {', '.join(enabled)}")
                self._send(reply)
                return False
            self.sasl_raw = version == 0
            return reply
        return self._sasl_authenticate(handler, version, correlation_id, bytes(request.auth_bytes))

    async def _step(self, token: bytes) -> bytes:
        # PLAIN salts and hashes the password (PBKDF2, thousands of rounds): not on the event loop
        if self.sasl.mechanism == "PLAIN":
            return await asyncio.to_thread(self.sasl.step, token)
        return self.sasl.step(token)

    async def _sasl_authenticate(self, handler, version: int, correlation_id: int, token: bytes):
        try:
            answer = await self._step(token)
        except SaslFailed as e:
            self._login_failed(e.reason)
            self._send(handler.encode(correlation_id, version, {
                "error_code": e.error_code, "error_message": e.message, "auth_bytes": b"", "session_lifetime": 0}))
            return False
        if self.sasl.principal is not None:
            log.info("%s authenticated as %s (%s)", self.peer, self.sasl.principal, self.sasl.mechanism)
        return handler.encode(correlation_id, version, {"error_code": 0, "error_message": None, "auth_bytes": answer,
                                                        "session_lifetime": 0})

    async def _raw_token(self, token: bytes):
        try:
            answer = await self._step(token)
        except SaslFailed as e:
            self._login_failed(e.reason)
            return False
        return len(answer).to_bytes(4, "big") + answer
