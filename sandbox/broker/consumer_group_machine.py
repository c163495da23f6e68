"""KIP-848 consumer groups, sans-io: ConsumerGroupHeartbeat as an event on groups with a group
epoch, a target assignment computed here by the assignor the members name, and members that
reconcile toward it: partitions are revoked from one member (it acknowledges by heartbeating
without them) before another gets them. Time comes from an injected clock; deadlines are data."""
from __future__ import annotations

import re
import uuid
from typing import Any, Callable

from sandbox.broker.consumer_assignors import ASSIGNORS, DEFAULT_ASSIGNOR, TP
from sandbox.broker.consumer_group_classic import ClassicMembers
from sandbox.protocol.errors import (
    GROUP_MAX_SIZE_REACHED,
    FENCED_MEMBER_EPOCH, GROUP_ID_NOT_FOUND, INVALID_REGULAR_EXPRESSION, INVALID_REQUEST, NONE,
    STALE_MEMBER_EPOCH, UNKNOWN_MEMBER_ID, UNRELEASED_INSTANCE_ID, UNSUPPORTED_ASSIGNOR, UNSUPPORTED_VERSION,
)
from sandbox.broker.consumer_group_model import (
    INTERNAL_TOPICS, LEAVE_EPOCH, LEAVE_STATIC_EPOCH, M_STABLE, M_UNRELEASED, M_UNREVOKED, CGroup, CMember,
    GroupView, HeartbeatResult, MemberView, by_topic, error,
)

Catalog = dict[str, tuple[str, int]]  # topic name -> (topic id, partition count)


def compile_regex(pattern: str) -> re.Pattern | None:
    """KIP-848 regexes are RE2/J; Python's re agrees on the common syntax (classes, alternation,
    repetition, anchors). None if Python cannot compile it."""
    try:
        return re.compile(pattern)
    except (re.error, RecursionError, OverflowError):
        return None


