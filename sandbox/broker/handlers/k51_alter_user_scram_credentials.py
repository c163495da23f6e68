"""AlterUserScramCredentials (51), v0: SCRAM credentials live in the coordinator's metadata
journal (coordinator/scram.py), so a broker forwards the request to it, as a Kafka broker forwards
it to its controller, and answers once its copy of the metadata shows the change; the embedded
coordinator is asked directly. Kept as Kafka keeps them also without a SASL listener (this
sandbox has none: stored and described, nothing authenticates with them). A coordinator that
cannot be reached gives REQUEST_TIMED_OUT for every user."""

from __future__ import annotations

from sandbox.coordinator.acls import ALTER, CLUSTER, CLUSTER_NAME
from sandbox.protocol.errors import CLUSTER_AUTHORIZATION_FAILED as _CLUSTER_DENIED
from sandbox.coordinator import CoordinatorError
from sandbox.coordinator.scram import alter_response, changes_of
from sandbox.protocol.errors import REQUEST_TIMED_OUT

API_KEY = 51
MIN_VERSION = 0
MAX_VERSION = 0


async def handle(ctx, request):
    if ctx.restricted and not ctx.allowed(ALTER, CLUSTER, CLUSTER_NAME):   # ACLs: ALTER on the cluster
        users = dict.fromkeys([d.name for d in request.deletions] + [u.name for u in request.upsertions])
        return alter_response([(name, _CLUSTER_DENIED, None) for name in users])
    coord = ctx.state.coordinator
    forward = getattr(coord, "forward", None)
    try:
        if forward is not None:
            return await forward(request, catch_up=True)
        results = await coord.alter_scram_credentials(*changes_of(request))
    except CoordinatorError as e:
        code = e.error_code if forward is None else REQUEST_TIMED_OUT
        users = dict.fromkeys([d.name for d in request.deletions] + [u.name for u in request.upsertions])
        results = [(name, code, e.message) for name in users]
    return alter_response(results)
