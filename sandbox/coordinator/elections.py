"""Records for one machine command, built on a scratch copy of the state; and the leader/ISR
changes when a broker is fenced or comes back, or reports a partition's log offline or openable
again (KIP-858; Kafka's clean election, optionally unclean),
ElectLeaders (preferred or unclean) and the auto leader rebalance's choice of partitions.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sandbox.protocol.errors import (
    ELECTION_NOT_NEEDED, ELIGIBLE_LEADERS_NOT_AVAILABLE, NONE, PREFERRED_LEADER_NOT_AVAILABLE, UNKNOWN_TOPIC_OR_PARTITION,
)

from .model import NO_LEADER, PartitionInfo, TopicInfo, offline_json

if TYPE_CHECKING:
    from .machine import MetadataMachine

Record = dict[str, Any]
UNCLEAN_KEY = "unclean.leader.election.enable"


def eligible(m: MetadataMachine, r: int, topic: TopicInfo, index: int) -> bool:
    """Whether replica `r` of the partition may lead or be in its ISR: its broker is registered,
    unfenced, and did not report that partition's log offline (KIP-858)."""
    info = m._brokers.get(r)
    return info is not None and not info.fenced and not info.is_offline(topic.topic_id, index)


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
        self.emit(p.change(topic.topic_id, isr=isr, leader=leader,
                           leader_epoch=p.leader_epoch + (1 if leader != p.leader else 0)))

    def _leave(self, topic: TopicInfo, p: PartitionInfo, broker_id: int, sole_keeps_leading: bool = False) -> None:
        """broker_id out of p's ISR (never emptying it) and, where it led p, the leadership to
        another eligible in-sync replica (_successor), or none; sole_keeps_leading: a partition
        with one replica keeps it as leader (no other could lead it)."""
        if broker_id not in p.isr and p.leader != broker_id:
            return
        isr = tuple(r for r in p.isr if r != broker_id) or p.isr
        leader = p.leader
        if leader == broker_id and not (sole_keeps_leading and len(p.replicas) == 1):
            isr, leader = _successor(self.machine, topic, p, broker_id, isr)
        self._change(topic, p, isr, leader)

    def new_incarnation(self, broker_id: int) -> None:
        """A broker restarted (a new incarnation, its log maybe shorter or gone): every partition
        where it is a replica outside the ISR gets a new partition epoch, so an ISR expansion a
        leader built on the old incarnation's fetches and sent before it learned of the restart
        is refused as stale (Kafka refuses it by the broker epochs in AlterPartition, KIP-903)."""
        m = self.machine
        for name in sorted(m._topics):
            topic = m._topics[name]
            for p in topic.partitions:
                if broker_id in p.replicas and broker_id not in p.isr:
                    self.emit(p.change(topic.topic_id))

    def fence(self, broker_id: int) -> None:
        """Fence a broker: drop it from ISRs (never emptying one), move its leaderships to
        another live in-sync replica, or leave the partition leaderless."""
        self.emit({"type": "fence-broker", "broker_id": broker_id})
        m = self.machine
        for name in sorted(m._topics):
            topic = m._topics[name]
            for p in topic.partitions:
                self._leave(topic, p, broker_id)

    def offline(self, broker_id: int, keys: frozenset) -> None:
        """A broker's heartbeat reported another set of partitions whose log it cannot open
        (KIP-858's OfflineLogDirs, per partition): journaled, then each newly offline replica
        leaves the ISR (never emptying it: the last member stays, as for a fenced broker) and its
        leadership moves to another eligible in-sync replica (clean election; unclean only where
        the topic allows it), else the partition has no leader, except with one replica, where
        no other could lead it and its broker goes on answering KAFKA_STORAGE_ERROR. A replica
        reported openable again is eligible again: it leads a leaderless partition it is in sync
        for, and otherwise rejoins the ISR as any follower does (AlterPartition)."""
        m = self.machine
        before = m._brokers[broker_id].offline
        self.emit({"type": "offline-replicas", "broker_id": broker_id, "partitions": offline_json(keys)})
        for name in sorted(m._topics):
            topic = m._topics[name]
            for p in topic.partitions:
                key = (topic.topic_id, p.index)
                if key in keys and key not in before:
                    self._leave(topic, p, broker_id, sole_keeps_leading=True)
                elif key in before and key not in keys and p.leader == NO_LEADER \
                        and eligible(m, broker_id, topic, p.index):
                    if broker_id in p.isr:
                        self._change(topic, p, p.isr, broker_id)
                    elif topic.configs.get(UNCLEAN_KEY) == "true":
                        self._change(topic, p, (broker_id,), broker_id)

    def elect_returning(self, broker_id: int) -> None:
        """A broker came back: it leads the leaderless partitions it is in sync for (or, with
        unclean.leader.election.enable=true, any leaderless partition it is a replica of)."""
        m = self.machine
        for name in sorted(m._topics):
            topic = m._topics[name]
            unclean = topic.configs.get("unclean.leader.election.enable") == "true"
            for p in topic.partitions:
                if p.leader != NO_LEADER or broker_id not in p.replicas \
                        or not eligible(m, broker_id, topic, p.index):
                    continue
                if broker_id in p.isr:
                    self._change(m._topics[name], p, p.isr, broker_id)
                elif unclean:
                    self._change(m._topics[name], p, (broker_id,), broker_id)

    def elect_unclean(self, name: str) -> None:
        """unclean.leader.election.enable just turned on for `name`: each of its leaderless
        partitions gets a live replica as leader at once (data may be lost, as in Kafka), rather
        than when some replica next registers."""
        topic = self.machine._topics[name]
        for p in topic.partitions:
            if p.leader == NO_LEADER:
                pick = _unclean_pick(self.machine, topic, p)
                if pick is not None:
                    self._change(self.machine._topics[name], p, p.isr if pick in p.isr else (pick,), pick)


