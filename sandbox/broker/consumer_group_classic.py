"""Online migration between classic and KIP-848 consumer groups (group.consumer.migration.policy,
Kafka 4.0's default `bidirectional`), the half that lives in the consumer-group machine:

- a classic group with members becomes a consumer group when a `consumer`-protocol member joins
  it (adopt_classic): every classic member keeps its partitions and generation (as its member
  epoch), and is told to rejoin by its next Heartbeat (REBALANCE_IN_PROGRESS);
- members that still speak the classic protocol take part in a consumer group (classic_join,
  classic_sync, classic_heartbeat, classic_leave): the coordinator computes their partitions, a
  JoinGroup is answered at once (no leader, no member list), SyncGroup hands them their
  partitions as a ConsumerProtocolAssignment, and they give partitions up by rejoining without
  them (their owned partitions come in the JoinGroup's subscription);
- when the last `consumer`-protocol member leaves, the group is handed back (see remove(), and
  ConsumerGroups for the classic group it becomes).

As Kafka's GroupMetadataManager does it; errors as Kafka gives them."""
from __future__ import annotations

from typing import Any, Callable

from sandbox.broker.consumer_group_model import (
    M_UNRELEASED, M_UNREVOKED, CGroup, ClassicMeta, CMember, by_topic,
)
from sandbox.broker.group_model import JoinResult, SyncResult, join_error, sync_error
from sandbox.protocol.consumer_protocol import decode_assignment, decode_subscription, encode_assignment
from sandbox.protocol.errors import (
    GROUP_MAX_SIZE_REACHED,
    FENCED_INSTANCE_ID, ILLEGAL_GENERATION, INCONSISTENT_GROUP_PROTOCOL, MEMBER_ID_REQUIRED,
    NONE, REBALANCE_IN_PROGRESS, UNKNOWN_MEMBER_ID,
)

CONSUMER = "consumer"
CUSTOM_ASSIGNOR = ("Cannot upgrade classic group {} to consumer group because an unsupported custom assignor is "
                   "in use. Please refer to the documentation or switch to a default assignor before "
                   "re-attempting the upgrade.")


class MigrationRefused(Exception):
    """A classic group that cannot become a consumer group: GROUP_ID_NOT_FOUND with this message."""


