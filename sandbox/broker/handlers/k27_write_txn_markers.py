"""WriteTxnMarkers (27), v1-v2: a transaction coordinator asks this broker, the leader of some of
a transaction's partitions, to write its commit or abort markers there (txn_markers.py). Answered
once every marker is in its partition's ISR, errors per partition."""

from __future__ import annotations

import asyncio

from sandbox.coordinator.acls import ALTER, CLUSTER, CLUSTER_ACTION, CLUSTER_NAME
from sandbox.protocol.errors import CLUSTER_AUTHORIZATION_FAILED

from ..txn_markers import write_markers

API_KEY = 27
MIN_VERSION = 1
MAX_VERSION = 2


async def _marker(state, m) -> dict:
    parts = [(t.name, int(p)) for t in m.topics for p in t.partition_indexes]
    codes = await write_markers(state, m.producer_id, m.producer_epoch, bool(m.transaction_result),
                                m.coordinator_epoch, parts)
    by_topic: dict[str, list[dict]] = {}
    for (topic, index), code in codes.items():
        by_topic.setdefault(topic, []).append({"partition_index": index, "error_code": code})
    return {"producer_id": m.producer_id,
            "topics": [{"name": n, "partitions": ps} for n, ps in by_topic.items()]}


async def handle(ctx, request) -> dict:
    # ACLs: brokers (CLUSTER_ACTION), or ALTER on the cluster (an admin's abortTransaction), as Kafka 4
    if ctx.restricted and not ctx.allowed(ALTER, CLUSTER, CLUSTER_NAME, report=False) and \
            not ctx.allowed(CLUSTER_ACTION, CLUSTER, CLUSTER_NAME):
        return {"markers": [{"producer_id": m.producer_id, "topics": [
            {"name": t.name, "partitions": [{"partition_index": int(p), "error_code": CLUSTER_AUTHORIZATION_FAILED}
                                            for p in t.partition_indexes]} for t in m.topics]} for m in request.markers]}
    return {"markers": list(await asyncio.gather(*(_marker(ctx.state, m) for m in request.markers)))}
