"""DescribeQuorum (55), v0-v2, as a Kafka broker answers it: forwarded to the coordinator (the
controller), which describes itself as the quorum's only voter and leader. With the embedded
coordinator (combined mode) this broker is that voter and answers itself. A coordinator that
cannot be reached gives REQUEST_TIMED_OUT, as a forwarded request that times out in Kafka."""

from __future__ import annotations

from sandbox.coordinator.acls import CLUSTER, CLUSTER_NAME, DESCRIBE
from sandbox.protocol.errors import CLUSTER_AUTHORIZATION_FAILED as _CLUSTER_DENIED
import time

from sandbox.coordinator import CoordinatorError
from sandbox.coordinator.quorum import describe_quorum

from sandbox.protocol.errors import REQUEST_TIMED_OUT
from ..endpoints import self_endpoint

API_KEY = 55
MIN_VERSION = 0
MAX_VERSION = 2


async def handle(ctx, request):
    if ctx.restricted and not ctx.allowed(DESCRIBE, CLUSTER, CLUSTER_NAME):   # ACLs: DESCRIBE on the cluster
        return {"error_code": _CLUSTER_DENIED, "error_message": None, "topics": (), "nodes": ()}
    coord = ctx.state.coordinator
    forward = getattr(coord, "forward", None)
    if forward is None:
        own = self_endpoint(ctx.state, ctx.listener)
        return describe_quorum(request, voter_id=ctx.state.node_id, high_watermark=coord.metadata_offset,
                               endpoint=(ctx.listener, own["host"], own["port"]), observers=[],
                               now_ms=int(time.time() * 1000))
    try:
        return await forward(request)
    except CoordinatorError as e:
        return {"error_code": REQUEST_TIMED_OUT, "error_message": f"The controller did not answer: {e.message}",
                "topics": (), "nodes": ()}
