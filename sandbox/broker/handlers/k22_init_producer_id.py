"""InitProducerId (22), v0-v5: producer ids for idempotent producers, and for transactional ones
the transaction coordinator's answer (a new id or a bumped epoch, the previous producer fenced).

Idempotent ids come in durable blocks from the coordinator, so they are never reused after a
restart; an idempotent producer that names its id and epoch gets a new id, as from Kafka.
v6 (two-phase commit, KIP-939) is not offered.
"""

from __future__ import annotations

from sandbox.coordinator.acls import CLUSTER, CLUSTER_NAME, IDEMPOTENT_WRITE, TOPIC, TRANSACTIONAL_ID, WRITE
from sandbox.protocol.errors import (
    CLUSTER_AUTHORIZATION_FAILED, INVALID_REQUEST, NONE, TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
)

from ..transactions.machine import for_version

API_KEY = 22
MIN_VERSION = 0
MAX_VERSION = 5
FENCED_FROM = 4   # older clients get INVALID_PRODUCER_EPOCH instead of PRODUCER_FENCED


def _ms(value) -> int:
    return int(value.total_seconds() * 1000) if hasattr(value, "total_seconds") else int(value)


def _refused(ctx, tid: str | None) -> int:
    """ACLs: WRITE on the transactional id; an idempotent producer needs IDEMPOTENT_WRITE on the
    cluster or WRITE on some topic (KIP-679), else CLUSTER_AUTHORIZATION_FAILED."""
    if tid is not None:
        return NONE if ctx.allowed(WRITE, TRANSACTIONAL_ID, tid) else TRANSACTIONAL_ID_AUTHORIZATION_FAILED
    if ctx.allowed(IDEMPOTENT_WRITE, CLUSTER, CLUSTER_NAME, report=False) or \
            ctx.state.access.allowed_on_some(ctx.state.coordinator, ctx.principal, ctx.host, WRITE, TOPIC):
        return NONE
    return NONE if ctx.allowed(IDEMPOTENT_WRITE, CLUSTER, CLUSTER_NAME) else CLUSTER_AUTHORIZATION_FAILED


async def handle(ctx, request) -> dict:
    pid = getattr(request, "producer_id", -1)
    epoch = getattr(request, "producer_epoch", -1)
    code = _refused(ctx, request.transactional_id) if ctx.restricted else NONE
    if code == NONE and (pid < 0) != (epoch < 0):   # one given without the other (KafkaApis)
        code = INVALID_REQUEST
    if code != NONE:
        return {"throttle_time": 0, "error_code": code, "producer_id": -1, "producer_epoch": -1}
    if request.transactional_id is not None:
        code, pid, epoch = await ctx.state.txns.init_producer_id(
            request.transactional_id, _ms(request.transaction_timeout), pid, epoch)
        return {"throttle_time": 0, "error_code": for_version(code, ctx.api_version, FENCED_FROM),
                "producer_id": pid, "producer_epoch": epoch}
    # an idempotent producer always gets a new id at epoch 0, whatever id it names, as Kafka's
    # TransactionCoordinator.handleInitProducerId "blindly" gives it: bumping the epoch of an id a
    # request names would let any client take over another producer's sequences (the Java client
    # bumps an idempotent producer's epoch by itself, KIP-360)
    return {"throttle_time": 0, "error_code": NONE,
            "producer_id": await ctx.state.next_producer_id(), "producer_epoch": 0}
