"""DescribeTransactions (65), v0: the state of transactional ids this broker coordinates (state,
timeout, start time, producer id and epoch, partitions); NOT_COORDINATOR for others, as Kafka."""

from __future__ import annotations

from sandbox.coordinator.acls import DESCRIBE, TOPIC, TRANSACTIONAL_ID
from sandbox.protocol.errors import TRANSACTIONAL_ID_AUTHORIZATION_FAILED
from sandbox.protocol.errors import NONE

API_KEY = 65
MIN_VERSION = 0
MAX_VERSION = 0
# no transaction running: Kafka sends -1 for an Empty id, 0 for an unknown one; 0 for both here,
# since kio (our tools' decoder) refuses negative timestamps
NO_TIME = 0


def _one(txns, tid: str) -> dict:
    out = {"transactional_id": tid, "transaction_state": "", "transaction_timeout": 0,
           "transaction_start_time": NO_TIME, "producer_id": -1, "producer_epoch": -1, "topics": []}
    code = txns.store.check(tid)
    meta = None
    if code == NONE:
        code, meta = txns.machine.describe(tid)
    out["error_code"] = code
    if meta is not None:
        topics: dict[str, list[int]] = {}
        for t, p in sorted(meta.partitions):
            topics.setdefault(t, []).append(p)
        out.update(transaction_state=meta.state_name, transaction_timeout=meta.timeout_ms,
                   transaction_start_time=meta.start_ms if meta.start_ms >= 0 else NO_TIME, producer_id=meta.producer_id,
                   producer_epoch=meta.producer_epoch,
                   topics=[{"topic": t, "partitions": ps} for t, ps in topics.items()])
    return out


def handle(ctx, request) -> dict:
    return {"throttle_time": 0,
            "transaction_states": [_one(ctx.state.txns, tid) if not ctx.restricted else _checked(ctx, tid)
                                   for tid in request.transactional_ids]}


def _checked(ctx, tid: str) -> dict:
    """ACLs: DESCRIBE on the transactional id; its topics the principal may not DESCRIBE left out."""
    if not ctx.allowed(DESCRIBE, TRANSACTIONAL_ID, tid):
        return _denied(tid)
    out = _one(ctx.state.txns, tid)
    out["topics"] = [t for t in out["topics"] if ctx.allowed(DESCRIBE, TOPIC, t["topic"], report=False)]
    return out


def _denied(tid: str) -> dict:
    """ACLs: DESCRIBE on the transactional id."""
    return {"transactional_id": tid, "transaction_state": "", "transaction_timeout": 0, "error_code":
            TRANSACTIONAL_ID_AUTHORIZATION_FAILED, "transaction_start_time": NO_TIME, "producer_id": -1,
            "producer_epoch": -1, "topics": []}
