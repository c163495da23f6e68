"""AlterUserScramCredentials (51), v0: the sandbox has no SASL listener and keeps no SCRAM users.
Deleting one gets Kafka's RESOURCE_NOT_FOUND; creating one gets UNSUPPORTED_SASL_MECHANISM with a
sentence saying why (a credential that nothing could use would only mislead)."""

from __future__ import annotations

from sandbox.protocol.errors import (
    DUPLICATE_RESOURCE, RESOURCE_NOT_FOUND, UNACCEPTABLE_CREDENTIAL, UNSUPPORTED_SASL_MECHANISM,
)

API_KEY = 51
MIN_VERSION = 0
MAX_VERSION = 0
NO_SCRAM = ("This sandbox has no SASL listener, so SCRAM credentials cannot be stored; "
            "clients connect without authentication.")


def handle(ctx, request) -> dict:
    ops = [(d.name, False) for d in request.deletions] + [(u.name, True) for u in request.upsertions]
    names = [name for name, _ in ops]
    results = []
    for name, upsert in ops:
        if any(r["user"] == name for r in results):
            continue
        if not name:
            code, message = UNACCEPTABLE_CREDENTIAL, "Username must not be empty"
        elif names.count(name) > 1:
            code, message = DUPLICATE_RESOURCE, "Cannot alter SCRAM credentials for the same user twice in a single request"
        elif upsert:
            code, message = UNSUPPORTED_SASL_MECHANISM, NO_SCRAM
        else:
            code, message = RESOURCE_NOT_FOUND, "Attempt to delete a user credential that does not exist"
        results.append({"user": name, "error_code": code, "error_message": message})
    return {"throttle_time": 0, "results": results}
