"""SaslHandshake (17), v0-v1. On a SASL_PLAINTEXT listener the connection answers it itself before
authentication (server.Connection, broker/sasl.py); a request that reaches this handler came on a
PLAINTEXT listener or after authentication, and Kafka answers those ILLEGAL_SASL_STATE."""

from __future__ import annotations

from sandbox.broker.config import SASL_LISTENER
from sandbox.broker.sasl import ON_PLAIN_LISTENER, report_refused
from sandbox.protocol.errors import ILLEGAL_SASL_STATE

API_KEY = 17
MIN_VERSION = 0
MAX_VERSION = 1


def handle(ctx, request) -> dict:
    if ctx.listener != SASL_LISTENER:   # the most common mix-up: a SASL client given the plain address
        report_refused(ctx.listener, ctx.peer, None, ON_PLAIN_LISTENER)
    return {"error_code": ILLEGAL_SASL_STATE, "mechanisms": ctx.state.config.sasl_enabled_mechanisms}
