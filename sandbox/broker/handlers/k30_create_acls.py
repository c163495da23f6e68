"""CreateAcls (30), v1-v3: ACLs live in the coordinator's metadata journal (coordinator/acls.py),
so a broker forwards the request to it, as a Kafka broker forwards it to its controller, and
answers once its copy of the metadata shows the change; the embedded coordinator is asked
directly. Needs ALTER on the cluster. Without an authorizer every creation gets SECURITY_DISABLED
(Kafka's answer without `authorizer.class.name`). A coordinator that cannot be reached gives
REQUEST_TIMED_OUT for every creation."""

from __future__ import annotations

from sandbox.coordinator import CoordinatorError
from sandbox.coordinator.acls import ALTER, CLUSTER, CLUSTER_NAME, bindings_of, create_response
from sandbox.protocol.errors import CLUSTER_AUTHORIZATION_FAILED, REQUEST_TIMED_OUT, SECURITY_DISABLED

API_KEY = 30
MIN_VERSION = 1
MAX_VERSION = 3
NO_AUTHORIZER = "No Authorizer is configured."


async def handle(ctx, request) -> dict:
    count = len(request.creations)
    if not ctx.state.access.enabled:
        return create_response([(SECURITY_DISABLED, NO_AUTHORIZER)] * count)
    if not ctx.allowed(ALTER, CLUSTER, CLUSTER_NAME):
        return create_response([(CLUSTER_AUTHORIZATION_FAILED, None)] * count)
    coord = ctx.state.coordinator
    forward = getattr(coord, "forward", None)
    try:
        if forward is not None:
            return await forward(request, catch_up=True)
        return create_response(await coord.create_acls(bindings_of(request)))
    except CoordinatorError as e:
        code = e.error_code if forward is None else REQUEST_TIMED_OUT
        return create_response([(code, e.message)] * count)
