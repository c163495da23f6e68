"""AlterPartition as the coordinator decides it: a partition's leader asks to shrink or expand its
ISR; the change is taken only from the current leader at the current leader and partition
epochs, and only to live replicas (unfenced, their log not reported offline), so a stale or replaced leader can never change an ISR."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any, Sequence

from sandbox.protocol.errors import (
    FENCED_LEADER_EPOCH,
    INELIGIBLE_REPLICA,
    INVALID_REQUEST,
    INVALID_UPDATE_VERSION,
    NONE,
    NOT_CONTROLLER,
    UNKNOWN_TOPIC_ID,
    UNKNOWN_TOPIC_OR_PARTITION,
)

from . import reassign
from .model import PartitionInfo

if TYPE_CHECKING:
    from .machine import MetadataMachine

Record = dict[str, Any]


def alter_partition(machine: MetadataMachine, broker_id: int, topic_id: uuid.UUID, index: int,
                    leader_epoch: int, partition_epoch: int, new_isr: Sequence[int]
                    ) -> tuple[list[Record], int, PartitionInfo | None]:
    """(records to commit, error code, the partition as it is afterwards) for one partition."""
    topic = machine.topic_by_id(topic_id)
    if topic is None:
        return [], UNKNOWN_TOPIC_ID, None
    if not 0 <= index < len(topic.partitions):
        return [], UNKNOWN_TOPIC_OR_PARTITION, None
    p = topic.partitions[index]
    # Kafka's validateAlterPartitionData, in its order: epochs ahead of the coordinator's (it
    # must be behind: NOT_CONTROLLER, asked again), a replaced leader's older epoch, a broker that
    # is not the leader, a stale partition epoch, then the ISR asked for
    if leader_epoch > p.leader_epoch or partition_epoch > p.partition_epoch:
        return [], NOT_CONTROLLER, p
    if leader_epoch < p.leader_epoch:
        return [], FENCED_LEADER_EPOCH, p
    if p.leader != broker_id:
        return [], INVALID_REQUEST, p
    if partition_epoch < p.partition_epoch:
        return [], INVALID_UPDATE_VERSION, p
    isr = tuple(int(r) for r in new_isr)
    if not isr or broker_id not in isr or len(set(isr)) != len(isr) or any(r not in p.replicas for r in isr):
        return [], INVALID_REQUEST, p
    for r in isr:
        b = machine.broker(r)
        # KIP-858: a replica whose log its broker reported offline is no ISR member either
        if b is None or b.fenced or b.is_offline(topic.topic_id, index):
            return [], INELIGIBLE_REPLICA, p
    if set(isr) == set(p.isr):
        return [], NONE, p
    ordered = tuple(r for r in p.replicas if r in isr)
    records = [p.change(topic.topic_id, isr=ordered)]
    preview = machine.preview(records)
    after = preview.topic_by_id(topic_id)
    assert after is not None
    # the replica a reassignment waited for is in sync: it completes in the next change
    done = reassign.completion(preview, topic.topic_id, after.partitions[index])
    if done is not None:
        records.append(done)
        preview.apply(done)
        after = preview.topic_by_id(topic_id)
        assert after is not None
    return records, NONE, after.partitions[index]
