"""DescribeAcls (29), v1-v3: this broker has no authorizer, so it answers SECURITY_DISABLED, as
Apache Kafka does when `authorizer.class.name` is not set."""

from __future__ import annotations

from sandbox.protocol.errors import SECURITY_DISABLED

API_KEY = 29
MIN_VERSION = 1
MAX_VERSION = 3
NO_AUTHORIZER = "No Authorizer is configured on the broker"


def handle(ctx, request) -> dict:
    return {"throttle_time": 0, "error_code": SECURITY_DISABLED, "error_message": NO_AUTHORIZER,
            "resources": ()}