class ConsumerGroupMachine(ClassicMembers):
    """Every KIP-848 consumer group of one coordinator. Feed it heartbeat() and tick() (and the
    classic_* requests of members that still speak the classic protocol); ask it describe(),
    commit_check(), fetch_check(). A group left with classic members only is moved to
    `downgraded` for its owner to hand back to the classic coordinator."""

    def __init__(self, clock: Callable[[], float], *, heartbeat_interval_ms: int = 5000,
                 session_timeout_ms: int = 45000, on_event: Callable[[str, dict[str, Any]], None] | None = None,
                 new_member_id: Callable[[], str] | None = None, migration_policy: str = "bidirectional",
                 max_size: int = 2**31 - 1) -> None:
        self.clock = clock
        self.max_size = max_size   # group.consumer.max.size
        self.classic_max_size = 2**31 - 1   # group.max.size: a group too large for it is not downgraded
        self.migration_policy = migration_policy
        self.downgraded: list[CGroup] = []
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.session_timeout_ms = session_timeout_ms
        self.groups: dict[str, CGroup] = {}
        self._on_event = on_event
        self._new_id = new_member_id or (lambda: str(uuid.uuid4()))
        self._regex: dict[str, re.Pattern | None] = {}

    # ------------------------------------------------------------------ ConsumerGroupHeartbeat
    def heartbeat(self, group_id: str, member_id: str, member_epoch: int, *, instance_id: str | None = None,
                  rack_id: str | None = None, rebalance_timeout_ms: int = -1,
                  topic_names: list[str] | None = None, topic_regex: str | None = None,
                  assignor: str | None = None, owned: list[TP] | None = None, client_id: str = "",
                  client_host: str = "", catalog: Catalog | None = None, api_version: int = 1,
                  settings: tuple[int, int] | None = None, visible: frozenset[str] | None = None) -> HeartbeatResult:
        """One ConsumerGroupHeartbeat; `owned` None means "unchanged since the last heartbeat";
        `settings` the group's (heartbeat interval, session timeout) when its configs set them;
        `visible` the topics a member held to ACLs may DESCRIBE (its regex matches no others, as
        Kafka's filterTopicDescribeAuthorizedTopics; None: every topic)."""
        bad = self._invalid(group_id, member_id, member_epoch, instance_id, rack_id, rebalance_timeout_ms,
                            topic_names, topic_regex, assignor, owned, api_version)
        if bad is not None:
            return bad
        if member_epoch in (LEAVE_EPOCH, LEAVE_STATIC_EPOCH):
            return self._leave(group_id, member_id, member_epoch, instance_id)
        now = self.clock()
        group = self.groups.get(group_id)
        if group is None:
            if member_epoch != 0:
                # Kafka answers GROUP_ID_NOT_FOUND; a sandbox forgets groups when it restarts, and this
                # answer makes clients rejoin instead of failing
                return error(UNKNOWN_MEMBER_ID, f"Consumer group {group_id} is not known (was the broker restarted?).")
            group = self.groups[group_id] = CGroup(group_id)
        member_id = member_id or self._new_id()
        m, res = self._member(group, member_id, member_epoch, instance_id, owned, now)
        if res is not None:
            return res
        assert m is not None
        before = m.assigned
        bump = group.epoch == 0
        bump |= self._update_member(m, instance_id, rack_id, rebalance_timeout_ms, topic_names, topic_regex,
                                    assignor, client_id, client_host)
        if visible != m.visible:   # only a regex whose allowed matches change makes a new assignment
            old = self._subscribed(m, catalog) if m.topic_regex and catalog is not None else None
            m.visible = visible
            bump |= old is not None and self._subscribed(m, catalog) != old
        if catalog is not None:
            bump |= self._refresh_metadata(group, catalog)
        if bump:
            self._bump(group, "member %s joined or changed" % member_id if member_epoch == 0 else "subscription changed")
        owned_set = frozenset(owned) if owned is not None else None
        self._reconcile(group, m, owned_set, now)
        interval_ms, session_ms = settings or (self.heartbeat_interval_ms, self.session_timeout_ms)
        m.session_deadline = now + session_ms / 1000
        # Kafka's isFullRequest: what a member sends when it joins or after an error (a regex counts as a subscription)
        full = member_epoch == 0 or (rebalance_timeout_ms != -1 and owned is not None
                                     and (topic_names is not None or topic_regex is not None))
        return HeartbeatResult(NONE, None, m.member_id, m.epoch, interval_ms,
                               by_topic(m.assigned) if full or m.assigned != before else None)

    def _invalid(self, group_id: str, member_id: str, epoch: int, instance_id: str | None, rack_id: str | None,
                 rebalance_timeout_ms: int, topic_names: list[str] | None, topic_regex: str | None,
                 assignor: str | None, owned: list[TP] | None, api_version: int) -> HeartbeatResult | None:
        """Kafka's request validation: INVALID_REQUEST, UNSUPPORTED_ASSIGNOR, INVALID_REGULAR_EXPRESSION."""
        def bad(msg: str) -> HeartbeatResult:
            return error(INVALID_REQUEST, msg)
        if (api_version >= 1 or epoch > 0 or epoch == LEAVE_EPOCH) and not member_id:
            return bad("MemberId can't be empty.")
        if not group_id:
            return bad("GroupId can't be empty.")
        if instance_id == "":
            return bad("InstanceId can't be empty.")
        if rack_id == "":
            return bad("RackId can't be empty.")
        if epoch == 0:
            if rebalance_timeout_ms == -1:
                return bad("RebalanceTimeoutMs must be provided in first request.")
            if owned is None or owned:
                return bad("TopicPartitions must be empty when (re-)joining.")
            if topic_names is None and topic_regex is None:
                return bad("Either SubscribedTopicNames or SubscribedTopicRegex must be non-null when (re-)joining.")
        elif epoch == LEAVE_STATIC_EPOCH:
            if instance_id is None:
                return bad("InstanceId can't be null.")
        elif epoch < LEAVE_STATIC_EPOCH:
            return bad("MemberEpoch is invalid.")
        if assignor is not None and assignor not in ASSIGNORS:
            return error(UNSUPPORTED_ASSIGNOR, f"ServerAssignor {assignor} is not supported. "
                         f"Supported assignors: {', '.join(ASSIGNORS)}.")
        if topic_regex and self._compiled(topic_regex) is None:
            return error(INVALID_REGULAR_EXPRESSION,
                         f"SubscribedTopicRegex `{topic_regex}` is not a valid regular expression.")
        return None

    def _member(self, group: CGroup, member_id: str, epoch: int, instance_id: str | None,
                owned: list[TP] | None, now: float) -> tuple[CMember | None, HeartbeatResult | None]:
        """The member this heartbeat is from (created on a join), or the error that answers it."""
        m = group.members.get(member_id)
        if m is None and len(group.members) >= self.max_size:   # Kafka's throwIfConsumerGroupIsFull, first
            return None, error(GROUP_MAX_SIZE_REACHED, f"The consumer group has reached its maximum capacity of "
                                                       f"{self.max_size} members.")
        if epoch == 0:
            if instance_id is not None:
                holder = group.static.get(instance_id)
                if holder is not None and holder != member_id:
                    old = group.members[holder]
                    if old.epoch != LEAVE_STATIC_EPOCH:
                        return None, error(UNRELEASED_INSTANCE_ID, f"Static member {member_id} with instance id "
                                           f"{instance_id} cannot join the group because the instance id is "
                                           f"owned by {holder} member.")
                    return self._replace_static(group, old, member_id), None
            if m is not None:  # a rejoin (after a fencing): it gave up everything it held
                self._release(group, m, m.holds())
                m.assigned = m.revoking = frozenset()
                m.epoch, m.previous_epoch, m.state, m.revoke_deadline = 0, -1, M_STABLE, None
                return m, None
            m = group.members[member_id] = CMember(member_id, instance_id, session_deadline=now)
            if instance_id is not None:
                group.static[instance_id] = member_id
            self._event("member_joined", group=group.group_id, member=member_id)
            return m, None
        if m is None:
            return None, error(UNKNOWN_MEMBER_ID, f"Member {member_id} is not a member of group {group.group_id}.")
        if epoch > m.epoch or (epoch < m.epoch and (epoch != m.previous_epoch or owned is None
                                                   or not set(owned) <= m.assigned)):
            return None, error(FENCED_MEMBER_EPOCH, f"The consumer group member has a {'greater' if epoch > m.epoch else 'smaller'} "
                               f"member epoch ({epoch}) than the one known by the group coordinator "
                               f"({m.epoch}). The member must abandon all its partitions and rejoin.")
        return m, None

    def _replace_static(self, group: CGroup, old: CMember, member_id: str) -> CMember:
        """KIP-848 static membership: a new member with the instance id of one that left with epoch -2
        takes its place, its target and the partitions it held."""
        new = CMember(member_id, old.instance_id, old.rack_id, old.client_id, old.client_host,
                      old.rebalance_timeout_ms, old.topic_names, old.topic_regex, old.assignor,
                      epoch=0, assigned=old.assigned, revoking=old.revoking, state=old.state,
                      revoke_deadline=old.revoke_deadline, visible=old.visible)
        del group.members[old.member_id]
        group.members[member_id] = new
        group.static[old.instance_id] = member_id  # type: ignore[index]
        group.target[member_id] = group.target.pop(old.member_id, frozenset())
        for tp in new.holds():
            group.owners[tp] = member_id
        self._event("member_replaced", group=group.group_id, member=member_id, old=old.member_id)
        return new

    def _update_member(self, m: CMember, instance_id: str | None, rack_id: str | None, rebalance_timeout_ms: int,
                       topic_names: list[str] | None, topic_regex: str | None, assignor: str | None,
                       client_id: str, client_host: str) -> bool:
        """Apply what the heartbeat carries (None/-1 = unchanged); True if the subscription changed."""
        changed = False
        if instance_id is not None:
            m.instance_id = instance_id
        if rack_id is not None:
            m.rack_id = rack_id
        if rebalance_timeout_ms != -1:
            m.rebalance_timeout_ms = rebalance_timeout_ms
        if topic_names is not None and tuple(sorted(set(topic_names))) != m.topic_names:
            m.topic_names, changed = tuple(sorted(set(topic_names))), True
        if topic_regex is not None and (topic_regex or None) != m.topic_regex:
            m.topic_regex, changed = topic_regex or None, True
        if assignor is not None and assignor != m.assignor:
            m.assignor, changed = assignor, True
        m.client_id, m.client_host = client_id, client_host
        return changed

    # ------------------------------------------------------------------ target assignment
    def _subscribed(self, m: CMember, catalog_names) -> frozenset[str]:
        topics = set(m.topic_names)
        if m.topic_regex:
            rx = self._compiled(m.topic_regex)
            if rx is not None:
                topics |= {t for t in catalog_names if t not in INTERNAL_TOPICS and rx.fullmatch(t)
                           and (m.visible is None or t in m.visible)}
        return frozenset(topics)

    def _refresh_metadata(self, group: CGroup, catalog: Catalog) -> bool:
        """Sizes and ids of the topics the group subscribes to; True if they changed (new topics,
        new partitions, a topic deleted or re-created): the group epoch is then bumped."""
        wanted: set[str] = set()
        for m in group.members.values():
            wanted |= self._subscribed(m, catalog)
        meta = {t: catalog[t] for t in sorted(wanted) if t in catalog}
        if meta == group.metadata:
            return False
        group.metadata = meta
        return True

    def _bump(self, group: CGroup, why: str) -> None:
        """A new group epoch, and at once its target assignment (the sandbox assigns synchronously,
        so a group is never seen in Assigning)."""
        group.epoch += 1
        names = group.metadata.keys()
        subs = {mid: frozenset(t for t in self._subscribed(m, names) if t in group.metadata)
                for mid, m in group.members.items()}
        counts: dict[str, int] = {}
        for m in group.members.values():
            if m.assignor:
                counts[m.assignor] = counts.get(m.assignor, 0) + 1
        group.assignor = max(sorted(counts), key=lambda a: counts[a]) if counts else DEFAULT_ASSIGNOR
        sizes = {t: n for t, (_, n) in group.metadata.items()}
        group.target = ASSIGNORS[group.assignor](subs, sizes, group.target)
        group.assignment_epoch = group.epoch
        self._event("epoch", group=group.group_id, epoch=group.epoch, reason=why)

    # ------------------------------------------------------------------ reconciliation
    def _reconcile(self, group: CGroup, m: CMember, owned: frozenset[TP] | None, now: float) -> None:
        """Kafka's CurrentAssignmentBuilder: move `m` one step toward its target. Partitions it must
        give up are revoked first (its epoch stays) and become free only once a heartbeat shows it no
        longer owns them; partitions another member still holds are withheld (unreleased)."""
        if m.state == M_UNREVOKED:
            if owned is None or owned & m.revoking:
                return  # still holds (or has not said it gave up) what it must give up
            self._release(group, m, m.revoking)
            m.revoking, m.revoke_deadline = frozenset(), None
        elif m.state == M_STABLE and m.epoch == group.assignment_epoch:
            return
        target = group.target.get(m.member_id, frozenset())
        keep, revoke = m.assigned & target, m.assigned - target
        add, unreleased = set(), False
        for tp in target - m.assigned:
            if group.owners.get(tp, m.member_id) == m.member_id:
                add.add(tp)
            else:
                unreleased = True
        if revoke and (owned is None or owned & revoke):
            m.state, m.assigned, m.revoking = M_UNREVOKED, keep, revoke
            m.revoke_deadline = now + m.rebalance_timeout_ms / 1000
            return
        self._release(group, m, revoke)
        for tp in add:
            group.owners[tp] = m.member_id
        if m.epoch != group.assignment_epoch:
            m.previous_epoch, m.epoch = m.epoch, group.assignment_epoch
        m.assigned, m.revoking = keep | frozenset(add), frozenset()
        m.state = M_UNRELEASED if unreleased else M_STABLE

    def _release(self, group: CGroup, m: CMember, tps) -> None:
        for tp in tps:
            if group.owners.get(tp) == m.member_id:
                del group.owners[tp]

    # ------------------------------------------------------------------ leaving, timers
    def _leave(self, group_id: str, member_id: str, epoch: int, instance_id: str | None) -> HeartbeatResult:
        group = self.groups.get(group_id)
        if group is None:
            return error(GROUP_ID_NOT_FOUND, f"Consumer group {group_id} not found.")
        if instance_id is not None:
            holder = group.static.get(instance_id)
            if holder is None:
                return error(UNKNOWN_MEMBER_ID, f"Instance id {instance_id} is unknown.")
            if holder != member_id:
                return error(82, f"Static member {member_id} with instance id {instance_id} was fenced by "
                                 f"member {holder}.")  # FENCED_INSTANCE_ID
        m = group.members.get(member_id)
        if m is None:
            return error(UNKNOWN_MEMBER_ID, f"Member {member_id} is not a member of group {group_id}.")
        if epoch == LEAVE_STATIC_EPOCH:
            # a static member that will be back: it keeps its assigned partitions until its session
            # expires; those it was giving up are free at once (Kafka's consumerGroupStaticMemberGroupLeave
            # empties partitionsPendingRevocation, and the rebalance timeout no longer applies)
            self._release(group, m, m.revoking)
            m.revoking, m.revoke_deadline, m.state = frozenset(), None, M_STABLE
            m.epoch = LEAVE_STATIC_EPOCH
            return HeartbeatResult(NONE, None, member_id, LEAVE_STATIC_EPOCH, 0, None)
        self.remove(group, member_id, "left")
        return HeartbeatResult(NONE, None, member_id, LEAVE_EPOCH, 0, None)

    def remove(self, group: CGroup, member_id: str, reason: str) -> None:
        """Fence a member: its partitions are free at once, the group gets a new epoch."""
        self.remove_members(group, [member_id], reason)

    def remove_members(self, group: CGroup, member_ids: list[str], reason: str) -> None:
        """Fence members together: their partitions are free at once, and the group gets one new
        epoch, or, when only classic members are left, goes back to the classic protocol."""
        if not member_ids:
            return
        for member_id in member_ids:
            m = group.members.pop(member_id)
            self._release(group, m, m.holds())
            group.target.pop(member_id, None)
            if m.instance_id and group.static.get(m.instance_id) == member_id:
                del group.static[m.instance_id]
            self._event("member_removed", group=group.group_id, member=member_id, reason=reason)
        if self.downgradable(group):
            del self.groups[group.group_id]
            self.downgraded.append(group)
            self._event("converted", group=group.group_id, to="classic", generation=group.epoch)
            return
        self._bump(group, f"member(s) {', '.join(member_ids)} {reason}")

    def tick(self, now: float | None = None) -> list[str]:
        """Remove members past their session timeout, or that kept revoked partitions past their
        rebalance timeout. Returns the member ids removed."""
        now = self.clock() if now is None else now
        removed = []
        for group in list(self.groups.values()):
            for m in list(group.members.values()):
                if group.group_id not in self.groups:
                    break   # handed back to the classic protocol by the last removal
                if now >= m.session_deadline:
                    reason = "session timeout"
                elif m.revoke_deadline is not None and now >= m.revoke_deadline:
                    reason = "did not revoke its partitions within the rebalance timeout"
                else:
                    reason = self.classic_deadline(m, now)
                    if reason is None:
                        continue
                self.remove(group, m.member_id, reason)
                removed.append(m.member_id)
        return removed

    def hold(self, group_id: str, elapsed: float) -> None:
        """The group's timers stand still for `elapsed` seconds (see GroupMachine.hold)."""
        group = self.groups.get(group_id)
        if group is None:
            return
        for m in group.members.values():
            m.session_deadline += elapsed
            if m.revoke_deadline is not None:
                m.revoke_deadline += elapsed
            if m.classic is not None:
                if m.classic.sync_deadline is not None:
                    m.classic.sync_deadline += elapsed
                if m.classic.join_deadline is not None:
                    m.classic.join_deadline += elapsed

    # ------------------------------------------------------------------ offsets, admin
    def commit_check(self, group_id: str, member_id: str, epoch: int, api_version: int) -> int:
        """OffsetCommit for a consumer group, as Kafka 4.0 validates it."""
        group = self.groups[group_id]
        if epoch < 0 and not group.members:
            return NONE  # admin tools, or a consumer without group management
        m = group.members.get(member_id)
        if m is None:
            return UNKNOWN_MEMBER_ID
        if m.classic is not None:
            return self.classic_commit_check(m, epoch)   # its generation, any version
        if api_version < 9:
            return UNSUPPORTED_VERSION  # members of consumer groups must commit with v9+
        return NONE if epoch == m.epoch else STALE_MEMBER_EPOCH

    def fetch_check(self, group_id: str, member_id: str | None, epoch: int) -> int:
        """OffsetFetch v9 from a member: its epoch must be the current one."""
        group = self.groups.get(group_id)
        if group is None or (not member_id and epoch < 0):
            return NONE
        m = group.members.get(member_id or "")
        if m is None:
            return UNKNOWN_MEMBER_ID
        return NONE if epoch == m.epoch else STALE_MEMBER_EPOCH

    def describe(self, group_id: str) -> GroupView | None:
        group = self.groups.get(group_id)
        if group is None:
            return None
        members = [MemberView(m.member_id, m.instance_id, m.rack_id, m.epoch, m.client_id, m.client_host,
                              m.topic_names, m.topic_regex, by_topic(m.assigned),
                              by_topic(group.target.get(m.member_id, ())), m.classic is not None)
                   for m in group.members.values()]
        return GroupView(group_id, group.state, group.epoch, group.assignment_epoch, group.assignor, members)

    def has_members(self, group_id: str) -> bool:
        group = self.groups.get(group_id)
        return group is not None and bool(group.members)

    def subscribed_topics(self, group_id: str) -> set[str]:
        """Topics the members subscribe to: by name (whether they exist or not) and by regex."""
        group = self.groups.get(group_id)
        if group is None:
            return set()
        return set(group.metadata).union(*(m.topic_names for m in group.members.values()))

    def forget(self, group_id: str) -> None:
        """This broker no longer coordinates the group: dropped whatever its members (its member
        epochs are never trusted again should the partition come back here)."""
        self.groups.pop(group_id, None)

    def delete(self, group_id: str) -> bool:
        """Drop an empty group (DeleteGroups, or a classic group taking the id): False if it has members."""
        group = self.groups.get(group_id)
        if group is not None and group.members:
            return False
        self.groups.pop(group_id, None)
        return True

    def _compiled(self, pattern: str) -> re.Pattern | None:
        if pattern not in self._regex:
            if len(self._regex) > 1000:
                self._regex.clear()
            self._regex[pattern] = compile_regex(pattern)
        return self._regex[pattern]

    def _event(self, kind: str, **info: Any) -> None:
        if self._on_event is not None:
            self._on_event(kind, info)
