"""The classic consumer-group state machine, sans-io: JoinGroup/SyncGroup/Heartbeat/LeaveGroup
as events on groups whose states move only through TRANSITIONS (group_transitions.py). Time comes from an injected
clock, deadlines are data, and parked requests are answered through an outbox of (request id, result)."""
from __future__ import annotations

import uuid
from typing import Any, Callable

from sandbox.broker.group_model import (
    COMPLETING, DEAD, EMPTY, PREPARING, STABLE, Group, GroupDescription, JoinResult, Member, Parked, SyncResult, check_member,
    consumer_subscription_topics, join_error, select_protocol, supports, sync_error, update_member,
)
from sandbox.broker.group_transitions import (  # noqa: F401  (the events, TRANSITIONS, InvalidTransition: this machine's API too)
    ALL_JOINED, COMMIT_ANSWER, GROUP_DELETED, HEARTBEAT_ANSWER, LEADER_SYNCED, MEMBER_EXPIRED, MEMBER_JOINED,
    MEMBER_LEFT, NOBODY_JOINED, REBALANCE_TIMEOUT, TRANSITIONS, GroupStates, InvalidTransition,
)
from sandbox.protocol.errors import (
    GROUP_MAX_SIZE_REACHED,
    COORDINATOR_NOT_AVAILABLE, FENCED_INSTANCE_ID, ILLEGAL_GENERATION, INCONSISTENT_GROUP_PROTOCOL,
    INVALID_GROUP_ID, INVALID_SESSION_TIMEOUT, MEMBER_ID_REQUIRED, NONE, NOT_COORDINATOR, REBALANCE_IN_PROGRESS,
    UNKNOWN_MEMBER_ID,
)