class ClassicMembers:
    """Mixed into ConsumerGroupMachine (it owns the groups, the clock and reconciliation)."""

    groups: dict[str, CGroup]
    clock: Callable[[], float]
    migration_policy: str
    downgraded: list[CGroup]
    _new_id: Callable[[], str]

    # ------------------------------------------------------------------ upgrade
    def adopt_classic(self, group_id: str, generation: int, protocol_type: str | None, protocol: str | None,
                      members: list[Any], catalog: dict[str, tuple[str, int]]) -> CGroup:
        """A consumer group made of a classic group's members (group_model.Member: id, instance id,
        client, protocols, timeouts, assignment bytes), not yet installed (the caller does, once
        the heartbeat that asked for it is accepted); raises MigrationRefused. Each member keeps
        its subscription, its partitions (also as its target) and its generation as member epoch;
        the group epoch is the generation."""
        if self.migration_policy not in ("upgrade", "bidirectional"):
            raise MigrationRefused(f"Cannot upgrade classic group {group_id} to consumer group because the online "
                                   f"upgrade is disabled.")
        if protocol_type != CONSUMER:
            raise MigrationRefused(f"Cannot upgrade classic group {group_id} to consumer group because it is not "
                                   f"a consumer group (protocol type {protocol_type}).")
        if len(members) > self.max_size:   # type: ignore[attr-defined]
            raise MigrationRefused(f"Cannot upgrade classic group {group_id} to consumer group because the group "
                                   f"size exceeds the consumer group maximum size.")
        now = self.clock()
        group = CGroup(group_id, epoch=generation, assignment_epoch=generation)
        for cm in members:
            metadata = next((md for n, md in cm.protocols if n == protocol), cm.protocols[0][1] if cm.protocols else b"")
            sub = decode_subscription(metadata)
            got = decode_assignment(cm.assignment)
            if sub is None or got is None:
                raise MigrationRefused(f"Cannot upgrade classic group {group_id} to consumer group because the "
                                       f"embedded consumer protocol is malformed.")
            parts, user_data = got
            if user_data:
                raise MigrationRefused(CUSTOM_ASSIGNOR.format(group_id))
            assigned = frozenset((t, p) for t, ps in parts.items() if t in catalog for p in ps
                                 if 0 <= p < catalog[t][1])
            m = CMember(cm.member_id, cm.instance_id, sub.rack or None, cm.client_id, cm.client_host,
                        cm.rebalance_timeout_ms, tuple(sorted(set(sub.topics))), None, None,
                        epoch=generation, previous_epoch=generation, assigned=assigned,
                        session_deadline=now + cm.session_timeout_ms / 1000,
                        classic=ClassicMeta(list(cm.protocols), cm.session_timeout_ms))
            group.members[m.member_id] = m
            group.target[m.member_id] = assigned
            if m.instance_id:
                group.static[m.instance_id] = m.member_id
            for tp in assigned:
                group.owners.setdefault(tp, m.member_id)
        self._refresh_metadata(group, catalog)  # type: ignore[attr-defined]
        return group

    def announce_upgrade(self, group_id: str, generation: int) -> None:
        """The group made by adopt_classic was installed: say so (an event, as every transition)."""
        self._event("converted", group=group_id, to=CONSUMER, generation=generation)  # type: ignore[attr-defined]

    # ------------------------------------------------------------------ classic members in a consumer group
    def classic_join(self, group_id: str, member_id: str, instance_id: str | None, protocol_type: str,
                     protocols: list[tuple[str, bytes]], session_timeout_ms: int, rebalance_timeout_ms: int,
                     client_id: str, client_host: str, require_known_member_id: bool,
                     catalog: dict[str, tuple[str, int]]) -> JoinResult:
        """A JoinGroup for a consumer group with members: answered at once with the member's epoch
        as generation and its first protocol as the protocol (it is no leader: nothing to assign)."""
        group = self.groups[group_id]
        now = self.clock()
        if (not member_id or member_id not in group.members) and len(group.members) >= self.max_size:  # type: ignore[attr-defined]
            return join_error(GROUP_MAX_SIZE_REACHED, "")   # Kafka checks the size first
        protocols = [(str(n), bytes(md)) for n, md in protocols]
        if protocol_type != CONSUMER or not protocols or not _supports(group, protocols):
            return join_error(INCONSISTENT_GROUP_PROTOCOL, member_id)
        sub = decode_subscription(protocols[0][1])
        if sub is None:
            return join_error(INCONSISTENT_GROUP_PROTOCOL, member_id)
        m: CMember | None
        replaced = False
        if instance_id:
            holder = group.static.get(instance_id)
            if member_id and holder is None:
                return join_error(UNKNOWN_MEMBER_ID, member_id)
            if member_id and holder != member_id:
                return join_error(FENCED_INSTANCE_ID, member_id)
            if not member_id and holder is not None:   # KIP-345: a restarted static member takes its place
                m = self._replace_static(group, group.members[holder], self._new_id())  # type: ignore[attr-defined]
                replaced = True
            else:
                m = group.members.get(member_id) if member_id else None
        else:
            if not member_id and require_known_member_id:
                return join_error(MEMBER_ID_REQUIRED, self._new_id())
            m = group.members.get(member_id) if member_id else None
        if m is not None and m.classic is None and not replaced:
            return join_error(UNKNOWN_MEMBER_ID, member_id)   # a consumer-protocol member sending JoinGroup
        new = m is None
        if m is None:
            mid = member_id or self._new_id()
            m = group.members[mid] = CMember(mid, instance_id, session_deadline=now)
            if instance_id:
                group.static[instance_id] = m.member_id
            self._event("member_joined", group=group_id, member=m.member_id)  # type: ignore[attr-defined]
        m.classic = ClassicMeta(protocols, session_timeout_ms)
        topics = tuple(sorted(set(sub.topics)))
        changed = new or topics != m.topic_names or m.topic_regex is not None or m.assignor is not None
        m.topic_names, m.topic_regex, m.assignor = topics, None, None
        m.rack_id = sub.rack or m.rack_id
        m.rebalance_timeout_ms, m.client_id, m.client_host = rebalance_timeout_ms, client_id, client_host
        changed |= self._refresh_metadata(group, catalog)  # type: ignore[attr-defined]
        if changed:
            self._bump(group, f"member {m.member_id} joined or changed (classic protocol)")  # type: ignore[attr-defined]
        owned = frozenset((t, p) for t, p in sub.owned)
        self._reconcile(group, m, owned, now)  # type: ignore[attr-defined]
        m.revoke_deadline = None   # a classic member gives partitions up by rejoining: its timers are its own
        m.session_deadline = now + session_timeout_ms / 1000
        m.classic.sync_deadline, m.classic.join_deadline = now + rebalance_timeout_ms / 1000, None
        return JoinResult(NONE, m.epoch, CONSUMER, m.classic.protocol_name, "", m.member_id, [])

    def _classic_member(self, group_id: str, generation_id: int, member_id: str,
                        instance_id: str | None) -> tuple[CGroup, CMember | None, int]:
        group = self.groups[group_id]
        if instance_id:   # KIP-345: a replaced static member is fenced, not unknown (fatal for it)
            holder = group.static.get(instance_id)
            if holder is None:
                return group, None, UNKNOWN_MEMBER_ID
            if holder != member_id:
                return group, None, FENCED_INSTANCE_ID
        m = group.members.get(member_id)
        if m is None:
            return group, None, UNKNOWN_MEMBER_ID
        if m.classic is None:
            return group, None, UNKNOWN_MEMBER_ID
        if generation_id != m.epoch:
            return group, None, ILLEGAL_GENERATION
        return group, m, NONE

    def classic_sync(self, group_id: str, generation_id: int, member_id: str, instance_id: str | None,
                     protocol_type: str | None, protocol_name: str | None) -> SyncResult:
        """SyncGroup of a classic member: its partitions (the request's assignments are ignored)."""
        group, m, code = self._classic_member(group_id, generation_id, member_id, instance_id)
        if m is None:
            return sync_error(code)
        assert m.classic is not None
        if (protocol_type is not None and protocol_type != CONSUMER) or (
                protocol_name is not None and protocol_name != m.classic.protocol_name):
            return sync_error(INCONSISTENT_GROUP_PROTOCOL)
        now = self.clock()
        if group.epoch > m.epoch and m.state != M_UNREVOKED:
            self._rejoin_due(m, now)
            return sync_error(REBALANCE_IN_PROGRESS)
        m.classic.sync_deadline = None
        m.session_deadline = now + m.classic.session_timeout_ms / 1000
        data = encode_assignment(by_topic(m.assigned), m.classic.subscription_version())
        return SyncResult(NONE, protocol_type or CONSUMER, protocol_name or m.classic.protocol_name, data)

    def classic_heartbeat(self, group_id: str, generation_id: int, member_id: str, instance_id: str | None) -> int:
        """Heartbeat of a classic member: REBALANCE_IN_PROGRESS while it has partitions to give up,
        a newer epoch to reach, or once every partition it waits for is free (it gets them by
        rejoining)."""
        group, m, code = self._classic_member(group_id, generation_id, member_id, instance_id)
        if m is None:
            return code
        assert m.classic is not None
        now = self.clock()
        m.session_deadline = now + m.classic.session_timeout_ms / 1000
        waiting_for_free = m.state == M_UNRELEASED and all(   # each rejoin costs an eager member everything
            tp not in group.owners for tp in group.target.get(m.member_id, frozenset()) - m.assigned)
        if m.epoch < group.epoch or m.state == M_UNREVOKED or waiting_for_free:
            self._rejoin_due(m, now)
            return REBALANCE_IN_PROGRESS
        return NONE

    def _rejoin_due(self, m: CMember, now: float) -> None:
        assert m.classic is not None
        if m.classic.join_deadline is None:
            m.classic.join_deadline = now + m.rebalance_timeout_ms / 1000

    def classic_leave(self, group_id: str, members: list[tuple[str, str | None]]
                      ) -> tuple[int, list[tuple[str, str | None, int]]]:
        """LeaveGroup for a consumer group: the classic members it names are fenced together."""
        group = self.groups[group_id]
        out: list[tuple[str, str | None, int]] = []
        leaving: dict[str, None] = {}   # in order, once each (a member may be named twice)
        for mid, iid in members:   # each answered with the member id it was named by ("" for an instance id only)
            if iid:
                holder = group.static.get(iid)
                if holder is None:
                    out.append((mid, iid, UNKNOWN_MEMBER_ID))
                    continue
                if mid and holder != mid:
                    out.append((mid, iid, FENCED_INSTANCE_ID))
                    continue
                m = group.members.get(holder)
            else:
                m = group.members.get(mid)
            if m is not None and m.classic is not None:
                leaving[m.member_id] = None
                out.append((mid, iid, NONE))
            else:   # unknown, or a consumer-protocol member (it leaves by ConsumerGroupHeartbeat)
                out.append((mid, iid, UNKNOWN_MEMBER_ID))
        self.remove_members(group, list(leaving), "left")  # type: ignore[attr-defined]
        return NONE, out

    def classic_commit_check(self, m: CMember, generation_id: int) -> int:
        return NONE if generation_id == m.epoch else ILLEGAL_GENERATION

    @staticmethod
    def classic_deadline(m: CMember, now: float) -> str | None:
        """Why a classic member is fenced now, if it is."""
        c = m.classic
        if c is None:
            return None
        if c.sync_deadline is not None and now >= c.sync_deadline:
            return "no SyncGroup in time"
        if c.join_deadline is not None and now >= c.join_deadline:
            return "did not rejoin in time"
        return None

    def downgradable(self, group: CGroup) -> bool:
        """Only classic members are left (and some are): the group goes back to the classic protocol."""
        return (self.migration_policy in ("downgrade", "bidirectional") and bool(group.members)
                and all(m.classic is not None for m in group.members.values())
                and len(group.members) <= self.classic_max_size)   # type: ignore[attr-defined]  (group.max.size)


def _supports(group: CGroup, protocols: list[tuple[str, bytes]]) -> bool:
    """Kafka's supportsClassicProtocols: some protocol of the joiner every classic member supports
    now (the joiner's current protocols count too, if it is one of them)."""
    classic = [m.classic for m in group.members.values() if m.classic is not None]
    return any(all(any(n == x for x, _ in c.protocols) for c in classic) for n, _ in protocols)

