"""What the classic group coordinator knows: group states, members and groups as
data (deadlines included), the results handed back to clients, and small pure helpers on them."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from sandbox.protocol.consumer_protocol import decode_subscription
from sandbox.protocol.errors import (
    FENCED_INSTANCE_ID, ILLEGAL_GENERATION, INVALID_GROUP_ID, NONE, UNKNOWN_MEMBER_ID,
)

EMPTY, PREPARING, COMPLETING, STABLE, DEAD = (
    "Empty", "PreparingRebalance", "CompletingRebalance", "Stable", "Dead")


class JoinResult(NamedTuple):
    error_code: int
    generation_id: int
    protocol_type: str | None
    protocol_name: str | None
    leader: str
    member_id: str
    members: list[tuple[str, str | None, bytes]]  # (member_id, group_instance_id, metadata); leader only
    skip_assignment: bool = False


class SyncResult(NamedTuple):
    error_code: int
    protocol_type: str | None
    protocol_name: str | None
    assignment: bytes


class GroupDescription(NamedTuple):
    error_code: int
    group_id: str
    state: str
    protocol_type: str
    protocol: str
    # (member_id, group_instance_id, client_id, client_host, metadata, assignment)
    members: list[tuple[str, str | None, str, str, bytes, bytes]]


@dataclass(eq=False)
class Member:
    member_id: str
    instance_id: str | None
    client_id: str
    client_host: str
    protocols: list[tuple[str, bytes]]
    session_timeout_ms: int
    rebalance_timeout_ms: int
    heartbeat_deadline: float = 0.0  # session expiry, unless a JoinGroup or SyncGroup is parked
    new: bool = True                 # never answered a JoinGroup yet (KIP-394)
    join: int | None = None          # parked JoinGroup request id
    sync: int | None = None          # parked SyncGroup request id
    sync_due: float | None = None    # CompletingRebalance/Stable: SyncGroup must arrive by then...
    synced: bool = False             # ...unless it did (this generation)
    assignment: bytes = b""

    def metadata(self, protocol: str | None) -> bytes:
        return next((m for n, m in self.protocols if n == protocol), b"")

    @property
    def session_s(self) -> float:
        return self.session_timeout_ms / 1000


@dataclass(eq=False)
class Group:
    group_id: str
    state: str = EMPTY
    generation: int = 0
    protocol_type: str | None = None
    protocol: str | None = None
    leader: str | None = None
    members: dict[str, Member] = field(default_factory=dict)
    pending: dict[str, float] = field(default_factory=dict)  # MEMBER_ID_REQUIRED ids -> expiry
    static: dict[str, str] = field(default_factory=dict)  # group_instance_id -> member_id
    join_deadline: float | None = None  # PreparingRebalance: the rebalance timeout
    # PreparingRebalance from Empty, Kafka's delayed initial join: the current window ends at
    # initial_until; it lasted initial_window_s, initial_remaining_s is what the next ones may
    # take, and a new member joining during it (new_member_added) earns one more
    initial_until: float | None = None
    initial_window_s: float = 0.0
    initial_remaining_s: float = 0.0
    new_member_added: bool = False

    def fenced(self, instance_id: str | None, member_id: str) -> bool:
        return bool(instance_id) and self.static.get(instance_id, member_id) != member_id

    def max_rebalance_s(self) -> float:
        return max((m.rebalance_timeout_ms for m in self.members.values()), default=0) / 1000


class Parked(NamedTuple):
    kind: str  # "join" or "sync"
    group_id: str
    member_id: str
    since: float


def join_error(code: int, member_id: str = "") -> JoinResult:
    return JoinResult(code, -1, None, None, "", member_id, [])


def sync_error(code: int) -> SyncResult:
    return SyncResult(code, None, None, b"")


def check_member(group_id: str, group: Group | None, generation_id: int, member_id: str,
                  instance_id: str | None) -> int:
    if not group_id:
        return INVALID_GROUP_ID
    if group is None:
        return UNKNOWN_MEMBER_ID
    if group.fenced(instance_id, member_id):
        return FENCED_INSTANCE_ID
    if member_id not in group.members or group.state == EMPTY:
        return UNKNOWN_MEMBER_ID
    if generation_id != group.generation:
        return ILLEGAL_GENERATION
    return NONE


def supports(group: Group | None, protocol_type: str, protocols: list[tuple[str, bytes]]) -> bool:
    """Kafka's ClassicGroup.supportsProtocols: an Empty group takes any protocol type and protocols;
    otherwise the group's protocol type, and a protocol every member supports now (the joiner's
    current protocols count too: a lone member cannot switch to a protocol by rejoining)."""
    if group is None or group.state == EMPTY:
        return bool(protocol_type) and bool(protocols)
    if protocol_type != group.protocol_type:
        return False
    return any(all(any(n == x for x, _ in m.protocols) for m in group.members.values()) for n, _ in protocols)


def update_member(group: Group, m: Member, protocol_type: str, info: tuple) -> None:
    m.client_id, m.client_host, m.protocols, m.session_timeout_ms, m.rebalance_timeout_ms = info
    if len(group.members) == 1:
        group.protocol_type = protocol_type


def select_protocol(group: Group) -> str:
    members = list(group.members.values())
    leader = group.members[group.leader]  # type: ignore[index]
    common = [n for n, _ in leader.protocols if all(n in {x for x, _ in m.protocols} for m in members)]
    if not common:
        return leader.protocols[0][0]
    votes = dict.fromkeys(common, 0)
    for m in members:
        votes[next(n for n, _ in m.protocols if n in votes)] += 1
    return max(common, key=lambda n: votes[n])  # ties: the leader's preference


def consumer_subscription_topics(metadata: bytes) -> set[str] | None:
    """The topics of a ConsumerProtocolSubscription (any version); None if the bytes are not one."""
    sub = decode_subscription(metadata)
    return None if sub is None else set(sub.topics)
