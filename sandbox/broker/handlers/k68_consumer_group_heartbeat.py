"""ConsumerGroupHeartbeat (68), v0-v1 (KIP-848): join, heartbeat and leave of consumer-protocol
groups in one request; the coordinator computes the target assignment (uniform or range) and hands
each member its partitions, revoking before reassigning. v1 members bring their own member id."""

from __future__ import annotations

from sandbox.coordinator.acls import DESCRIBE, GROUP, READ, TOPIC
from sandbox.protocol.errors import GROUP_AUTHORIZATION_FAILED, NONE, NOT_COORDINATOR, TOPIC_AUTHORIZATION_FAILED

API_KEY = 68
MIN_VERSION = 0
MAX_VERSION = 1


def _ms(td) -> int:
    return -1 if td is None else round(td.total_seconds() * 1000)


def _visible(ctx) -> frozenset[str]:
    """The topics this member may DESCRIBE: all its regex may match (Kafka filters regex matches so)."""
    return frozenset(t.name for t in ctx.state.coordinator.topics() if ctx.allowed(DESCRIBE, TOPIC, t.name, report=False))


def handle(ctx, request) -> dict:
    state = ctx.state
    if ctx.restricted:   # ACLs: READ on the group, DESCRIBE on every subscribed topic
        code = GROUP_AUTHORIZATION_FAILED if not ctx.allowed(READ, GROUP, request.group_id) else \
            TOPIC_AUTHORIZATION_FAILED if any(not ctx.allowed(DESCRIBE, TOPIC, t)
                                              for t in request.subscribed_topic_names or ()) else NONE
        if code != NONE:
            return {"throttle_time": 0, "error_code": code, "error_message": None, "member_id": None,
                    "member_epoch": 0, "heartbeat_interval": 0, "assignment": None}
    if not state.is_group_coordinator(request.group_id):
        return {"throttle_time": 0, "error_code": NOT_COORDINATOR, "error_message": None, "member_id": None,
                "member_epoch": 0, "heartbeat_interval": 0, "assignment": None}
    owned = request.topic_partitions
    res, ids = state.groups.consumer_heartbeat(
        request.group_id, request.member_id, request.member_epoch,
        topics=state.coordinator.topics(), group_configs=state.coordinator.group_configs(request.group_id),
        owned_by_id=None if owned is None else [(tp.topic_id, tp.partitions) for tp in owned],
        instance_id=request.instance_id, rack_id=request.rack_id,
        rebalance_timeout_ms=_ms(request.rebalance_timeout),
        topic_names=None if request.subscribed_topic_names is None else list(request.subscribed_topic_names),
        topic_regex=getattr(request, "subscribed_topic_regex", None), assignor=request.server_assignor,
        visible=_visible(ctx) if ctx.restricted else None,
        client_id=ctx.client_id or "", client_host=ctx.peer.rsplit(":", 1)[0], api_version=ctx.api_version)
    assignment = None
    if res.assignment is not None:
        assignment = {"topic_partitions": [{"topic_id": ids[t], "partitions": ps}
                                           for t, ps in res.assignment.items() if t in ids]}
    return {"throttle_time": 0, "error_code": res.error_code, "error_message": res.error_message,
            "member_id": res.member_id, "member_epoch": res.member_epoch,
            "heartbeat_interval": res.heartbeat_interval_ms, "assignment": assignment}
