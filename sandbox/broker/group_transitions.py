"""The classic group's state diagram: the events, the one TRANSITIONS table, the answers that depend
on the state alone, and GroupStates, which moves a group along the table and runs the entry actions
of the state it enters (new generation, answers to parked JoinGroups and SyncGroups)."""
from __future__ import annotations

from typing import Any, Callable

from sandbox.broker.group_model import (
    COMPLETING, DEAD, EMPTY, PREPARING, STABLE, Group, JoinResult, Member, Parked, SyncResult, join_error,
    select_protocol, sync_error,
)
from sandbox.protocol.errors import NONE, REBALANCE_IN_PROGRESS, UNKNOWN_MEMBER_ID

# What moves a group from one state to another.
MEMBER_JOINED = "member-joined"          # a new member, changed metadata, or the leader rejoining
MEMBER_LEFT = "member-left"              # LeaveGroup
MEMBER_EXPIRED = "member-expired"        # no heartbeat within the session timeout, no SyncGroup in time
ALL_JOINED = "all-joined"                # every member rejoined (or the initial delay ran out)
REBALANCE_TIMEOUT = "rebalance-timeout"  # the join phase hit the rebalance timeout: go with who joined
NOBODY_JOINED = "nobody-joined"          # the join phase ended with no member left
LEADER_SYNCED = "leader-synced"          # the leader's SyncGroup carried the assignment
GROUP_DELETED = "group-deleted"          # DeleteGroups / last offsets of an empty group deleted

# The one table of transitions: state -> event -> next state. Anything else is a bug.
TRANSITIONS: dict[str, dict[str, str]] = {
    EMPTY: {MEMBER_JOINED: PREPARING, GROUP_DELETED: DEAD},
    PREPARING: {MEMBER_JOINED: PREPARING, MEMBER_LEFT: PREPARING, MEMBER_EXPIRED: PREPARING,
                ALL_JOINED: COMPLETING, REBALANCE_TIMEOUT: COMPLETING, NOBODY_JOINED: EMPTY},
    COMPLETING: {MEMBER_JOINED: PREPARING, MEMBER_LEFT: PREPARING, MEMBER_EXPIRED: PREPARING,
                 LEADER_SYNCED: STABLE},
    STABLE: {MEMBER_JOINED: PREPARING, MEMBER_LEFT: PREPARING, MEMBER_EXPIRED: PREPARING},
    DEAD: {},
}

# Answers that depend on the state alone (after the member and generation checks).
HEARTBEAT_ANSWER = {EMPTY: UNKNOWN_MEMBER_ID, PREPARING: REBALANCE_IN_PROGRESS, COMPLETING: NONE, STABLE: NONE}
COMMIT_ANSWER = {EMPTY: UNKNOWN_MEMBER_ID, PREPARING: NONE, COMPLETING: REBALANCE_IN_PROGRESS, STABLE: NONE}


class InvalidTransition(RuntimeError):
    pass


