"""AddOffsetsToTxn (25), v0-v4: a transactional producer about to commit a group's offsets in
its transaction (TxnOffsetCommit) adds that group's `__consumer_offsets` partition to it, so the
commit is completed by the transaction's marker."""

from __future__ import annotations

from sandbox.coordinator.acls import GROUP, READ, TRANSACTIONAL_ID, WRITE
from sandbox.protocol.errors import (
    COORDINATOR_NOT_AVAILABLE, GROUP_AUTHORIZATION_FAILED, TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
)

from ..internal_topics import OFFSETS_TOPIC
from ..transactions.coordinator import settled
from ..transactions.machine import for_version

API_KEY = 25
MIN_VERSION = 0
MAX_VERSION = 4
FENCED_FROM = 2


async def handle(ctx, request) -> dict:
    state = ctx.state
    if ctx.restricted and not ctx.allowed(WRITE, TRANSACTIONAL_ID, request.transactional_id):
        code = TRANSACTIONAL_ID_AUTHORIZATION_FAILED   # ACLs: WRITE on the id, READ on the group
    elif ctx.restricted and not ctx.allowed(READ, GROUP, request.group_id):
        code = GROUP_AUTHORIZATION_FAILED
    elif not await state.offsets.ensure_topic():
        code = COORDINATOR_NOT_AVAILABLE
    else:
        part = (OFFSETS_TOPIC, state.offsets.partition_for(request.group_id))
        code = await settled(state.txns.add_partitions(request.transactional_id, request.producer_id,
                                               request.producer_epoch, [part]))
    return {"throttle_time": 0, "error_code": for_version(code, ctx.api_version, FENCED_FROM)}
