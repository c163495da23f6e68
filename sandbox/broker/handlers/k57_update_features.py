"""UpdateFeatures (57), v0-v2: finalized features live in the coordinator's metadata, so a
broker forwards the request to it (as a Kafka broker forwards to its controller); the embedded
coordinator is asked directly. See coordinator/features.py for what is accepted and refused."""

from __future__ import annotations

from sandbox.coordinator.acls import ALTER, CLUSTER, CLUSTER_NAME
from sandbox.protocol.errors import CLUSTER_AUTHORIZATION_FAILED as _CLUSTER_DENIED
from sandbox.coordinator import CoordinatorError
from sandbox.coordinator.features import update_response, wanted_of

from sandbox.protocol.errors import REQUEST_TIMED_OUT

API_KEY = 57
MIN_VERSION = 0
MAX_VERSION = 2


async def handle(ctx, request):
    if ctx.restricted and not ctx.allowed(ALTER, CLUSTER, CLUSTER_NAME):   # ACLs: ALTER on the cluster
        return {"throttle_time": 0, "error_code": _CLUSTER_DENIED, "error_message": None, "results": ()}
    coord = ctx.state.coordinator
    validate_only = getattr(request, "validate_only", False)
    forward = getattr(coord, "forward", None)
    try:
        if forward is not None:
            return await forward(request, catch_up=not validate_only)
        results = await coord.update_features(wanted_of(request, ctx.api_version), validate_only)
    except CoordinatorError as e:
        code = e.error_code if forward is None else REQUEST_TIMED_OUT
        return {"throttle_time": 0, "error_code": code, "error_message": e.message, "results": ()}
    return update_response(results, ctx.api_version)
