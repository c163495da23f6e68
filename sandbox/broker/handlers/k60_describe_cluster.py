"""DescribeCluster (60), v0-v2: cluster id, controller and brokers (what AdminClient asks), the
brokers with their addresses on the listener the request came in through; fenced brokers too
when a v2 request asks for them."""

from __future__ import annotations

from sandbox.protocol.errors import NONE
from .common import broker_list

API_KEY = 60
MIN_VERSION = 0
MAX_VERSION = 2


def handle(ctx, request) -> dict:
    return {"throttle_time": 0, "error_code": NONE, "error_message": None, "endpoint_type": 1,
            "cluster_id": ctx.state.coordinator.cluster_id, "controller_id": ctx.state.node_id,
            "brokers": broker_list(ctx.state, ctx.listener,
                                  include_fenced=getattr(request, "include_fenced_brokers", False)), "cluster_authorized_operations": -2147483648}
