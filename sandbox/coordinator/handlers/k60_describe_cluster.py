"""DescribeCluster (60), v0-v2: cluster id, no controller among the brokers (-1), and the
brokers (fenced ones too when v2 asks for them)."""

from __future__ import annotations

from sandbox.protocol.errors import NONE, UNKNOWN_AUTHORIZED_OPERATIONS
from .common import NO_CONTROLLER, broker_list

API_KEY = 60
MIN_VERSION = 0
MAX_VERSION = 2


def handle(ctx, request) -> dict:
    include_fenced = bool(getattr(request, "include_fenced_brokers", False))
    return {"throttle_time": 0, "error_code": NONE, "error_message": None, "endpoint_type": 1,
            "cluster_id": ctx.coordinator.cluster_id, "controller_id": NO_CONTROLLER,
            "brokers": broker_list(ctx.coordinator, include_fenced),
            "cluster_authorized_operations": UNKNOWN_AUTHORIZED_OPERATIONS}
