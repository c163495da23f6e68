"""AddPartitionsToTxn (24), v0-v5: a transactional producer names the partitions it is about to
write (v0-v3, one transaction), or a partition leader adds or verifies partitions of several
transactions at once (v4+, KIP-890). Partitions of unknown topics fail the request as in Kafka:
those get UNKNOWN_TOPIC_OR_PARTITION and the others OPERATION_NOT_ATTEMPTED."""

from __future__ import annotations

import inspect

from sandbox.coordinator.acls import CLUSTER, CLUSTER_ACTION, CLUSTER_NAME, TOPIC, TRANSACTIONAL_ID, WRITE
from sandbox.protocol.errors import (
    CLUSTER_AUTHORIZATION_FAILED, NONE, OPERATION_NOT_ATTEMPTED, TOPIC_AUTHORIZATION_FAILED,
    TRANSACTIONAL_ID_AUTHORIZATION_FAILED, UNKNOWN_TOPIC_OR_PARTITION,
)

from ..internal_topics import OFFSETS_TOPIC, TXN_TOPIC
from ..transactions.machine import for_version

INTERNAL = (OFFSETS_TOPIC, TXN_TOPIC)

API_KEY = 24
MIN_VERSION = 0
MAX_VERSION = 5
FENCED_FROM = 2


def _topic_results(parts: list[tuple[str, int]], codes) -> list[dict]:
    by_topic: dict[str, list[dict]] = {}
    for t, p in parts:
        code = codes if isinstance(codes, int) else codes.get((t, p), NONE)
        by_topic.setdefault(t, []).append({"partition_index": p, "partition_error_code": code})
    return [{"name": t, "results_by_partition": rs} for t, rs in by_topic.items()]


def _one(ctx, tid: str, pid: int, epoch: int, topics, verify_only: bool):
    """One transaction's results, or a coroutine giving them when the coordinator must wait."""
    parts = [(t.name, int(p)) for t in topics for p in t.partitions]
    unknown = {k for k in parts if ctx.state.leader_of(*k) is None}
    txns = ctx.state.txns
    if unknown:
        codes: dict | int = {k: UNKNOWN_TOPIC_OR_PARTITION if k in unknown else OPERATION_NOT_ATTEMPTED for k in parts}
    elif verify_only:
        code, codes = txns.verify(tid, pid, epoch, parts)
        if code != NONE:
            codes = code
    else:
        codes = txns.add_partitions(tid, pid, epoch, parts)
        if inspect.isawaitable(codes):
            return _later(ctx, parts, codes)
    return _results(ctx, parts, codes)


async def _later(ctx, parts, codes) -> list[dict]:
    return _results(ctx, parts, await codes)


def _results(ctx, parts, codes) -> list[dict]:
    if isinstance(codes, int):
        codes = for_version(codes, ctx.api_version, FENCED_FROM)
    return _topic_results(parts, codes)


def handle(ctx, request):
    """v0-v3 (a producer) answered at once unless the coordinator must wait; v4+ (brokers)."""
    if ctx.api_version <= 3:
        # ACLs, and internal topics (no producer adds them itself: Kafka refuses them to everyone)
        if ctx.restricted or any(t.name in INTERNAL for t in request.v3_and_below_topics):
            refused = _refused(ctx, request)
            if refused is not None:
                return {"throttle_time": 0, "results_by_topic_v3_and_below": refused}
        results = _one(ctx, request.v3_and_below_transactional_id, request.v3_and_below_producer_id,
                       request.v3_and_below_producer_epoch, request.v3_and_below_topics, False)
        if inspect.isawaitable(results):
            return _v3_later(results)
        return {"throttle_time": 0, "results_by_topic_v3_and_below": results}
    if ctx.restricted and not ctx.allowed(CLUSTER_ACTION, CLUSTER, CLUSTER_NAME):   # brokers only
        return {"throttle_time": 0, "error_code": CLUSTER_AUTHORIZATION_FAILED, "results_by_transaction": []}
    return _batched(ctx, request)


def _refused(ctx, request) -> list[dict] | None:
    """ACLs, as Kafka checks them: WRITE on the transactional id (every partition refused), WRITE on
    each topic (internal topics never: refused TOPIC_AUTHORIZATION_FAILED, unknown partitions
    UNKNOWN_TOPIC_OR_PARTITION, the rest OPERATION_NOT_ATTEMPTED); None when all is allowed."""
    parts = [(t.name, int(p)) for t in request.v3_and_below_topics for p in t.partitions]
    if not ctx.allowed(WRITE, TRANSACTIONAL_ID, request.v3_and_below_transactional_id):
        return _topic_results(parts, TRANSACTIONAL_ID_AUTHORIZATION_FAILED)
    denied = {t for t, _p in parts if t in INTERNAL or not ctx.allowed(WRITE, TOPIC, t)}
    if not denied:
        return None
    return _topic_results(parts, {(t, p): TOPIC_AUTHORIZATION_FAILED if t in denied else
                                  UNKNOWN_TOPIC_OR_PARTITION if ctx.state.leader_of(t, p) is None else
                                  OPERATION_NOT_ATTEMPTED for t, p in parts})


async def _v3_later(results) -> dict:
    return {"throttle_time": 0, "results_by_topic_v3_and_below": await results}


async def _batched(ctx, request) -> dict:
    results = []
    for t in request.transactions:
        one = _one(ctx, t.transactional_id, t.producer_id, t.producer_epoch, t.topics, t.verify_only)
        results.append({"transactional_id": t.transactional_id,
                        "topic_results": await one if inspect.isawaitable(one) else one})
    return {"throttle_time": 0, "error_code": NONE, "results_by_transaction": results}
