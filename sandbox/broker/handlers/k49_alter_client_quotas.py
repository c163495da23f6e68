"""AlterClientQuotas (49), v0-v1: the coordinator stores client quotas in its metadata journal, so
the request is forwarded there (broker/forward.py); it needs ALTER_CONFIGS on the cluster."""

from __future__ import annotations

from sandbox.coordinator.acls import ALTER_CONFIGS
from sandbox.coordinator.quotas import alter_response, entries_of

from ..forward import to_coordinator

API_KEY = 49
MIN_VERSION = 0
MAX_VERSION = 1


async def handle(ctx, request):
    return await to_coordinator(
        ctx, request, ALTER_CONFIGS, lambda coord: coord.alter_client_quotas(entries_of(request), request.validate_only),
        lambda results: alter_response(request, results),
        lambda code, message: alter_response(request, [(code, message)] * len(request.entries)),
        catch_up=not request.validate_only)
