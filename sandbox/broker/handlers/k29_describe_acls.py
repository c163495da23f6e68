"""DescribeAcls (29), v1-v3: the ACLs in this broker's copy of the cluster metadata that match the
filter (coordinator/acls.py), for a principal allowed DESCRIBE on the cluster. Without an
authorizer (`authorizer.class.name` empty) SECURITY_DISABLED, as Apache Kafka answers."""

from __future__ import annotations

from sandbox.coordinator.acls import CLUSTER, CLUSTER_NAME, DESCRIBE, describe_response, described, filter_of
from sandbox.protocol.errors import CLUSTER_AUTHORIZATION_FAILED, SECURITY_DISABLED

API_KEY = 29
MIN_VERSION = 1
MAX_VERSION = 3
NO_AUTHORIZER = "No Authorizer is configured on the broker"


def handle(ctx, request) -> dict:
    if not ctx.state.access.enabled:
        return describe_response(SECURITY_DISABLED, NO_AUTHORIZER, [])
    if not ctx.allowed(DESCRIBE, CLUSTER, CLUSTER_NAME):
        return describe_response(CLUSTER_AUTHORIZATION_FAILED, None, [])
    return describe_response(*described(ctx.state.coordinator.acls(), filter_of(request)))
