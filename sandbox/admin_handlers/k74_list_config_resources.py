"""ListConfigResources (74; KIP-1142), v0-v1: v0 (ListClientMetricsResources) lists client
metrics resources, of which there are none (telemetry subscriptions are not kept); v1 lists the
resources of the types asked (none asked: every type): every topic, every broker (BROKER and
BROKER_LOGGER), and the groups that have group configs set, as Kafka 4.1 lists them."""

from __future__ import annotations

from sandbox.coordinator.acls import DESCRIBE_CONFIGS

from .access import cluster_refusal
from sandbox.protocol.errors import NONE, UNSUPPORTED_VERSION

API_KEY = 74
MIN_VERSION = 0
MAX_VERSION = 1

TOPIC, BROKER, BROKER_LOGGER, CLIENT_METRICS, GROUP = 2, 4, 8, 16, 32
KNOWN = (TOPIC, BROKER, BROKER_LOGGER, CLIENT_METRICS, GROUP)


def handle(ctx, request) -> dict:
    if (refused := cluster_refusal(ctx, DESCRIBE_CONFIGS)) != NONE:   # ACLs: DESCRIBE_CONFIGS on the cluster
        return {"throttle_time": 0, "error_code": refused, "config_resources": []}
    if ctx.api_version == 0:
        return {"throttle_time": 0, "error_code": NONE, "config_resources": []}
    asked = [int(t) for t in request.resource_types or ()]
    unknown = sorted(set(asked) - set(KNOWN))
    if unknown:   # as Kafka's handleListConfigResources answers a type it does not list
        return {"throttle_time": 0, "error_code": UNSUPPORTED_VERSION, "config_resources": []}
    wanted = set(asked) or set(KNOWN)
    coord = ctx.admin.coordinator
    out: list[dict] = []   # in Kafka's order: groups, (client metrics: none), broker loggers, brokers, topics
    if GROUP in wanted:
        out += [{"resource_name": g, "resource_type": GROUP} for g in coord.configured_groups()]
    for kind in (BROKER_LOGGER, BROKER):
        if kind in wanted:
            out += [{"resource_name": str(b.broker_id), "resource_type": kind}
                    for b in sorted(coord.brokers(), key=lambda b: b.broker_id)]
    if TOPIC in wanted:
        out += [{"resource_name": t.name, "resource_type": TOPIC} for t in sorted(coord.topics(), key=lambda t: t.name)]
    return {"throttle_time": 0, "error_code": NONE, "config_resources": out}
