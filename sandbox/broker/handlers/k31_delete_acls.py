"""DeleteAcls (31), v1-v3: forwarded to the coordinator, whose journal holds the ACLs, as
CreateAcls is (see k30); needs ALTER on the cluster. Without an authorizer every filter gets
SECURITY_DISABLED and matches nothing (Kafka's answer without `authorizer.class.name`)."""

from __future__ import annotations

from sandbox.coordinator import CoordinatorError
from sandbox.coordinator.acls import ALTER, CLUSTER, CLUSTER_NAME, delete_response, filters_of
from sandbox.protocol.errors import CLUSTER_AUTHORIZATION_FAILED, REQUEST_TIMED_OUT, SECURITY_DISABLED

API_KEY = 31
MIN_VERSION = 1
MAX_VERSION = 3
NO_AUTHORIZER = "No Authorizer is configured."


async def handle(ctx, request) -> dict:
    count = len(request.filters)
    if not ctx.state.access.enabled:
        return delete_response([(SECURITY_DISABLED, NO_AUTHORIZER, [])] * count)
    if not ctx.allowed(ALTER, CLUSTER, CLUSTER_NAME):
        return delete_response([(CLUSTER_AUTHORIZATION_FAILED, None, [])] * count)
    coord = ctx.state.coordinator
    forward = getattr(coord, "forward", None)
    try:
        if forward is not None:
            return await forward(request, catch_up=True)
        return delete_response(await coord.delete_acls(filters_of(request)))
    except CoordinatorError as e:
        code = e.error_code if forward is None else REQUEST_TIMED_OUT
        return delete_response([(code, e.message, [])] * count)
