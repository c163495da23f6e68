"""AlterClientQuotas (49), v0-v1: validated as Kafka's controller does (entity types user,
client-id, user+client-id or ip; the keys each allows; long-valued keys), journaled unless
validate_only. One result per entry; a refused entry changes nothing."""

from __future__ import annotations

from ..model import CoordinatorError
from ..quotas import alter_response, entries_of

API_KEY = 49
MIN_VERSION = 0
MAX_VERSION = 1


def handle(ctx, request) -> dict:
    try:
        results = ctx.coordinator.alter_client_quotas(entries_of(request), request.validate_only)
    except CoordinatorError as e:   # the journal cannot be written
        results = [(e.error_code, e.message)] * len(request.entries)
    return alter_response(request, results)
