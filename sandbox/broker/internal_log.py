"""What the coordinators that keep their state in an internal topic share (`__consumer_offsets`,
`__transaction_state`): making the topic on first need, which of its partitions this broker leads,
reading a partition's records back, appending records as the leader, and what a failed append
or ISR wait means to the coordinator's client (as Kafka's coordinators map it)."""

from __future__ import annotations

import logging
from typing import Any, Callable, Iterator

from sandbox.coordinator import CoordinatorError
from sandbox.log.batch import ATTR_TRANSACTIONAL, BatchHeader, build_batch, iter_batches, iter_records, own_batch
from sandbox.protocol.errors import (
    COORDINATOR_NOT_AVAILABLE, KAFKA_STORAGE_ERROR, NOT_COORDINATOR, NOT_ENOUGH_REPLICAS,
    NOT_ENOUGH_REPLICAS_AFTER_APPEND, NOT_LEADER_OR_FOLLOWER, REQUEST_TIMED_OUT, UNKNOWN_TOPIC_OR_PARTITION,
)

from .offsets_records import partition_for
from .records import uncompressed

log = logging.getLogger("sandbox.broker")

READ_BYTES = 1 << 20
RECORDS_PER_BATCH = 500   # a large write is split so no batch nears max.message.bytes

# what a failed append or ISR wait means to a coordinator's client (Kafka's GroupMetadataManager
# and TransactionStateManager map them alike)
COORDINATOR_ERRORS = {
    UNKNOWN_TOPIC_OR_PARTITION: COORDINATOR_NOT_AVAILABLE, NOT_ENOUGH_REPLICAS: COORDINATOR_NOT_AVAILABLE,
    NOT_ENOUGH_REPLICAS_AFTER_APPEND: COORDINATOR_NOT_AVAILABLE, REQUEST_TIMED_OUT: COORDINATOR_NOT_AVAILABLE,
    NOT_LEADER_OR_FOLLOWER: NOT_COORDINATOR, KAFKA_STORAGE_ERROR: NOT_COORDINATOR,
}


async def ensure_topic(state: Any, name: str, partitions: int, replication_factor: int, configs: dict[str, str],
                       emit: Callable[[str, dict], None], by: str) -> bool:
    """Create an internal topic on first need with min(replication factor, live brokers)
    replicas. True if it exists; False while it cannot be made or is still being made (the
    client asks again: COORDINATOR_NOT_AVAILABLE), see BrokerState.create_soon."""
    coord = state.coordinator
    if coord.topic(name) is not None:
        return True
    if state.restoring():   # its partitions on disk are adopted back (BrokerState._adopt_orphans)
        return False

    async def create() -> bool:
        live = sum(1 for b in coord.brokers() if not b.fenced)
        rf = max(1, min(replication_factor, live))
        try:
            await coord.create_topic(name, partitions, rf, dict(configs))
        except CoordinatorError as e:   # made meanwhile by another broker, or the coordinator is away
            if coord.topic(name) is None:
                log.info("cannot create %s yet: %s", name, e)
                return False
            return True
        emit("topic-created", {"topic": name, "partitions": partitions, "replication_factor": rf, "by": by})
        return True
    return await state.create_soon(name, create, False)


def key_partition(state: Any, name: str, key: str, default_partitions: int) -> int:
    """The partition of `name` a group or transactional id belongs to (Kafka's abs(hashCode) %
    partitions, over the topic's partitions once it exists)."""
    return partition_for(key, state.coordinator.partition_count(name) or default_partitions)


def key_coordinator(state: Any, name: str, key: str) -> int | None:
    """The leader of the key's partition of `name` (-1 while it has none); None without the topic."""
    count = state.coordinator.partition_count(name)
    if not count:
        return None
    leader = state.leaders.get((name, partition_for(key, count)))
    return leader[0] if leader is not None else -1


def refused_load(refused: set[int], name: str, index: int, e: OSError, meanwhile: str) -> None:
    """A partition of internal topic `name` whose log a held file keeps from opening (Windows)
    is noted in `refused` (loaded once let go: BrokerState.retry_unopened); said once."""
    if index not in refused:
        log.warning("%s-%d cannot be loaded yet (%s); %s until it is", name, index, e, meanwhile)
    refused.add(index)


def led_partitions(state: Any, name: str) -> dict[int, int]:
    """The partitions of `name` this broker leads and has a log of: index -> leader epoch."""
    t = state.coordinator.topic(name)
    led: dict[int, int] = {}
    if t is not None:
        for p in t.partitions:
            if p.leader == state.node_id and (name, p.index) in state.partitions \
                    and (name, p.index) not in getattr(state.replicas, "unopened", ()):   # not led before it opens
                led[p.index] = p.leader_epoch
    return led


def read_batches(plog: Any) -> Iterator[tuple[BatchHeader, memoryview, int]]:
    """(header, the batch uncompressed, offset the read started at) of every batch in a
    partition's log, oldest first; the first batch may hold records before that offset."""
    offset, end = plog.log_start_offset, plog.log_end_offset
    while offset < end:
        data = plog.read(offset, READ_BYTES).tobytes()
        if not data:
            break
        nxt = offset
        plain = memoryview(uncompressed(data))
        for pos, h in iter_batches(plain):
            nxt = h.next_offset
            if nxt > offset:
                yield h, plain[pos:pos + h.size], offset
        if nxt <= offset:
            break
        offset = nxt


def read_records(plog: Any) -> Iterator[tuple[bytes, bytes | None]]:
    """(key, value) of every keyed data record in a partition's log, oldest first."""
    for h, batch, start in read_batches(plog):
        if h.is_control:
            continue
        for at, _ts, key, value, _h in iter_records(batch):
            if at >= start and key is not None:
                yield key, value


def append_records(state: Any, key: tuple[str, int], records: list[tuple[bytes, bytes | None]],
                   fsync: bool, *, producer: tuple[int, int] | None = None) -> int:
    """Append records to a partition this broker leads (in batches of RECORDS_PER_BATCH; with
    `producer` = (id, epoch), transactional batches of that producer); the last offset written,
    to wait for with state.replicas.wait_for_replicas."""
    plog = state.partitions[key]
    epoch = state.leaders[key][1]
    txn = {} if producer is None else {"producer_id": producer[0], "producer_epoch": producer[1],
                                       "attributes": ATTR_TRANSACTIONAL}
    # every batch checked, then all written with one call: a commit is written whole or not at
    # all (a full disk failing the write of a later batch left the earlier ones in the log)
    bufs = [build_batch(records[i:i + RECORDS_PER_BATCH], writable=True, **txn)
            for i in range(0, len(records), RECORDS_PER_BATCH)]
    if not bufs:
        return -1
    headers = [h for buf in bufs for h in own_batch(buf, plog.config.max_message_bytes)]
    whole = bufs[0] if len(bufs) == 1 else bytearray().join(bufs)
    last = plog.append(whole, leader_epoch=epoch, validated=headers, in_place=True).last_offset
    if fsync:
        plog.housekeeping.sync()
    state.replicas.appended(key)
    state.notifier.notify(key)
    return last
