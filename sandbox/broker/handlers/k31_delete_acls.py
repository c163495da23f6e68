"""DeleteAcls (31), v1-v3: forwarded to the coordinator, whose journal holds the ACLs, as CreateAcls
is (broker/forward.py); needs ALTER on the cluster. Without an authorizer every filter gets
SECURITY_DISABLED and matches nothing (Kafka's answer without `authorizer.class.name`)."""

from __future__ import annotations

from sandbox.coordinator.acls import ALTER, delete_response, filters_of
from sandbox.protocol.errors import SECURITY_DISABLED

from ..forward import to_coordinator

API_KEY = 31
MIN_VERSION = 1
MAX_VERSION = 3
NO_AUTHORIZER = "No Authorizer is configured."


async def handle(ctx, request) -> dict:
    count = len(request.filters)
    if not ctx.state.access.enabled:
        return delete_response([(SECURITY_DISABLED, NO_AUTHORIZER, [])] * count)
    return await to_coordinator(ctx, request, ALTER, lambda coord: coord.delete_acls(filters_of(request)),
                                delete_response, lambda code, message: delete_response([(code, message, [])] * count))
