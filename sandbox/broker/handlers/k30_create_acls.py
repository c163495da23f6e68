"""CreateAcls (30), v1-v3: ACLs live in the coordinator's metadata journal (coordinator/acls.py), so
the request is forwarded there (broker/forward.py); it needs ALTER on the cluster. Without an
authorizer every creation gets SECURITY_DISABLED (Kafka's answer without `authorizer.class.name`)."""

from __future__ import annotations

from sandbox.coordinator.acls import ALTER, bindings_of, create_response
from sandbox.protocol.errors import SECURITY_DISABLED

from ..forward import to_coordinator

API_KEY = 30
MIN_VERSION = 1
MAX_VERSION = 3
NO_AUTHORIZER = "No Authorizer is configured."


async def handle(ctx, request) -> dict:
    count = len(request.creations)
    if not ctx.state.access.enabled:
        return create_response([(SECURITY_DISABLED, NO_AUTHORIZER)] * count)
    return await to_coordinator(ctx, request, ALTER, lambda coord: coord.create_acls(bindings_of(request)),
                                create_response, lambda code, message: create_response([(code, message)] * count))
