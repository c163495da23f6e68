"""ApiVersions (18), v0-v4: the supported ranges, derived from the handler registry.

A request at a version we lack gets the v0 body with UNSUPPORTED_VERSION and the full list,
so librdkafka and the Java client retry at a version we speak.
"""

from __future__ import annotations

from sandbox.protocol import build, encode_response, response_class
from sandbox.protocol.errors import NONE, UNSUPPORTED_VERSION

API_KEY = 18
MIN_VERSION = 0
MAX_VERSION = 4


def _api_keys() -> list[dict]:
    from . import supported_versions

    return [{"api_key": k, "min_version": lo, "max_version": hi}
            for k, lo, hi in supported_versions()]


def handle(ctx, request) -> dict:
    return {"error_code": NONE, "api_keys": _api_keys(), "throttle_time": 0}


def unsupported_version_response(correlation_id: int) -> bytes:
    body = build(response_class(API_KEY, 0),
                 {"error_code": UNSUPPORTED_VERSION, "api_keys": _api_keys()})
    return encode_response(correlation_id, body)
