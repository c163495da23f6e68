"""Records for one machine command, built on a scratch copy of the state; and the leader/ISR
changes when a broker is fenced or comes back (Kafka's clean election, optionally unclean).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .model import NO_LEADER, PartitionInfo, TopicInfo

if TYPE_CHECKING:
    from .machine import MetadataMachine

Record = dict[str, Any]


class Draft:
    """Records being built for one command, applied to a scratch copy as they are emitted so
    later records see the effect of earlier ones."""

    def __init__(self, machine: MetadataMachine) -> None:
        self.machine = machine._fork()
        self.records: list[Record] = []

    def emit(self, record: Record) -> None:
        self.machine.apply(record)
        self.records.append(record)

    def _change(self, topic: TopicInfo, p: PartitionInfo, isr: tuple[int, ...], leader: int
                ) -> None:
        if isr == p.isr and leader == p.leader:
            return
        self.emit({"type": "partition-change", "topic_id": str(topic.topic_id),
                   "index": p.index, "replicas": list(p.replicas), "isr": list(isr),
                   "leader": leader,
                   "leader_epoch": p.leader_epoch + (1 if leader != p.leader else 0),
                   "partition_epoch": p.partition_epoch + 1})

    def fence(self, broker_id: int) -> None:
        """Fence a broker: drop it from ISRs (never emptying one), move its leaderships to
        another live in-sync replica, or leave the partition leaderless."""
        self.emit({"type": "fence-broker", "broker_id": broker_id})
        m = self.machine
        for name in sorted(m._topics):
            topic = m._topics[name]
            for p in topic.partitions:
                if broker_id not in p.isr and p.leader != broker_id:
                    continue
                isr = tuple(r for r in p.isr if r != broker_id) or p.isr
                leader = p.leader
                if leader == broker_id:
                    leader = next((r for r in p.replicas if r in isr and r != broker_id
                                   and not m._brokers[r].fenced), NO_LEADER)
                self._change(m._topics[name], m._topics[name].partitions[p.index], isr, leader)

    def elect_returning(self, broker_id: int) -> None:
        """A broker came back: it leads the leaderless partitions it is in sync for (or, with
        unclean.leader.election.enable=true, any leaderless partition it is a replica of)."""
        m = self.machine
        for name in sorted(m._topics):
            topic = m._topics[name]
            unclean = topic.configs.get("unclean.leader.election.enable") == "true"
            for p in topic.partitions:
                if p.leader != NO_LEADER or broker_id not in p.replicas:
                    continue
                if broker_id in p.isr:
                    self._change(m._topics[name], p, p.isr, broker_id)
                elif unclean:
                    self._change(m._topics[name], p, (broker_id,), broker_id)
