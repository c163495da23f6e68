"""EndTxn (26), v0-v5: a transactional producer commits or aborts. Answered once PrepareCommit /
PrepareAbort is durable; the markers and the Complete* state follow in the background, as Kafka
does. v5 (KIP-890 part 2) adds the producer id and epoch to the answer, for clients running
transaction version 2, which re-bumps the epoch at every end; that version is not finalized here
(no client uses it: Java sends v5 only when `transaction.version` >= 2 is finalized), so a v5
request is served as version 1 is and answered with the producer's unchanged id and epoch.
Advertised up to v5 as Kafka 4.0 advertises it."""

from __future__ import annotations

import inspect

from sandbox.coordinator.acls import TRANSACTIONAL_ID, WRITE
from sandbox.protocol.errors import TRANSACTIONAL_ID_AUTHORIZATION_FAILED

from ..transactions.machine import for_version

API_KEY = 26
MIN_VERSION = 0
MAX_VERSION = 5
FENCED_FROM = 2


def handle(ctx, request):
    """Answered at once unless the coordinator must wait (followers, or the previous markers)."""
    if ctx.restricted and not ctx.allowed(WRITE, TRANSACTIONAL_ID, request.transactional_id):   # ACLs
        return _answer(ctx, request, TRANSACTIONAL_ID_AUTHORIZATION_FAILED)
    code = ctx.state.txns.end_txn(request.transactional_id, request.producer_id, request.producer_epoch,
                                  bool(request.committed))
    if inspect.isawaitable(code):
        return _later(ctx, request, code)
    return _answer(ctx, request, code)


async def _later(ctx, request, code) -> dict:
    return _answer(ctx, request, await code)


def _answer(ctx, request, code: int) -> dict:
    out = {"throttle_time": 0, "error_code": for_version(code, ctx.api_version, FENCED_FROM)}
    if ctx.api_version >= 5:
        out["producer_id"], out["producer_epoch"] = request.producer_id, request.producer_epoch
    return out
