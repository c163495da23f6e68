"""DescribeClientQuotas (48), v0-v1: answered from this broker's copy of the metadata, as a
Kafka broker answers from its metadata cache, with Kafka's filter (match types exact / default /
any, strict). Quotas are stored and described, never enforced."""

from __future__ import annotations

from sandbox.coordinator.acls import CLUSTER, CLUSTER_NAME, DESCRIBE_CONFIGS
from sandbox.protocol.errors import CLUSTER_AUTHORIZATION_FAILED as _CLUSTER_DENIED
from sandbox.coordinator.quotas import describe_response

API_KEY = 48
MIN_VERSION = 0
MAX_VERSION = 1


def handle(ctx, request) -> dict:
    if ctx.restricted and not ctx.allowed(DESCRIBE_CONFIGS, CLUSTER, CLUSTER_NAME):   # ACLs
        return {"throttle_time": 0, "error_code": _CLUSTER_DENIED, "error_message": None, "entries": None}
    return describe_response(ctx.state.coordinator.client_quotas(), request)
