"""DescribeCluster (60), v0-v2: cluster id, the controller (a broker answers itself in combined
mode and with a separate coordinator; the coordinator answers -1) and the brokers, with a broker's
addresses on the listener the request came in through; fenced brokers too when v2 asks."""

from __future__ import annotations

from .access import cluster_operations
from sandbox.protocol.errors import NONE, UNKNOWN_AUTHORIZED_OPERATIONS

API_KEY = 60
MIN_VERSION = 0
MAX_VERSION = 2


def handle(ctx, request) -> dict:
    admin = ctx.admin
    include_fenced = bool(getattr(request, "include_fenced_brokers", False))
    return {"throttle_time": 0, "error_code": NONE, "error_message": None, "endpoint_type": 1,
            "cluster_id": admin.coordinator.public_cluster_id, "controller_id": admin.controller_id,
            "brokers": admin.broker_list(include_fenced),
            "cluster_authorized_operations": cluster_operations(ctx)
            if getattr(request, "include_cluster_authorized_operations", False) else UNKNOWN_AUTHORIZED_OPERATIONS}
