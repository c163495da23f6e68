"""Commit / abort markers written to partitions this broker leads (the transaction coordinator
and WriteTxnMarkers both come here). Minimal version by the coordinator's branch, with the
contract's signature; helper "txread" owns this module (its version replaces this one)."""

from __future__ import annotations

from typing import Any

from sandbox.log.errors import InvalidProducerEpochError
from sandbox.protocol.errors import INVALID_PRODUCER_EPOCH, KAFKA_STORAGE_ERROR, NONE

MARKER_TIMEOUT_S = 5.0


async def write_markers(state: Any, producer_id: int, producer_epoch: int, commit: bool, coordinator_epoch: int,
                        partitions) -> dict[tuple[str, int], int]:
    """One control batch per partition (acks=all: answered once the ISR has it); the error code
    of each partition."""
    out: dict[tuple[str, int], int] = {}
    waits = []
    for topic, index in partitions:
        key = (topic, int(index))
        plog, code = state.led_log(*key)
        if plog is None:
            out[key] = code
            continue
        code = state.replicas.check_produce(key, -1)
        if code != NONE:
            out[key] = code
            continue
        try:
            info = plog.append_marker(producer_id, producer_epoch, commit, coordinator_epoch,
                                      leader_epoch=state.leaders[key][1])
        except InvalidProducerEpochError:
            out[key] = INVALID_PRODUCER_EPOCH
            continue
        except OSError:
            out[key] = KAFKA_STORAGE_ERROR
            continue
        state.replicas.appended(key)
        state.notifier.notify(key)
        waits.append((key, info.last_offset))
    for key, last in waits:
        code = NONE
        if state.replicas.replicated(key):
            code = await state.replicas.wait_for_replicas(key, last, MARKER_TIMEOUT_S)
        out[key] = code
    return out
