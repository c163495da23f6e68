"""A write the coordinator's metadata journal keeps (ACLs, SCRAM credentials, client quotas,
feature levels): checked against the ACLs here, then forwarded to the coordinator as a Kafka
broker forwards it to its controller, answered once this broker's copy of the metadata shows the
change; the embedded coordinator is asked directly. A coordinator that cannot be reached gives
REQUEST_TIMED_OUT; one that refuses gives its error."""

from __future__ import annotations

from typing import Any, Awaitable, Callable

from sandbox.coordinator import CoordinatorError
from sandbox.coordinator.acls import CLUSTER, CLUSTER_NAME
from sandbox.protocol.errors import CLUSTER_AUTHORIZATION_FAILED, REQUEST_TIMED_OUT


async def to_coordinator(ctx, request, operation: int, local: Callable[[Any], Awaitable[Any]],
                         answer: Callable[[Any], dict], refusal: Callable[[int, str | None], dict],
                         catch_up: bool = True) -> Any:
    """The response: refusal(code, message) when the principal may not do `operation` on the
    cluster or the coordinator refuses; the coordinator's own (forwarded); or answer(results) of
    local(the embedded coordinator)."""
    if ctx.restricted and not ctx.allowed(operation, CLUSTER, CLUSTER_NAME):
        return refusal(CLUSTER_AUTHORIZATION_FAILED, None)
    coord = ctx.state.coordinator
    forward = getattr(coord, "forward", None)
    try:
        if forward is not None:
            return await forward(request, catch_up=catch_up)
        results = await local(coord)
    except CoordinatorError as e:
        return refusal(e.error_code if forward is None else REQUEST_TIMED_OUT, e.message)
    return answer(results)
