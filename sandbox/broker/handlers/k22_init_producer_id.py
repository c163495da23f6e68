"""InitProducerId (22), v0-v5 (v5 changes only transactions, KIP-890): producer ids for idempotent producers (not transactions yet).

Ids come in durable blocks from the coordinator, so they are never reused after a restart.
A producer that re-initialises with its id and epoch (KIP-360) gets the epoch bumped.
"""

from __future__ import annotations

from sandbox.protocol.errors import NONE, TRANSACTIONAL_ID_AUTHORIZATION_FAILED

API_KEY = 22
MIN_VERSION = 0
MAX_VERSION = 5


async def handle(ctx, request) -> dict:
    if request.transactional_id is not None:
        return {"throttle_time": 0, "error_code": TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
                "producer_id": -1, "producer_epoch": -1}
    pid = getattr(request, "producer_id", -1)
    epoch = getattr(request, "producer_epoch", -1)
    if pid >= 0 and 0 <= epoch < 32766:
        return {"throttle_time": 0, "error_code": NONE, "producer_id": pid, "producer_epoch": epoch + 1}
    return {"throttle_time": 0, "error_code": NONE,
            "producer_id": await ctx.state.next_producer_id(), "producer_epoch": 0}
