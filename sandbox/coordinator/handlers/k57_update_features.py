"""UpdateFeatures (57), v0-v2, as a KRaft controller answers it: only levels this software
supports (metadata.version 7-25), no downgrade without a downgrade type, no metadata.version
downgrade at all; validate_only changes nothing. v2 reports the first refusal at the top level."""

from __future__ import annotations

from ..features import update_response, wanted_of
from ..model import CoordinatorError

API_KEY = 57
MIN_VERSION = 0
MAX_VERSION = 2


def handle(ctx, request) -> dict:
    wanted = wanted_of(request, ctx.api_version)
    try:
        results = ctx.coordinator.update_features(wanted, getattr(request, "validate_only", False))
    except CoordinatorError as e:   # the journal cannot be written
        return {"throttle_time": 0, "error_code": e.error_code, "error_message": e.message, "results": ()}
    return update_response(results, ctx.api_version)
