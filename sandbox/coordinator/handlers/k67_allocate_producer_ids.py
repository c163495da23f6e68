"""AllocateProducerIds (67), v0: a registered broker (current epoch) gets a durable block of
producer ids (first id + length); the block size is the coordinator's, as in Kafka."""

from __future__ import annotations

from ..model import CoordinatorError
from sandbox.protocol.errors import NONE
from .common import check_session

API_KEY = 67
MIN_VERSION = 0
MAX_VERSION = 0
BLOCK_SIZE = 1000


def handle(ctx, request) -> dict:
    out = {"throttle_time": 0, "error_code": NONE, "producer_id_start": -1, "producer_id_len": 0}
    code = check_session(ctx.server, request.broker_id, request.broker_epoch)
    if code != NONE:
        out["error_code"] = code
        return out
    try:
        out["producer_id_start"] = ctx.coordinator.allocate_producer_ids(BLOCK_SIZE)
    except CoordinatorError as e:
        out["error_code"] = e.error_code
        return out
    out["producer_id_len"] = BLOCK_SIZE
    return out
