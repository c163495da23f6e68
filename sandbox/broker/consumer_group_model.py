"""What the KIP-848 consumer group coordinator knows: member and group states,
members and groups as data (deadlines included), and the results handed back to clients."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from sandbox.broker.consumer_assignors import DEFAULT_ASSIGNOR, TP

LEAVE_EPOCH, LEAVE_STATIC_EPOCH = -1, -2

# Group states (ConsumerGroupState), as ListGroups and ConsumerGroupDescribe spell them
EMPTY, ASSIGNING, RECONCILING, STABLE, DEAD = "Empty", "Assigning", "Reconciling", "Stable", "Dead"

# Member states (how far a member is from its target assignment)
M_STABLE = "stable"                # holds its target assignment at the target epoch
M_UNREVOKED = "unrevoked"          # must give up partitions first (it keeps its epoch meanwhile)
M_UNRELEASED = "unreleased"        # at the target epoch, waiting for partitions others still hold

# Topics Kafka never matches by regular expression
INTERNAL_TOPICS = frozenset({"__consumer_offsets", "__transaction_state", "__share_group_state"})


class HeartbeatResult(NamedTuple):
    error_code: int
    error_message: str | None = None
    member_id: str | None = None
    member_epoch: int = 0
    heartbeat_interval_ms: int = 0
    assignment: dict[str, list[int]] | None = None  # topic name -> partitions; None = unchanged


class MemberView(NamedTuple):
    member_id: str
    instance_id: str | None
    rack_id: str | None
    member_epoch: int
    client_id: str
    client_host: str
    topic_names: tuple[str, ...]
    topic_regex: str | None
    assignment: dict[str, list[int]]
    target: dict[str, list[int]]
    classic: bool = False   # still speaks the classic protocol (JoinGroup, SyncGroup, Heartbeat)


class GroupView(NamedTuple):
    group_id: str
    state: str
    group_epoch: int
    assignment_epoch: int
    assignor: str
    members: list[MemberView]


@dataclass(eq=False)
class ClassicMeta:
    """A member of a consumer group that still speaks the classic protocol (an online migration):
    what its JoinGroup said, and its timers. Its session is its own session.timeout.ms; it is
    fenced if it does not send SyncGroup after a JoinGroup answer, or JoinGroup after being told
    to rejoin (REBALANCE_IN_PROGRESS), within its rebalance timeout."""
    protocols: list[tuple[str, bytes]]
    session_timeout_ms: int
    sync_deadline: float | None = None
    join_deadline: float | None = None

    @property
    def protocol_name(self) -> str:
        return self.protocols[0][0]

    def subscription_version(self, protocol: str | None = None) -> int:
        """The version of its ConsumerProtocolSubscription (of `protocol`, else the first): its
        assignment is encoded in the same version."""
        data = next((md for n, md in self.protocols if n == protocol), self.protocols[0][1])
        return int.from_bytes(data[:2], "big", signed=True) if len(data) >= 2 else 0


@dataclass(eq=False)
class CMember:
    member_id: str
    instance_id: str | None = None
    rack_id: str | None = None
    client_id: str = ""
    client_host: str = ""
    rebalance_timeout_ms: int = 300_000
    topic_names: tuple[str, ...] = ()
    topic_regex: str | None = None
    assignor: str | None = None
    epoch: int = 0
    previous_epoch: int = -1
    state: str = M_STABLE
    assigned: frozenset[TP] = frozenset()
    revoking: frozenset[TP] = frozenset()
    session_deadline: float = 0.0
    revoke_deadline: float | None = None  # M_UNREVOKED: fenced if the partitions are not given up by then
    classic: ClassicMeta | None = None     # a member of a classic group that became a consumer group
    visible: frozenset[str] | None = None  # held to ACLs: the topics its regex may match (None: all)

    def holds(self) -> frozenset[TP]:
        return self.assigned | self.revoking


@dataclass(eq=False)
class CGroup:
    group_id: str
    epoch: int = 0
    assignment_epoch: int = 0
    members: dict[str, CMember] = field(default_factory=dict)
    static: dict[str, str] = field(default_factory=dict)          # instance id -> member id
    target: dict[str, frozenset[TP]] = field(default_factory=dict)  # member id -> target partitions
    metadata: dict[str, tuple[str, int]] = field(default_factory=dict)  # subscribed topic -> (id, partitions)
    owners: dict[TP, str] = field(default_factory=dict)           # partition -> member holding it
    assignor: str = DEFAULT_ASSIGNOR

    @property
    def state(self) -> str:
        if not self.members:
            return EMPTY
        if self.epoch > self.assignment_epoch:
            return ASSIGNING
        if any(m.epoch != self.assignment_epoch or m.state != M_STABLE for m in self.members.values()):
            return RECONCILING
        return STABLE


def by_topic(tps) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for t, p in sorted(tps):
        out.setdefault(t, []).append(p)
    return out


def error(code: int, message: str | None = None, member_id: str | None = None) -> HeartbeatResult:
    return HeartbeatResult(code, message, member_id, 0)