class GroupMachine(GroupStates):
    """Every classic group of one coordinator. Feed it events (join, sync, heartbeat, leave,
    abandon, tick); collect the answers to parked requests with drain()."""

    def __init__(self, clock: Callable[[], float], *, initial_rebalance_delay_ms: int = 0,
                 min_session_timeout_ms: int = 1000, max_session_timeout_ms: int = 1800000,
                 on_event: Callable[[str, dict[str, Any]], None] | None = None,
                 new_member_id: Callable[[str], str] | None = None, max_size: int = 2**31 - 1) -> None:
        self.clock = clock
        self.max_size = max_size   # group.max.size
        self.initial_delay_s = initial_rebalance_delay_ms / 1000
        self.min_session_ms = min_session_timeout_ms
        self.max_session_ms = max_session_timeout_ms
        self.groups: dict[str, Group] = {}
        self.parked: dict[int, Parked] = {}
        self._outbox: list[tuple[int, JoinResult | SyncResult]] = []
        self._removed: list[str] = []
        self._on_event = on_event
        self._new_id = new_member_id or (lambda client_id: f"{client_id}-{uuid.uuid4()}")

    # ------------------------------------------------------------------ outputs
    def drain(self) -> list[tuple[int, JoinResult | SyncResult]]:
        """Answers for parked requests produced since the last drain, in order."""
        out, self._outbox = self._outbox, []
        return out

    def deadline(self, request: int) -> float:
        """When a parked request is answered at the latest (if nothing else answers it first)."""
        p = self.parked[request]
        group = self.groups[p.group_id]
        if p.kind == "join":
            due = group.initial_until if group.initial_until is not None else group.join_deadline
            assert due is not None, "a parked JoinGroup outside PreparingRebalance"
            return due
        leader = group.members[group.leader]  # type: ignore[index]
        assert leader.sync_due is not None, "a parked SyncGroup waits for a leader that has not synced"
        return leader.sync_due

    def overdue(self, now: float) -> list[int]:
        """Parked requests past their deadline: always empty right after tick(now)."""
        return [r for r in self.parked if self.deadline(r) <= now]

    # ------------------------------------------------------------------ JoinGroup
    def join(self, request: int, group_id: str, member_id: str, instance_id: str | None, protocol_type: str,
             protocols: list[tuple[str, bytes]], session_timeout_ms: int, rebalance_timeout_ms: int,
             client_id: str, client_host: str, require_known_member_id: bool,
             reason: str | None = None, supports_skip: bool = True) -> JoinResult | None:
        """A JoinGroup: its answer, or None when it is parked until the rebalance completes.
        `supports_skip`: the request's version (v9+) has skip_assignment (KIP-814)."""
        now = self.clock()
        if not group_id:
            return join_error(INVALID_GROUP_ID, member_id)
        if not self.min_session_ms <= session_timeout_ms <= self.max_session_ms:
            return join_error(INVALID_SESSION_TIMEOUT, member_id)
        group = self.groups.get(group_id)
        if group is None and member_id:
            return join_error(UNKNOWN_MEMBER_ID, member_id)
        if not supports(group, protocol_type, protocols):
            return join_error(INCONSISTENT_GROUP_PROTOCOL, member_id)
        if group is None:
            group = self.groups[group_id] = Group(group_id)
        protocols = [(str(n), bytes(m)) for n, m in protocols]
        info = (client_id, client_host, protocols, session_timeout_ms, rebalance_timeout_ms)
        why = reason or "member joined"
        if member_id and group.fenced(instance_id, member_id):
            return join_error(FENCED_INSTANCE_ID, member_id)
        if not self._accepts(group, member_id):
            group.pending.pop(member_id, None)
            return join_error(GROUP_MAX_SIZE_REACHED, "")
        if not member_id:
            if instance_id and instance_id in group.static:
                return self._join_static(request, group, instance_id, protocol_type, info, why, now, supports_skip)
            member_id = self._new_id(client_id)
            if require_known_member_id and not instance_id:
                group.pending[member_id] = now + session_timeout_ms / 1000
                return join_error(MEMBER_ID_REQUIRED, member_id)
        elif member_id in group.pending:
            del group.pending[member_id]
        elif member_id not in group.members or group.state == EMPTY:
            return join_error(UNKNOWN_MEMBER_ID, member_id)
        else:
            return self._join_existing(request, group, group.members[member_id], protocol_type, info, why, now)
        # a new member
        if not group.members:
            group.protocol_type = protocol_type
        m = group.members[member_id] = Member(member_id, instance_id, *info)
        m.heartbeat_deadline = now + m.session_s
        if instance_id:
            group.static[instance_id] = member_id
        group.leader = group.leader or member_id
        if group.state == PREPARING and group.initial_until is not None:  # the initial delay goes on
            group.new_member_added = True
        return self._park_join(request, group, m, why, now)

    def _accepts(self, group: Group, member_id: str) -> bool:
        """group.max.size, as Kafka's acceptJoiningMember decides it: while a rebalance gathers
        members, those already waiting count; otherwise every member does; a member of the group
        (by its member id) is always taken."""
        member = group.members.get(member_id) if member_id else None
        if group.state in (EMPTY, DEAD):
            return True
        if group.state == PREPARING:
            return (member is not None and member.join is not None) or \
                sum(1 for m in group.members.values() if m.join is not None) < self.max_size
        return member is not None or len(group.members) < self.max_size

    def _join_existing(self, request: int, group: Group, m: Member, protocol_type: str, info: tuple,
                       why: str, now: float) -> JoinResult | None:
        unchanged = m.protocols == info[2]
        if unchanged and (group.state == COMPLETING or (group.state == STABLE and m.member_id != group.leader)):
            # the same metadata (a lost JoinGroup response, or a follower's idle rejoin): the current generation
            m.heartbeat_deadline = now + m.session_s
            return self._current_join(group, m)
        update_member(group, m, protocol_type, info)
        m.heartbeat_deadline = now + m.session_s
        return self._park_join(request, group, m, why, now)

    def _join_static(self, request: int, group: Group, instance_id: str, protocol_type: str, info: tuple,
                     why: str, now: float, supports_skip: bool) -> JoinResult | None:
        """KIP-345: a known group.instance.id joins without member id: the old id is fenced and replaced
        (Kafka's updateStaticMemberThenRebalanceOrCompleteJoin)."""
        old_id, old_leader = group.static[instance_id], group.leader
        m = group.members[old_id]
        new_id = self._new_id(info[0])
        if m.join is not None:
            self._answer(m.join, join_error(FENCED_INSTANCE_ID, old_id))
        if m.sync is not None:
            self._answer(m.sync, sync_error(FENCED_INSTANCE_ID))
        m.join = m.sync = None
        m.member_id = new_id
        group.members = {(new_id if k == old_id else k): v for k, v in group.members.items()}
        group.static[instance_id] = new_id
        if group.leader == old_id:
            group.leader = new_id
        update_member(group, m, protocol_type, info)
        m.heartbeat_deadline = now + m.session_s
        if group.state == STABLE and group.protocol == select_protocol(group):
            # the group's protocol stays: no rebalance, the current generation; a leader that can skip
            # the assignment gets the members (and skips it), an older one the leader id from before
            res = self._current_join(group, m)
            if supports_skip:
                return res._replace(skip_assignment=new_id == group.leader)
            return res._replace(members=[], leader=old_leader or "")
        return self._park_join(request, group, m, why, now)

    def _park_join(self, request: int, group: Group, m: Member, why: str, now: float) -> JoinResult | None:
        """Mark a member as (re)joined, start or advance the rebalance; None while its answer waits."""
        if m.join is not None:  # a retried JoinGroup supersedes the parked one
            self._answer(m.join, join_error(REBALANCE_IN_PROGRESS, m.member_id))
        m.join = request
        self.parked[request] = Parked("join", group.group_id, m.member_id, now)
        self._fire(group, MEMBER_JOINED, now, reason=why)
        if group.state == PREPARING:
            self._maybe_complete(group, now)
        return self._take(request)

    # ------------------------------------------------------------------ SyncGroup
    def sync(self, request: int, group_id: str, generation_id: int, member_id: str, instance_id: str | None,
             protocol_type: str | None, protocol_name: str | None,
             assignments: dict[str, bytes]) -> SyncResult | None:
        """A SyncGroup: its answer, or None while a follower waits for the leader's assignment."""
        now = self.clock()
        group = self.groups.get(group_id)
        code = check_member(group_id, group, generation_id, member_id, instance_id)
        if code or group is None:
            return sync_error(code)
        if (protocol_type and protocol_type != group.protocol_type) or (
                protocol_name and protocol_name != group.protocol):
            return sync_error(INCONSISTENT_GROUP_PROTOCOL)
        m = group.members[member_id]
        m.heartbeat_deadline = now + m.session_s
        if group.state == PREPARING:
            return sync_error(REBALANCE_IN_PROGRESS)
        m.synced = True
        if group.state == STABLE:
            return SyncResult(NONE, group.protocol_type, group.protocol, m.assignment)
        if m.sync is not None:  # a retried SyncGroup supersedes the parked one
            self._answer(m.sync, sync_error(REBALANCE_IN_PROGRESS))
        m.sync = request
        self.parked[request] = Parked("sync", group.group_id, member_id, now)
        if member_id == group.leader:
            for mm in group.members.values():
                mm.assignment = bytes(assignments.get(mm.member_id, b""))
            self._fire(group, LEADER_SYNCED, now)
        return self._take(request)

    # ------------------------------------------------------------------ Heartbeat / LeaveGroup / commits
    def heartbeat(self, group_id: str, generation_id: int, member_id: str, instance_id: str | None) -> int:
        group = self.groups.get(group_id)
        code = check_member(group_id, group, generation_id, member_id, instance_id)
        if code or group is None:
            return code
        m = group.members[member_id]
        m.heartbeat_deadline = self.clock() + m.session_s
        return HEARTBEAT_ANSWER[group.state]

    def commit_check(self, group_id: str, generation_id: int, member_id: str, instance_id: str | None,
                     *, transactional: bool = False) -> int:
        """May this member commit offsets now? (NONE, or the error every partition gets.)
        transactional: a TxnOffsetCommit, whose group state Kafka does not enforce
        (ClassicGroup.validateOffsetCommit: REBALANCE_IN_PROGRESS while CompletingRebalance is
        for plain commits only; the Java producer takes it as fatal, aiokafka raises it)."""
        group = self.groups.get(group_id)
        if group is None:
            return NONE if generation_id < 0 else ILLEGAL_GENERATION
        if group.fenced(instance_id, member_id):
            return FENCED_INSTANCE_ID
        if generation_id < 0 and group.state == EMPTY:
            return NONE  # a simple (standalone) consumer: Kafka used only as an offset store
        if member_id not in group.members:
            return UNKNOWN_MEMBER_ID
        if generation_id != group.generation:
            return ILLEGAL_GENERATION
        code = NONE if transactional else COMMIT_ANSWER[group.state]
        if code == NONE:
            m = group.members[member_id]
            m.heartbeat_deadline = self.clock() + m.session_s
        return code

    def leave(self, group_id: str, members: list[tuple[str, str | None]]
              ) -> tuple[int, list[tuple[str, str | None, int]]]:
        if not group_id:
            return INVALID_GROUP_ID, []
        group = self.groups.get(group_id)
        if group is None:
            return NONE, [(mid, iid, UNKNOWN_MEMBER_ID) for mid, iid in members]
        now = self.clock()
        out, left = [], False
        for mid, iid in members:   # each answered with the member id it was named by ("" for an instance id only)
            if not mid:  # KIP-345: leave by group.instance.id (an admin removing a static member)
                holder = group.static.get(iid) if iid else None
                if holder is None:
                    out.append((mid, iid, UNKNOWN_MEMBER_ID))
                    continue
                self._remove(group, holder, "left")
                left = True
                out.append((mid, iid, NONE))
            elif mid in group.pending:
                del group.pending[mid]
                out.append((mid, iid, NONE))
            elif iid and iid not in group.static:   # Kafka's validateMember
                out.append((mid, iid, UNKNOWN_MEMBER_ID))
            elif group.fenced(iid, mid):
                out.append((mid, iid, FENCED_INSTANCE_ID))
            elif mid in group.members:
                self._remove(group, mid, "left")
                left = True
                out.append((mid, iid, NONE))
            else:
                out.append((mid, iid, UNKNOWN_MEMBER_ID))
        if left:
            self._fire(group, MEMBER_LEFT, now)
        if group.state == PREPARING:
            self._maybe_complete(group, now)
        return NONE, out

    # ------------------------------------------------------------------ client gone / timers / shutdown
    def abandon(self, request: int) -> None:
        """The client of a parked request is gone (its connection closed): the answer can never be
        read. A JoinGroup's member is removed (the rebalance waits only for live members); a
        SyncGroup's member no longer counts as synced and must sync again by its deadline."""
        p = self.parked.get(request)
        if p is None:
            return
        now = self.clock()
        group = self.groups[p.group_id]
        m = group.members[p.member_id]
        if p.kind == "sync":
            m.sync = None
            m.synced = False
            self._answer(request, sync_error(REBALANCE_IN_PROGRESS))
            return
        self._remove(group, m.member_id, "client gone")
        self._fire(group, MEMBER_EXPIRED, now)
        if group.state == PREPARING:
            self._maybe_complete(group, now)

    def tick(self, now: float | None = None) -> list[str]:
        """Run every timer due by `now`: pending ids, sessions, SyncGroup deadlines, rebalance
        timeouts, the initial delay. Returns the member ids removed."""
        now = self.clock() if now is None else now
        self._removed = []
        for group in list(self.groups.values()):
            for pid in [p for p, dl in group.pending.items() if now >= dl]:
                del group.pending[pid]
            late = [m for m in group.members.values() if _late(m, now)]
            for m in late:
                self._remove(group, m.member_id, "no SyncGroup in time" if _sync_late(m, now) else "session timeout")
            if late:
                self._fire(group, MEMBER_EXPIRED, now)
            if group.state == PREPARING:
                self._maybe_complete(group, now, force=group.join_deadline is not None and now >= group.join_deadline)
        removed, self._removed = self._removed, []
        return removed

    def hold(self, group_id: str, elapsed: float) -> None:
        """The group's timers stand still for `elapsed` seconds: its coordinator could not vouch
        for it meanwhile and refused its members' heartbeats (see GroupCoordinator.expire)."""
        group = self.groups.get(group_id)
        if group is None:
            return
        for pid in group.pending:
            group.pending[pid] += elapsed
        if group.join_deadline is not None:
            group.join_deadline += elapsed
        if group.initial_until is not None:
            group.initial_until += elapsed
        for m in group.members.values():
            m.heartbeat_deadline += elapsed
            if m.sync_due is not None:
                m.sync_due += elapsed

    def shutdown(self) -> None:
        """Answer every parked request with COORDINATOR_NOT_AVAILABLE (the broker is stopping)."""
        for request, p in list(self.parked.items()):
            m = self.groups[p.group_id].members[p.member_id]
            if p.kind == "join":
                m.join = None
                self._answer(request, join_error(COORDINATOR_NOT_AVAILABLE, p.member_id))
            else:
                m.sync = None
                self._answer(request, sync_error(COORDINATOR_NOT_AVAILABLE))

    # ------------------------------------------------------------------ admin
    def describe(self, group_id: str) -> GroupDescription | None:
        group = self.groups.get(group_id)
        if group is None:
            return None
        stable = group.state == STABLE
        members = [(m.member_id, m.instance_id, m.client_id, m.client_host,
                    m.metadata(group.protocol) if stable else b"", m.assignment if stable else b"")
                   for m in group.members.values()]
        return GroupDescription(NONE, group_id, group.state, group.protocol_type or "",
                                (group.protocol or "") if stable else "", members)

    def delete(self, group_id: str) -> bool:
        """Drop an empty group (DeleteGroups): False if it has members."""
        group = self.groups.get(group_id)
        if group is None:
            return True
        if group.state != EMPTY:
            return False
        self._fire(group, GROUP_DELETED, self.clock())
        return True

    # ------------------------------------------------------------------ online migration (KIP-848)
    def forget(self, group_id: str) -> None:
        """This broker no longer coordinates the group (its `__consumer_offsets` partition is led
        elsewhere): it is dropped whatever its state, so members and generations from before are
        never trusted again should the partition come back; parked JoinGroup and SyncGroup
        requests are told NOT_COORDINATOR (they find the new coordinator), as Kafka's unload does."""
        group = self.groups.pop(group_id, None)
        if group is not None:
            self._answer_parked(group, NOT_COORDINATOR)

    def release(self, group_id: str) -> Group:
        """Hand a group over to the consumer-group coordinator (a `consumer`-protocol member joined
        it): its parked JoinGroup and SyncGroup requests are told to rejoin, and it is forgotten."""
        group = self.groups.pop(group_id)
        self._answer_parked(group, REBALANCE_IN_PROGRESS)
        return group

    def _answer_parked(self, group: Group, code: int) -> None:
        """Answer every JoinGroup and SyncGroup parked in a group that is leaving this machine."""
        for m in group.members.values():
            if m.join is not None:
                self._answer(m.join, join_error(code, m.member_id))
            if m.sync is not None:
                self._answer(m.sync, sync_error(code))
            m.join = m.sync = None
        group.pending.clear()

    def adopt(self, group: Group) -> None:
        """Take back a group whose last `consumer`-protocol member left: Stable at the consumer
        group's epoch with every member's partitions, then a rebalance at once, so the members
        rejoin and their leader assigns again (Kafka's convertToClassicGroup)."""
        now = self.clock()
        for m in group.members.values():
            m.heartbeat_deadline = now + m.session_s
            m.new, m.synced = False, True
        self.groups[group.group_id] = group
        self._fire(group, MEMBER_LEFT, now, reason="the last consumer-protocol member left")

    def subscribed_topics(self, group_id: str) -> set[str] | None:
        """Topics the members of a consumer group subscribe to; None when unknown (not a consumer
        group, no protocol chosen yet, unreadable metadata): then every topic counts as subscribed."""
        group = self.groups.get(group_id)
        if group is None or not group.members:
            return set()
        if group.protocol_type != "consumer" or group.protocol is None:
            return None
        topics: set[str] = set()
        for m in group.members.values():
            found = consumer_subscription_topics(m.metadata(group.protocol))
            if found is None:
                return None
            topics |= found
        return topics

def _sync_late(m: Member, now: float) -> bool:
    return m.sync is None and not m.synced and m.sync_due is not None and now >= m.sync_due


def _late(m: Member, now: float) -> bool:
    """Past its session (and not parked in a JoinGroup or SyncGroup), or past its SyncGroup deadline."""
    if m.join is not None:
        return False
    return _sync_late(m, now) or (m.sync is None and now >= m.heartbeat_deadline)
