"""Transaction markers on the partitions this broker leads (WriteTxnMarkers, and the transaction
coordinator's own partitions): one control batch per partition, answered once the ISR has it,
errors per partition as Kafka's WriteTxnMarkers replies them. On `__consumer_offsets` a marker
also completes the producer's pending transactional offset commits."""

from __future__ import annotations

import asyncio
import logging

from sandbox.log import InvalidProducerEpochError, TransactionCoordinatorFencedError
from sandbox.protocol.errors import (
    INVALID_PRODUCER_EPOCH, KAFKA_STORAGE_ERROR, NONE, NOT_LEADER_OR_FOLLOWER, TRANSACTION_COORDINATOR_FENCED,
    UNKNOWN_TOPIC_OR_PARTITION,
)

from . import storage
from .internal_topics import OFFSETS_TOPIC

log = logging.getLogger("sandbox.broker")

# the ISR wait answers REQUEST_TIMED_OUT (the coordinator retries) before the coordinator's own
# WriteTxnMarkers request to this broker times out (transactions/markers.py: 10 s)
MARKER_TIMEOUT_S = 5.0


def _append(state, key: tuple[str, int], producer_id: int, producer_epoch: int, commit: bool,
            coordinator_epoch: int) -> tuple[int, int]:
    """(error code, offset of the marker) for one partition."""
    leader = state.leaders.get(key)
    plog = state.partitions.get(key)
    if leader is None or plog is None:   # Kafka: the partition is not online on this broker
        return UNKNOWN_TOPIC_OR_PARTITION, -1
    if leader[0] != state.node_id:
        return NOT_LEADER_OR_FOLLOWER, -1
    plog, code = state.led_log(*key)   # opens a log opened at its first use, unless a file of it is held
    if plog is None:
        return code, -1
    code = state.replicas.check_produce(key, -1)
    if code != NONE:
        return code, -1
    try:
        info = plog.append_marker(producer_id, producer_epoch, commit, coordinator_epoch, leader_epoch=leader[1])
    except InvalidProducerEpochError as e:
        log.info("marker for producer %d refused on %s-%d: %s", producer_id, *key, e)
        return INVALID_PRODUCER_EPOCH, -1
    except TransactionCoordinatorFencedError as e:   # a zombie coordinator's marker (Kafka's checkCoordinatorEpoch)
        log.info("marker for producer %d refused on %s-%d: %s", producer_id, *key, e)
        return TRANSACTION_COORDINATOR_FENCED, -1
    except OSError as e:
        log.warning("marker for producer %d not written to %s-%d: %s", producer_id, *key, e)
        if storage.is_storage_error(e):
            storage.failed(state, plog.directory, e)
        return KAFKA_STORAGE_ERROR, -1
    storage.after_append(state, plog)
    state.notifier.notify(key)   # read_committed fetches waiting on this partition may move on
    state.replicas.appended(key)
    return NONE, info.last_offset


async def _wait(state, key, offset, producer_id, commit, timeout_s) -> int:
    return _written(state, key, producer_id, commit, await state.replicas.wait_for_replicas(key, offset, timeout_s))


def _written(state, key, producer_id: int, commit: bool, code: int) -> int:
    """The marker is on the ISR (code NONE): a marker on `__consumer_offsets` completes the
    producer's pending transactional offset commits there."""
    if code == NONE and key[0] == OFFSETS_TOPIC and state.offsets is not None:
        state.offsets.complete_txn(key[1], producer_id, commit)
    return code


async def write_markers(state, producer_id: int, producer_epoch: int, commit: bool, coordinator_epoch: int,
                        partitions, *, timeout_s: float = MARKER_TIMEOUT_S) -> dict[tuple[str, int], int]:
    """Write the commit (or abort) marker of the producer's transaction to each (topic, partition)
    and wait, without blocking the loop, until every ISR member has it. Returns the error code per
    partition: NONE, UNKNOWN_TOPIC_OR_PARTITION (not hosted here), NOT_LEADER_OR_FOLLOWER,
    NOT_ENOUGH_REPLICAS(_AFTER_APPEND), REQUEST_TIMED_OUT, INVALID_PRODUCER_EPOCH (an older epoch
    than the partition has seen), TRANSACTION_COORDINATOR_FENCED (an older coordinator epoch than
    the producer's last marker here had), KAFKA_STORAGE_ERROR. Partitions whose ISR is just this broker
    are settled at once; only the others are waited for."""
    codes: dict[tuple[str, int], int] = {}
    waits = {}
    for key in dict.fromkeys((str(t), int(p)) for t, p in partitions):
        code, offset = _append(state, key, producer_id, producer_epoch, commit, coordinator_epoch)
        if code == NONE:
            acked = state.replicas.acked(key, offset)
            if acked is None:
                waits[key] = _wait(state, key, offset, producer_id, commit, timeout_s)
                continue
            code = _written(state, key, producer_id, commit, acked)
        codes[key] = code
    if waits:
        codes.update(zip(waits, await asyncio.gather(*waits.values())))
    return codes