class GroupStates:
    """The state-moving half of GroupMachine: transitions with their entry actions, member removal
    and the outbox of answers to parked requests. GroupMachine feeds it the requests and timers."""

    initial_delay_s: float
    groups: dict[str, Group]
    parked: dict[int, Parked]
    _outbox: list[tuple[int, JoinResult | SyncResult]]
    _removed: list[str]
    _on_event: Callable[[str, dict[str, Any]], None] | None

    # ------------------------------------------------------------------ the transitions
    def _fire(self, group: Group, event: str, now: float, **info: Any) -> None:
        """Move `group` along TRANSITIONS and run the entry actions of the state it enters."""
        old = group.state
        try:
            new = TRANSITIONS[old][event]
        except KeyError:
            raise InvalidTransition(f"group {group.group_id}: no transition from {old} on {event}") from None
        group.state = new
        self._event("transition", group=group.group_id, event=event, old=old, new=new,
                    generation=group.generation, **info)
        if new == old:
            return
        if new == PREPARING:
            self._enter_preparing(group, old, now)
        elif new == COMPLETING:
            self._enter_completing(group, now)
        elif new == STABLE:
            self._enter_stable(group, now)
        elif new == EMPTY:
            group.generation += 1
            group.protocol = group.leader = None
            group.join_deadline = group.initial_until = None
        elif new == DEAD:
            del self.groups[group.group_id]

    def _enter_preparing(self, group: Group, old: str, now: float) -> None:
        """Every member must (re)join; SyncGroups still waiting are told to rejoin."""
        for m in group.members.values():
            if m.sync is not None:
                self._answer(m.sync, sync_error(REBALANCE_IN_PROGRESS))
                m.sync = None
            m.sync_due, m.synced = None, False
        if old == EMPTY:   # Kafka's prepareRebalance: the whole delay first, whatever the rebalance timeout
            group.initial_until = now + self.initial_delay_s
            group.initial_window_s = self.initial_delay_s
            group.initial_remaining_s = max(group.max_rebalance_s() - self.initial_delay_s, 0.0)
            group.new_member_added = False
            group.join_deadline = None
        else:
            group.initial_until = None
            group.join_deadline = now + group.max_rebalance_s()

    def _maybe_complete(self, group: Group, now: float, force: bool = False) -> None:
        """End the join phase if everyone is in (or the initial delay, or the rebalance timeout, is over)."""
        if group.state != PREPARING:
            return
        if not group.members:  # nobody to wait for (pending ids just join as new members)
            ready = True
        elif group.initial_until is not None:
            self._initial_windows(group, now)
            ready = now >= group.initial_until
        else:
            ready = not group.pending and all(m.join is not None for m in group.members.values())
        if not (ready or force):
            return
        # Kafka's completeClassicGroupJoin: dynamic members that did not rejoin are removed, static
        # ones stay (the leader gets their metadata); if nobody rejoined, wait another rebalance timeout
        for m in [m for m in group.members.values() if m.join is None and not m.instance_id]:
            self._remove(group, m.member_id, "did not rejoin in time")
        if group.members and all(m.join is None for m in group.members.values()):
            group.initial_until, group.join_deadline = None, now + group.max_rebalance_s()
            self._event("join_phase_extended", group=group.group_id, until=group.join_deadline)
            return
        if not group.members:
            self._fire(group, NOBODY_JOINED, now)
        else:
            self._fire(group, ALL_JOINED if ready else REBALANCE_TIMEOUT, now)

    def _initial_windows(self, group: Group, now: float) -> None:
        """Kafka's tryCompleteInitialRebalanceElseSchedule, for each window over by `now`: one more
        window of min(delay, remaining) if a member joined during it and time remains (the
        remaining time shrinks by the window before, as Kafka counts it); else the join phase ends."""
        while now >= group.initial_until and group.new_member_added and group.initial_remaining_s > 0:  # type: ignore[operator]
            group.new_member_added = False
            window = min(self.initial_delay_s, group.initial_remaining_s)
            group.initial_remaining_s = max(group.initial_remaining_s - group.initial_window_s, 0.0)
            group.initial_window_s = window
            group.initial_until += window  # type: ignore[operator]

    def _enter_completing(self, group: Group, now: float) -> None:
        """A new generation: elect the leader, pick the protocol, answer every JoinGroup; each member
        must now send SyncGroup within the group's rebalance timeout (Kafka's pending-sync timer,
        whatever the session timeout), and heartbeat within its session timeout meanwhile."""
        group.generation += 1
        group.join_deadline = group.initial_until = None
        leader = group.members.get(group.leader) if group.leader else None
        if leader is None or leader.join is None:   # Kafka's maybeElectNewJoinedLeader
            group.leader = next((m.member_id for m in group.members.values() if m.join is not None),
                                next(iter(group.members)))
        group.protocol = select_protocol(group)
        sync_s = group.max_rebalance_s()
        for m in group.members.values():
            request, m.join = m.join, None
            m.new = False
            m.heartbeat_deadline = now + m.session_s
            m.sync_due = now + sync_s
            m.synced = False
            if request is not None:
                self._answer(request, self._current_join(group, m))

    def _enter_stable(self, group: Group, now: float) -> None:
        for m in group.members.values():
            if m.sync is not None:
                self._answer(m.sync, SyncResult(NONE, group.protocol_type, group.protocol, m.assignment))
                m.sync = None
                m.heartbeat_deadline = now + m.session_s

    # ------------------------------------------------------------------ helpers
    def _remove(self, group: Group, member_id: str, reason: str) -> None:
        m = group.members.pop(member_id)
        self._removed.append(member_id)
        self._event("member_removed", group=group.group_id, member=member_id, reason=reason)
        if m.instance_id and group.static.get(m.instance_id) == member_id:
            del group.static[m.instance_id]
        if m.join is not None:
            self._answer(m.join, join_error(UNKNOWN_MEMBER_ID, member_id))
        if m.sync is not None:
            self._answer(m.sync, sync_error(UNKNOWN_MEMBER_ID))
        if group.leader == member_id:  # prefer a member that has rejoined
            joined = [x for x in group.members.values() if x.join is not None]
            group.leader = (joined[0].member_id if joined else next(iter(group.members), None))

    def _current_join(self, group: Group, m: Member) -> JoinResult:
        leader = m.member_id == group.leader
        members = [(x.member_id, x.instance_id, x.metadata(group.protocol)) for x in group.members.values()]
        return JoinResult(NONE, group.generation, group.protocol_type, group.protocol, group.leader or "",
                          m.member_id, members if leader else [])

    def _answer(self, request: int, result: JoinResult | SyncResult) -> None:
        if self.parked.pop(request, None) is not None:
            self._outbox.append((request, result))

    def _take(self, request: int) -> JoinResult | SyncResult | None:
        """The answer to `request` if it was given while handling it (else None: it stays parked)."""
        for i, (r, result) in enumerate(self._outbox):
            if r == request:
                del self._outbox[i]
                return result
        return None

    def _event(self, kind: str, **info: Any) -> None:
        if self._on_event is not None:
            self._on_event(kind, info)
