"""ListTransactions (66), v0-v2: the transactional ids this broker coordinates, filtered by state
names (unknown ones are echoed back), producer ids, v1's minimum running time and v2's id pattern
(a regular expression the whole id matches; INVALID_REGULAR_EXPRESSION when it is not one)."""

from __future__ import annotations

from sandbox.coordinator.acls import DESCRIBE, TRANSACTIONAL_ID
import re

from sandbox.protocol.errors import INVALID_REGULAR_EXPRESSION, NONE

API_KEY = 66
MIN_VERSION = 0
MAX_VERSION = 2


def handle(ctx, request) -> dict:
    try:
        found, unknown = ctx.state.txns.machine.list(
            request.state_filters, request.producer_id_filters, getattr(request, "duration_filter", -1),
            getattr(request, "transactional_id_pattern", None))
    except re.error:
        return {"throttle_time": 0, "error_code": INVALID_REGULAR_EXPRESSION, "unknown_state_filters": [],
                "transaction_states": []}
    return {"throttle_time": 0, "error_code": NONE, "unknown_state_filters": unknown, "transaction_states": [
        {"transactional_id": m.transactional_id, "producer_id": m.producer_id, "transaction_state": m.state_name}
        for m in found if not ctx.restricted or ctx.allowed(DESCRIBE, TRANSACTIONAL_ID, m.transactional_id, report=False)]}
