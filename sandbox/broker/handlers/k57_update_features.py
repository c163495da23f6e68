"""UpdateFeatures (57), v0-v2: finalized features live in the coordinator's metadata, so the request
is forwarded there (broker/forward.py); it needs ALTER on the cluster. See coordinator/features.py
for what is accepted and refused."""

from __future__ import annotations

from sandbox.coordinator.acls import ALTER
from sandbox.coordinator.features import update_response, wanted_of

from ..forward import to_coordinator

API_KEY = 57
MIN_VERSION = 0
MAX_VERSION = 2


async def handle(ctx, request):
    validate_only = getattr(request, "validate_only", False)
    return await to_coordinator(
        ctx, request, ALTER, lambda coord: coord.update_features(wanted_of(request, ctx.api_version), validate_only),
        lambda results: update_response(results, ctx.api_version),
        lambda code, message: {"throttle_time": 0, "error_code": code, "error_message": message, "results": ()},
        catch_up=not validate_only)
