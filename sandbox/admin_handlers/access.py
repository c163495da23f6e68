"""The ACL checks of the admin APIs both services answer (on the coordinator's own port nothing is
checked: brokers check a client's request before they forward it). A context without
`restricted` (the coordinator's, a test's) is not checked."""

from __future__ import annotations

from sandbox.coordinator.acls import CLUSTER, CLUSTER_NAME, GROUP, TOPIC
from sandbox.coordinator.topic_configs import RESOURCE_GROUP, RESOURCE_TOPIC
from sandbox.protocol.errors import (
    CLUSTER_AUTHORIZATION_FAILED, GROUP_AUTHORIZATION_FAILED, NONE, TOPIC_AUTHORIZATION_FAILED,
)

UNKNOWN_AUTHORIZED_OPERATIONS = -2147483648


def config_refusal(ctx, resource_type: int, name: str, operation: int) -> int:
    """NONE, or the error for a config resource the principal may not DESCRIBE_CONFIGS or
    ALTER_CONFIGS (`operation`): a topic or group by its name, a broker through the cluster."""
    if not getattr(ctx, "restricted", False):
        return NONE
    if resource_type == RESOURCE_TOPIC:
        return NONE if ctx.allowed(operation, TOPIC, name) else TOPIC_AUTHORIZATION_FAILED
    if resource_type == RESOURCE_GROUP:
        return NONE if ctx.allowed(operation, GROUP, name) else GROUP_AUTHORIZATION_FAILED
    return NONE if ctx.allowed(operation, CLUSTER, CLUSTER_NAME) else CLUSTER_AUTHORIZATION_FAILED


def cluster_refusal(ctx, operation: int) -> int:
    """NONE, or CLUSTER_AUTHORIZATION_FAILED when the principal may not do `operation` on the cluster."""
    return NONE if not getattr(ctx, "restricted", False) or ctx.allowed(operation, CLUSTER, CLUSTER_NAME) else CLUSTER_AUTHORIZATION_FAILED


def topic_refused(ctx, operation: int, name: str) -> bool:
    return getattr(ctx, "restricted", False) and not ctx.allowed(operation, TOPIC, name)


def cluster_operations(ctx) -> int:
    """KIP-430 authorized operations on the cluster (the coordinator's own port: not known)."""
    operations = getattr(ctx, "operations", None)
    return operations(CLUSTER, CLUSTER_NAME) if operations is not None else UNKNOWN_AUTHORIZED_OPERATIONS
