"""AlterUserScramCredentials (51), v0: checked as Kafka's controller checks them (coordinator/scram.py),
journaled; one result per user."""

from __future__ import annotations

from ..model import CoordinatorError
from ..scram import alter_response, changes_of

API_KEY = 51
MIN_VERSION = 0
MAX_VERSION = 0


def handle(ctx, request) -> dict:
    try:
        results = ctx.coordinator.alter_scram_credentials(*changes_of(request))
    except CoordinatorError as e:   # the journal cannot be written
        users = dict.fromkeys([d.name for d in request.deletions] + [u.name for u in request.upsertions])
        results = [(name, e.error_code, e.message) for name in users]
    return alter_response(results)
