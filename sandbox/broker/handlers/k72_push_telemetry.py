"""PushTelemetry (72), v0: not advertised, like GetTelemetrySubscriptions. With no receiver the
metrics go nowhere; a push is checked as Kafka checks it (an instance id, the subscription id it
was given, a known compression, at most telemetry.max.bytes) and otherwise accepted."""

from __future__ import annotations

from sandbox.protocol.errors import (
    INVALID_REQUEST, NONE, TELEMETRY_TOO_LARGE, UNKNOWN_SUBSCRIPTION_ID, UNSUPPORTED_COMPRESSION_TYPE,
)
from .telemetry import TELEMETRY_MAX_BYTES, subscription_id

API_KEY = 72
MIN_VERSION = 0
MAX_VERSION = 0
ADVERTISED = False


def handle(ctx, request) -> dict:
    client = request.client_instance_id
    if client is None or client.int == 0:
        code = INVALID_REQUEST
    elif request.subscription_id != subscription_id(client):
        code = UNKNOWN_SUBSCRIPTION_ID
    elif request.compression_type not in range(0, 5):
        code = UNSUPPORTED_COMPRESSION_TYPE
    elif request.metrics is not None and len(request.metrics) > TELEMETRY_MAX_BYTES:
        code = TELEMETRY_TOO_LARGE
    else:
        code = NONE
    return {"throttle_time": 0, "error_code": code}
