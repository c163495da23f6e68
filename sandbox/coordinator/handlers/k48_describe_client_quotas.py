"""DescribeClientQuotas (48), v0-v1: the client quotas in the metadata, with Kafka's filter
(match types exact / default / any, strict). Quotas are stored and described, never enforced."""

from __future__ import annotations

from ..quotas import describe_response

API_KEY = 48
MIN_VERSION = 0
MAX_VERSION = 1


def handle(ctx, request) -> dict:
    return describe_response(ctx.coordinator.client_quotas(), request)
