"""DescribeUserScramCredentials (50), v0: the sandbox has no SCRAM users, so it answers as Kafka
does with none: all users = an empty list; a named user = RESOURCE_NOT_FOUND."""

from __future__ import annotations

from sandbox.protocol.errors import DUPLICATE_RESOURCE, NONE, RESOURCE_NOT_FOUND

API_KEY = 50
MIN_VERSION = 0
MAX_VERSION = 0


def handle(ctx, request) -> dict:
    names = [u.name for u in (request.users or ())]
    results = []
    for name in dict.fromkeys(names):
        if names.count(name) > 1:
            code, message = DUPLICATE_RESOURCE, ("Cannot describe SCRAM credentials for the same "
                                                 "user twice in a single request")
        else:
            code, message = RESOURCE_NOT_FOUND, "Attempt to describe a user credential that does not exist"
        results.append({"user": name, "error_code": code, "error_message": message, "credential_infos": ()})
    return {"throttle_time": 0, "error_code": NONE, "error_message": None, "results": results}
