"""CreateAcls (30), v1-v3: no authorizer, so every creation gets SECURITY_DISABLED (Kafka's answer
without `authorizer.class.name`)."""

from __future__ import annotations

from sandbox.protocol.errors import SECURITY_DISABLED

API_KEY = 30
MIN_VERSION = 1
MAX_VERSION = 3
NO_AUTHORIZER = "No Authorizer is configured."


def handle(ctx, request) -> dict:
    return {"throttle_time": 0, "results": [
        {"error_code": SECURITY_DISABLED, "error_message": NO_AUTHORIZER} for _ in request.creations]}
