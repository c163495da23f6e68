"""DescribeUserScramCredentials (50), v0: from this broker's copy of the metadata, as a Kafka
broker answers from its metadata cache: every user when none is named, RESOURCE_NOT_FOUND for a
named user without credentials, DUPLICATE_RESOURCE for a user named twice; mechanisms and
iterations only, and to a super user that asks with this sandbox's tag (the supervisor's catalog:
sandbox.protocol.scram_keys) each credential's salt and keys too."""

from __future__ import annotations

from sandbox.coordinator.acls import CLUSTER, CLUSTER_NAME, DESCRIBE
from sandbox.protocol.errors import CLUSTER_AUTHORIZATION_FAILED as _CLUSTER_DENIED
from sandbox.protocol.errors import NONE

API_KEY = 50
MIN_VERSION = 0
MAX_VERSION = 0


def handle(ctx, request) -> dict:
    names = [u.name for u in (request.users or ())]
    if ctx.restricted and not ctx.allowed(DESCRIBE, CLUSTER, CLUSTER_NAME):   # ACLs: DESCRIBE on the cluster
        return {"throttle_time": 0, "error_code": _CLUSTER_DENIED, "error_message": None, "results": []}
    results = ctx.state.coordinator.scram_credentials(names)
    if getattr(request, "stored_keys", False) and _unauthenticated_super_user(ctx):
        coordinator = ctx.state.coordinator
        for r in results:
            for info in r["credential_infos"]:
                stored = coordinator.scram_credential(r["user"], int(info["mechanism"])) or {}
                try:
                    info.update(salt=bytes.fromhex(stored["salt"]), stored_key=bytes.fromhex(stored["stored_key"]),
                                server_key=bytes.fromhex(stored["server_key"]))
                except (KeyError, TypeError, ValueError):   # removed meanwhile: mechanism and iterations only
                    pass
    return {"throttle_time": 0, "error_code": NONE, "error_message": None, "results": results}


def _unauthenticated_super_user(ctx) -> bool:
    """A super user on a listener without SASL (the plain one the supervisor and the brokers use):
    a SASL login named ANONYMOUS is User:ANONYMOUS too, but must never read anyone's keys."""
    own = ctx.state.config.listener(ctx.listener)
    return own is not None and not own.sasl and ctx.principal in ctx.state.access.super_users