def _successor(m: MetadataMachine, topic: TopicInfo, p: PartitionInfo, leaving: int,
               isr: tuple[int, ...]) -> tuple[tuple[int, ...], int]:
    """(ISR, leader) once the leader `leaving` cannot lead: another eligible in-sync replica,
    else (with unclean.leader.election.enable=true) any eligible replica with an ISR of itself
    (data may be lost, as in Kafka: at once, not when some replica next registers), else none."""
    leader = next((r for r in p.replicas if r in isr and r != leaving and eligible(m, r, topic, p.index)),
                  NO_LEADER)
    if leader == NO_LEADER and topic.configs.get(UNCLEAN_KEY) == "true":
        leader = next((r for r in p.replicas if r != leaving and eligible(m, r, topic, p.index)), NO_LEADER)
        if leader != NO_LEADER:
            isr = (leader,)
    return isr, leader


def _unclean_pick(m: MetadataMachine, topic: TopicInfo, p: PartitionInfo) -> int | None:
    """The replica an unclean election picks: an eligible in-sync one if any, else the first
    eligible one."""
    live = [r for r in p.replicas if eligible(m, r, topic, p.index)]
    return next((r for r in live if r in p.isr), live[0] if live else None)


PREFERRED, UNCLEAN = 0, 1   # ElectLeaders election types


def elect_leaders(machine: MetadataMachine, election_type: int, pairs: list[tuple[str, int]]
                  ) -> tuple[list[Record], dict[tuple[str, int], tuple[int, str | None]]]:
    """ElectLeaders: PREFERRED moves leadership back to the first replica where it is alive and
    in sync; UNCLEAN gives a leaderless partition any live replica (data may be lost, as in
    Kafka). Returns the records and (error code, message) per partition."""
    draft = Draft(machine)
    m = draft.machine
    out: dict[tuple[str, int], tuple[int, str | None]] = {}
    for name, index in pairs:
        topic = m._topics.get(name)
        if topic is None or not 0 <= index < len(topic.partitions):
            out[(name, index)] = (UNKNOWN_TOPIC_OR_PARTITION, "The partition does not exist.")
            continue
        p = topic.partitions[index]
        if election_type == UNCLEAN:
            if p.leader != NO_LEADER:
                out[(name, index)] = (ELECTION_NOT_NEEDED, "Leader election not needed for topic partition.")
                continue
            pick = _unclean_pick(m, topic, p)
            if pick is None:
                out[(name, index)] = (ELIGIBLE_LEADERS_NOT_AVAILABLE, f"No replica of {name}-{index} is alive.")
                continue
            draft._change(topic, p, p.isr if pick in p.isr else (pick,), pick)
        else:
            preferred = p.replicas[0]
            if p.leader == preferred:
                out[(name, index)] = (ELECTION_NOT_NEEDED, "Leader election not needed for topic partition.")
                continue
            if not eligible(m, preferred, topic, index) or preferred not in p.isr:
                # Kafka's ReplicationControlManager: PREFERRED_LEADER_NOT_AVAILABLE for a preferred
                # election (ELIGIBLE_LEADERS_NOT_AVAILABLE is the unclean one's)
                out[(name, index)] = (PREFERRED_LEADER_NOT_AVAILABLE, f"The preferred leader of {name}-{index} "
                                      f"(broker {preferred}) is not alive and in sync.")
                continue
            draft._change(topic, p, p.isr, preferred)
        out[(name, index)] = (NONE, None)
    return draft.records, out


def imbalanced(machine: MetadataMachine) -> list[tuple[str, int]]:
    """Kafka's auto leader rebalance under KRaft (ReplicationControlManager's
    maybeBalancePartitionLeaders): every partition not led by its preferred replica (the first)
    while that replica is alive and in sync gets a preferred election. (The ZooKeeper-era
    leader.imbalance.per.broker.percentage is not used by KRaft: one partition off is enough.)"""
    out = []
    for name in sorted(machine._topics):
        topic = machine._topics[name]
        for p in topic.partitions:
            if not p.replicas or p.leader == p.replicas[0] or p.replicas[0] not in p.isr:
                continue
            if eligible(machine, p.replicas[0], topic, p.index):
                out.append((name, p.index))
    return out
