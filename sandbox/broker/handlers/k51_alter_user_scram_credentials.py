"""AlterUserScramCredentials (51), v0: SCRAM credentials live in the coordinator's metadata
journal (coordinator/scram.py), so the request is forwarded there (broker/forward.py); it needs
ALTER on the cluster. Brokers' SASL_PLAINTEXT listeners check logins against them."""

from __future__ import annotations

from sandbox.coordinator.acls import ALTER
from sandbox.coordinator.scram import alter_response, changes_of

from ..forward import to_coordinator

API_KEY = 51
MIN_VERSION = 0
MAX_VERSION = 0


async def handle(ctx, request):
    def refusal(code: int, message: str | None) -> dict:
        users = dict.fromkeys([d.name for d in request.deletions] + [u.name for u in request.upsertions])
        return alter_response([(name, code, message) for name in users])
    return await to_coordinator(ctx, request, ALTER, lambda coord: coord.alter_scram_credentials(*changes_of(request)),
                                alter_response, refusal)
