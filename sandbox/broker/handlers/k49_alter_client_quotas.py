"""AlterClientQuotas (49), v0-v1: the coordinator stores client quotas in its metadata journal,
so a broker forwards the request to it (as a Kafka broker forwards to its controller) and answers
once its copy of the metadata shows the change; the embedded coordinator is asked directly. A
coordinator that cannot be reached gives REQUEST_TIMED_OUT for every entry."""

from __future__ import annotations

from sandbox.coordinator.acls import ALTER_CONFIGS, CLUSTER, CLUSTER_NAME
from sandbox.protocol.errors import CLUSTER_AUTHORIZATION_FAILED as _CLUSTER_DENIED
from sandbox.coordinator import CoordinatorError
from sandbox.coordinator.quotas import alter_response, entries_of

from sandbox.protocol.errors import REQUEST_TIMED_OUT

API_KEY = 49
MIN_VERSION = 0
MAX_VERSION = 1


async def handle(ctx, request):
    if ctx.restricted and not ctx.allowed(ALTER_CONFIGS, CLUSTER, CLUSTER_NAME):   # ACLs
        return alter_response(request, [(_CLUSTER_DENIED, None)] * len(request.entries))
    coord = ctx.state.coordinator
    forward = getattr(coord, "forward", None)
    try:
        if forward is not None:
            return await forward(request, catch_up=not request.validate_only)
        results = await coord.alter_client_quotas(entries_of(request), request.validate_only)
    except CoordinatorError as e:
        code = e.error_code if forward is None else REQUEST_TIMED_OUT
        results = [(code, e.message)] * len(request.entries)
    return alter_response(request, results)
