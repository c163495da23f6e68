"""SaslAuthenticate (36), v0-v2. Answered by the connection itself during a SASL_PLAINTEXT
listener's authentication (server.Connection, broker/sasl.py); here, on a PLAINTEXT listener or
after authentication (no re-authentication: connections.max.reauth.ms is 0, as Kafka's default),
ILLEGAL_SASL_STATE, as Kafka answers it."""

from __future__ import annotations

from sandbox.broker.config import SASL_LISTENER
from sandbox.broker.sasl import ON_PLAIN_LISTENER, report_refused
from sandbox.protocol.errors import ILLEGAL_SASL_STATE

API_KEY = 36
MIN_VERSION = 0
MAX_VERSION = 2


def handle(ctx, request) -> dict:
    if ctx.listener == SASL_LISTENER:
        message = "SaslAuthenticate request received after successful authentication"
    else:
        message = "Unexpected SaslAuthenticate request: this listener does not use SASL"
        report_refused(ctx.listener, ctx.peer, None, ON_PLAIN_LISTENER)
    return {"error_code": ILLEGAL_SASL_STATE, "error_message": message, "auth_bytes": b"", "session_lifetime": 0}
