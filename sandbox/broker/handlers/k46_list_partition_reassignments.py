"""ListPartitionReassignments (46), v0: replicas never move between brokers yet, so no
reassignment is ever in progress and the answer lists none (as Kafka does when none runs)."""

from __future__ import annotations

from sandbox.protocol.errors import NONE

API_KEY = 46
MIN_VERSION = 0
MAX_VERSION = 0


def handle(ctx, request) -> dict:
    return {"throttle_time": 0, "error_code": NONE, "error_message": None, "topics": []}
