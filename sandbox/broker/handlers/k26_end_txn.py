"""EndTxn (26), v0-v4: a transactional producer commits or aborts. Answered once PrepareCommit /
PrepareAbort is durable; the markers and the Complete* state follow in the background, as Kafka
does. v5 (KIP-890 part 2, transaction.version 2) is not offered: the feature is not finalized."""

from __future__ import annotations

from ..transactions.machine import for_version

API_KEY = 26
MIN_VERSION = 0
MAX_VERSION = 4
FENCED_FROM = 2


async def handle(ctx, request) -> dict:
    code = await ctx.state.txns.end_txn(request.transactional_id, request.producer_id, request.producer_epoch,
                                        bool(request.committed))
    return {"throttle_time": 0, "error_code": for_version(code, ctx.api_version, FENCED_FROM)}
