"""AddPartitionsToTxn (24), v0-v5: a transactional producer names the partitions it is about to
write (v0-v3, one transaction), or a partition leader adds or verifies partitions of several
transactions at once (v4+, KIP-890). Partitions of unknown topics fail the request as in Kafka:
those get UNKNOWN_TOPIC_OR_PARTITION and the others OPERATION_NOT_ATTEMPTED."""

from __future__ import annotations

import inspect

from sandbox.protocol.errors import NONE, OPERATION_NOT_ATTEMPTED, UNKNOWN_TOPIC_OR_PARTITION

from ..transactions.machine import for_version

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
        results = _one(ctx, request.v3_and_below_transactional_id, request.v3_and_below_producer_id,
                       request.v3_and_below_producer_epoch, request.v3_and_below_topics, False)
        if inspect.isawaitable(results):
            return _v3_later(results)
        return {"throttle_time": 0, "results_by_topic_v3_and_below": results}
    return _batched(ctx, request)


async def _v3_later(results) -> dict:
    return {"throttle_time": 0, "results_by_topic_v3_and_below": await results}


async def _batched(ctx, request) -> dict:
    results = []
    for t in request.transactions:
        one = _one(ctx, t.transactional_id, t.producer_id, t.producer_epoch, t.topics, t.verify_only)
        results.append({"transactional_id": t.transactional_id,
                        "topic_results": await one if inspect.isawaitable(one) else one})
    return {"throttle_time": 0, "error_code": NONE, "results_by_transaction": results}
