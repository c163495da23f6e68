"""Partition reassignment as the coordinator decides it (KIP-455, as Kafka's KRaft controller runs
it): AlterPartitionReassignments sets a partition's target replicas; the replicas become the
target followed by the ones being removed, and the brokers added start following the leader with
an empty log. Once every target replica is in the ISR (the leader's AlterPartition puts an
added one there when it has caught up; a target replica that was out of sync must come back
first, as Kafka's maybeCompleteReassignment asks) the reassignment completes in the same change: the replicas become the
target, the ISR loses the removed brokers, a removed leader hands over to an in-sync target
replica (leader epoch + 1), and the change names the removed brokers so they delete their copy.
Cancelling (replicas = None) goes back to the replicas from before; a new target replaces a
running reassignment the same way, from the replicas before it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Container, Iterable, Sequence

from sandbox.protocol.errors import (
    INVALID_REPLICA_ASSIGNMENT,
    NO_REASSIGNMENT_IN_PROGRESS,
    NONE,
    UNKNOWN_TOPIC_OR_PARTITION,
)

from .elections import Draft
from .model import NO_LEADER, PartitionInfo, TopicInfo

if TYPE_CHECKING:
    from .machine import MetadataMachine

Record = dict[str, Any]
Result = tuple[int, "str | None"]


def _live(machine: MetadataMachine, broker_id: int) -> bool:
    b = machine._brokers.get(broker_id)
    return b is not None and not b.fenced


def _leader_within(machine: MetadataMachine, p: PartitionInfo, replicas: Sequence[int],
                   isr: Sequence[int]) -> tuple[int, int]:
    """(leader, leader epoch) once the replicas are `replicas`: the same leader if it stays,
    else the first live in-sync one of them in a new epoch (none: leaderless, new epoch)."""
    if p.leader in replicas:
        return p.leader, p.leader_epoch
    pick = next((r for r in replicas if r in isr and _live(machine, r)), NO_LEADER)
    return pick, p.leader_epoch + 1


def completion(machine: MetadataMachine, topic_id: Any, p: PartitionInfo) -> Record | None:
    """The change that completes p's reassignment, if it can complete now: every target replica
    in the ISR. Completing earlier would delete the removed replicas' in-sync copies while a
    target replica still lacks records."""
    if not p.reassigning or any(r not in p.isr for r in p.target):
        return None
    target = p.target
    isr = tuple(r for r in target if r in p.isr)
    if not isr:
        return None
    leader, epoch = _leader_within(machine, p, target, isr)
    record = p.change(topic_id, replicas=target, isr=isr, leader=leader, leader_epoch=epoch,
                      adding=(), removing=())
    record["removed"] = [r for r in p.replicas if r not in target]
    return record


def _reverted(machine: MetadataMachine, p: PartitionInfo) -> PartitionInfo | None:
    """p with its running reassignment undone (None when no original replica is in sync)."""
    original = p.original
    isr = tuple(r for r in original if r in p.isr)
    if not isr:
        return None
    leader, epoch = _leader_within(machine, p, original, isr)
    return PartitionInfo(p.index, original, isr, leader, epoch, p.partition_epoch)


def _one(draft: Draft, name: str, index: int, replicas: Sequence[int] | None) -> Result:
    m = draft.machine
    topic = m._topics.get(name)
    if topic is None or not 0 <= index < len(topic.partitions):
        return UNKNOWN_TOPIC_OR_PARTITION, "The partition does not exist."
    p = topic.partitions[index]
    if replicas is not None:
        replicas = [int(r) for r in replicas]
        if not replicas or len(set(replicas)) != len(replicas):
            return INVALID_REPLICA_ASSIGNMENT, "The replica list must be non-empty and hold each broker once."
        missing = [r for r in replicas if r not in m._brokers]
        if missing:
            return INVALID_REPLICA_ASSIGNMENT, f"Broker(s) {missing} are not registered."
    elif not p.reassigning:
        return NO_REASSIGNMENT_IN_PROGRESS, f"No ongoing reassignment for {name}-{index}."
    base = p
    if p.reassigning:
        base = _reverted(m, p)
        if base is None:
            return INVALID_REPLICA_ASSIGNMENT, (
                f"The reassignment of {name}-{index} cannot be undone: none of its replicas from "
                f"before it ({list(p.original)}) is in sync; wait until one is.")
    if replicas is None:
        target = list(base.replicas)
    elif tuple(replicas) == base.replicas and not p.reassigning:
        return NONE, None   # already there
    else:
        target = replicas
    removing = [r for r in base.replicas if r not in target]
    adding = [r for r in target if r not in base.replicas]
    moving = PartitionInfo(p.index, tuple(target) + tuple(removing), base.isr, base.leader,
                           base.leader_epoch, p.partition_epoch, tuple(adding), tuple(removing))
    record = completion(m, topic.topic_id, moving) or moving.change(topic.topic_id)
    # brokers that held (or were receiving) a copy and are no longer replicas delete it
    gone = [r for r in p.replicas if r not in record["replicas"]]
    if gone:
        record["removed"] = gone
    else:
        record.pop("removed", None)
    draft.emit(record)
    return NONE, None


def alter_reassignments(machine: MetadataMachine, wanted: list[tuple[str, int, Sequence[int] | None]]
                        ) -> tuple[list[Record], dict[tuple[str, int], Result]]:
    """AlterPartitionReassignments: the records, and (error code, message) per partition."""
    draft = Draft(machine)
    out = {(name, index): _one(draft, name, index, replicas) for name, index, replicas in wanted}
    return draft.records, out


def ongoing(topics: Iterable[TopicInfo], asked: Container[tuple[str, int]] | None = None
            ) -> dict[str, list[PartitionInfo]]:
    """ListPartitionReassignments: the running reassignments by topic name, in name order (of
    the (topic, partition) pairs asked, or all)."""
    out: dict[str, list[PartitionInfo]] = {}
    for t in sorted(topics, key=lambda t: t.name):
        for p in t.partitions:
            if p.reassigning and (asked is None or (t.name, p.index) in asked):
                out.setdefault(t.name, []).append(p)
    return out
