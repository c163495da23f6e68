"""Classic consumer-group coordinator: Kafka's JoinGroup/SyncGroup/Heartbeat/LeaveGroup state
machine (Empty, PreparingRebalance, CompletingRebalance, Stable, Dead) plus offset commit/fetch
over an OffsetStore. One asyncio event loop owns all state; timers advance through expire()."""
from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, NamedTuple

from sandbox.broker.offsets import OffsetStore

# Kafka error codes
NONE, UNKNOWN_TOPIC_OR_PARTITION, OFFSET_METADATA_TOO_LARGE, COORDINATOR_NOT_AVAILABLE = 0, 3, 12, 15
ILLEGAL_GENERATION, INCONSISTENT_GROUP_PROTOCOL, INVALID_GROUP_ID, UNKNOWN_MEMBER_ID = 22, 23, 24, 25
INVALID_SESSION_TIMEOUT, REBALANCE_IN_PROGRESS, NON_EMPTY_GROUP, GROUP_ID_NOT_FOUND = 26, 27, 68, 69
MEMBER_ID_REQUIRED, FENCED_INSTANCE_ID = 79, 82

EMPTY, PREPARING, COMPLETING, STABLE, DEAD = (
    "Empty", "PreparingRebalance", "CompletingRebalance", "Stable", "Dead")
MAX_METADATA_CHARS = 4096


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
class _Member:
    member_id: str
    instance_id: str | None
    client_id: str
    client_host: str
    protocols: list[tuple[str, bytes]]
    session_timeout_ms: int
    rebalance_timeout_ms: int
    deadline: float = 0.0  # session expiry (clock seconds)
    assignment: bytes = b""
    join: asyncio.Future[JoinResult] | None = None  # set while the member has (re)joined this rebalance
    sync: asyncio.Future[SyncResult] | None = None  # set while waiting for the leader's SyncGroup

    def metadata(self, protocol: str | None) -> bytes:
        return next((m for n, m in self.protocols if n == protocol), b"")


@dataclass(eq=False)
class _Group:
    group_id: str
    state: str = EMPTY
    generation: int = 0
    protocol_type: str | None = None
    protocol: str | None = None
    leader: str | None = None
    members: dict[str, _Member] = field(default_factory=dict)
    pending: dict[str, float] = field(default_factory=dict)  # MEMBER_ID_REQUIRED ids -> expiry
    static: dict[str, str] = field(default_factory=dict)  # group_instance_id -> member_id
    join_deadline: float = 0.0  # PreparingRebalance: rebalance timeout
    initial_until: float | None = None  # PreparingRebalance from Empty: initial delay
    initial_start: float = 0.0
    sync_deadline: float = 0.0  # CompletingRebalance: members must SyncGroup by then

    def fenced(self, instance_id: str | None, member_id: str) -> bool:
        return bool(instance_id) and self.static.get(instance_id, member_id) != member_id

    def max_rebalance_s(self) -> float:
        return max((m.rebalance_timeout_ms for m in self.members.values()), default=0) / 1000


def _join_error(code: int, member_id: str = "") -> JoinResult:
    return JoinResult(code, -1, None, None, "", member_id, [])


def _sync_error(code: int) -> SyncResult:
    return SyncResult(code, None, None, b"")


class GroupCoordinator:
    """Consumer groups of one broker. Call expire() every ~100 ms (or run run()) to drive timers."""

    def __init__(self, offsets: OffsetStore, *, clock: Callable[[], float] = time.monotonic,
                 initial_rebalance_delay_ms: int = 0, min_session_timeout_ms: int = 1000,
                 max_session_timeout_ms: int = 1800000,
                 partition_exists: Callable[[str, int], bool] | None = None,
                 on_event: Callable[[str, dict[str, Any]], None] | None = None) -> None:
        self.offsets = offsets
        self._clock = clock
        self._initial_delay_s = initial_rebalance_delay_ms / 1000
        self._min_session_ms = min_session_timeout_ms
        self._max_session_ms = max_session_timeout_ms
        self._partition_exists = partition_exists
        self._on_event = on_event
        self._groups: dict[str, _Group] = {}
        self._removed: list[str] | None = None  # collects removals while expire() runs

    # ------------------------------------------------------------------ JoinGroup
    async def join_group(self, group_id: str, member_id: str, group_instance_id: str | None,
                         protocol_type: str, protocols: list[tuple[str, bytes]], session_timeout_ms: int,
                         rebalance_timeout_ms: int, client_id: str, client_host: str,
                         require_known_member_id: bool, reason: str | None = None) -> JoinResult:
        if not group_id:
            return _join_error(INVALID_GROUP_ID, member_id)
        if not self._min_session_ms <= session_timeout_ms <= self._max_session_ms:
            return _join_error(INVALID_SESSION_TIMEOUT, member_id)
        group = self._groups.get(group_id)
        if group is None and member_id:
            return _join_error(UNKNOWN_MEMBER_ID, member_id)
        if not self._supports(group, member_id, protocol_type, protocols):
            return _join_error(INCONSISTENT_GROUP_PROTOCOL, member_id)
        if group is None:
            group = self._groups[group_id] = _Group(group_id)
        now = self._clock()
        protocols = [(str(n), bytes(m)) for n, m in protocols]
        info = (client_id, client_host, protocols, session_timeout_ms, rebalance_timeout_ms)
        why = reason or "member joined"
        if member_id and group.fenced(group_instance_id, member_id):
            return _join_error(FENCED_INSTANCE_ID, member_id)
        if not member_id:
            if group_instance_id and group_instance_id in group.static:
                return await self._rejoin_static(group, group_instance_id, protocol_type, info, why)
            member_id = f"{client_id}-{uuid.uuid4()}"
            if require_known_member_id and not group_instance_id:
                group.pending[member_id] = now + session_timeout_ms / 1000
                return _join_error(MEMBER_ID_REQUIRED, member_id)
        elif member_id in group.pending:
            del group.pending[member_id]
        elif member_id not in group.members:
            return _join_error(UNKNOWN_MEMBER_ID, member_id)
        else:
            return await self._rejoin(group, group.members[member_id], protocol_type, info, why)
        # a new member
        if not group.members:
            group.protocol_type = protocol_type
        member = group.members[member_id] = _Member(member_id, group_instance_id, *info)
        if group_instance_id:
            group.static[group_instance_id] = member_id
        group.leader = group.leader or member_id
        if group.state == PREPARING and group.initial_until is not None:  # Kafka's InitialDelayedJoin
            group.initial_until = min(now + self._initial_delay_s, group.initial_start + group.max_rebalance_s())
        return await self._rebalance_with(group, member, why)

    async def _rejoin(self, group: _Group, m: _Member, protocol_type: str, info: tuple, why: str) -> JoinResult:
        changed = m.protocols != info[2]
        if group.state == STABLE and not changed and m.member_id != group.leader:
            return self._current_join(group, m)
        if group.state == COMPLETING and not changed:
            return self._current_join(group, m)
        self._update(group, m, protocol_type, info)
        return await self._rebalance_with(group, m, why)

    async def _rejoin_static(self, group: _Group, instance_id: str, protocol_type: str, info: tuple,
                             why: str) -> JoinResult:
        """A known group.instance.id joins without member id: the old member id is fenced and replaced."""
        old_id = group.static[instance_id]
        m = group.members[old_id]
        new_id = f"{info[0]}-{uuid.uuid4()}"
        for fut, res in ((m.join, _join_error(FENCED_INSTANCE_ID, old_id)), (m.sync, _sync_error(FENCED_INSTANCE_ID))):
            if fut is not None and not fut.done():
                fut.set_result(res)
        m.join = m.sync = None
        m.member_id = new_id
        group.members = {(new_id if k == old_id else k): v for k, v in group.members.items()}
        group.static[instance_id] = new_id
        if group.leader == old_id:
            group.leader = new_id
        changed = m.protocols != info[2]
        self._update(group, m, protocol_type, info)
        if group.state == STABLE and not changed:
            m.deadline = self._clock() + m.session_timeout_ms / 1000
            return self._current_join(group, m)._replace(skip_assignment=new_id == group.leader)
        return await self._rebalance_with(group, m, why)

    # ------------------------------------------------------------------ SyncGroup / Heartbeat / Leave
    async def sync_group(self, group_id: str, generation_id: int, member_id: str, group_instance_id: str | None,
                         protocol_type: str | None, protocol_name: str | None,
                         assignments: dict[str, bytes]) -> SyncResult:
        group = self._groups.get(group_id)
        code = self._check_member(group_id, group, generation_id, member_id, group_instance_id)
        if code or group is None:
            return _sync_error(code)
        if (protocol_type and protocol_type != group.protocol_type) or (
                protocol_name and protocol_name != group.protocol):
            return _sync_error(INCONSISTENT_GROUP_PROTOCOL)
        m = group.members[member_id]
        m.deadline = self._clock() + m.session_timeout_ms / 1000
        if group.state == PREPARING:
            return _sync_error(REBALANCE_IN_PROGRESS)
        if group.state == STABLE:
            return SyncResult(NONE, group.protocol_type, group.protocol, m.assignment)
        if m.sync is not None and not m.sync.done():
            m.sync.set_result(_sync_error(REBALANCE_IN_PROGRESS))
        fut = m.sync = asyncio.get_running_loop().create_future()
        if member_id == group.leader:
            group.state = STABLE
            now = self._clock()
            for mm in group.members.values():
                mm.assignment = bytes(assignments.get(mm.member_id, b""))
                mm.deadline = now + mm.session_timeout_ms / 1000
                if mm.sync is not None and not mm.sync.done():
                    mm.sync.set_result(SyncResult(NONE, group.protocol_type, group.protocol, mm.assignment))
                mm.sync = None
            self._event("stable", group=group.group_id, generation=group.generation)
        return await fut

    def heartbeat(self, group_id: str, generation_id: int, member_id: str, group_instance_id: str | None) -> int:
        group = self._groups.get(group_id)
        code = self._check_member(group_id, group, generation_id, member_id, group_instance_id)
        if code or group is None:
            return code
        m = group.members[member_id]
        m.deadline = self._clock() + m.session_timeout_ms / 1000
        return REBALANCE_IN_PROGRESS if group.state == PREPARING else NONE

    def leave_group(self, group_id: str, members: list[tuple[str, str | None]]
                    ) -> tuple[int, list[tuple[str, str | None, int]]]:
        if not group_id:
            return INVALID_GROUP_ID, []
        group = self._groups.get(group_id)
        if group is None:
            return NONE, [(mid, iid, UNKNOWN_MEMBER_ID) for mid, iid in members]
        out, left = [], False
        for mid, iid in members:
            if not mid and iid:  # KIP-345: leave by group.instance.id
                mid = group.static.get(iid, "")
            if group.fenced(iid, mid):
                out.append((mid, iid, FENCED_INSTANCE_ID))
            elif mid in group.pending:
                del group.pending[mid]
                out.append((mid, iid, NONE))
            elif mid in group.members:
                self._remove(group, mid)
                left = True
                out.append((mid, iid, NONE))
            else:
                out.append((mid, iid, UNKNOWN_MEMBER_ID))
        if left:
            self._after_removal(group, self._clock(), "member left")
        elif group.state == PREPARING:
            self._try_complete(group, self._clock())
        return NONE, out

    # ------------------------------------------------------------------ timers
    def expire(self, now: float | None = None) -> list[str]:
        """Drop expired sessions, pending ids and late syncers; finish due rebalances. Returns removed ids."""
        now = self._clock() if now is None else now
        removed: list[str] = []
        self._removed = removed
        try:
            self._expire(now)
        finally:
            self._removed = None
        return removed

    def _expire(self, now: float) -> None:
        for group in list(self._groups.values()):
            for pid in [p for p, dl in group.pending.items() if now >= dl]:
                del group.pending[pid]
            late = [mid for mid, m in group.members.items() if m.join is None and (
                (m.sync is None and now >= m.deadline)
                or (group.state == COMPLETING and m.sync is None and now >= group.sync_deadline))]
            for mid in late:
                self._remove(group, mid, expired=True)
            if late:
                self._after_removal(group, now, "session timeout")
            if group.state == PREPARING:
                self._try_complete(group, now, force=now >= group.join_deadline)

    async def run(self, interval_s: float = 0.1) -> None:
        """Drive expire() forever; cancel the task to stop."""
        while True:
            try:
                self.expire()
            except Exception as exc:  # a bug here must not stop every group's timers
                self._event("error", error=repr(exc))
            await asyncio.sleep(interval_s)

    def shutdown(self) -> None:
        """Answer every waiting JoinGroup/SyncGroup with COORDINATOR_NOT_AVAILABLE (broker stopping)."""
        for group in self._groups.values():
            for m in group.members.values():
                if m.join is not None and not m.join.done():
                    m.join.set_result(_join_error(COORDINATOR_NOT_AVAILABLE, m.member_id))
                if m.sync is not None and not m.sync.done():
                    m.sync.set_result(_sync_error(COORDINATOR_NOT_AVAILABLE))

    # ------------------------------------------------------------------ offsets
    def commit_offsets(self, group_id: str, generation_id: int, member_id: str, group_instance_id: str | None,
                       offsets: list[tuple[str, int, int, int, str | None]]) -> list[tuple[str, int, int]]:
        group = self._groups.get(group_id)
        code = NONE
        if group is None:
            code = NONE if generation_id < 0 else ILLEGAL_GENERATION
        elif group.fenced(group_instance_id, member_id):
            code = FENCED_INSTANCE_ID
        elif generation_id < 0 and group.state == EMPTY:
            code = NONE  # simple (standalone) consumer: Kafka used only as an offset store
        elif group.state == COMPLETING:
            code = REBALANCE_IN_PROGRESS
        elif member_id not in group.members:
            code = UNKNOWN_MEMBER_ID
        elif generation_id != group.generation:
            code = ILLEGAL_GENERATION
        else:
            m = group.members[member_id]
            m.deadline = self._clock() + m.session_timeout_ms / 1000
        if code:
            return [(t, p, code) for t, p, *_ in offsets]
        results, entries = [], []
        for t, p, off, epoch, meta in offsets:
            meta = meta or ""
            if len(meta) > MAX_METADATA_CHARS:
                results.append((t, p, OFFSET_METADATA_TOO_LARGE))
            elif self._partition_exists is not None and not self._partition_exists(t, p):
                results.append((t, p, UNKNOWN_TOPIC_OR_PARTITION))
            else:
                results.append((t, p, NONE))
                entries.append((t, p, off, epoch, meta))
        try:
            self.offsets.commit(group_id, entries)
        except OSError:
            return [(t, p, COORDINATOR_NOT_AVAILABLE if c == NONE else c) for t, p, c in results]
        return results

    def fetch_offsets(self, group_id: str, partitions: list[tuple[str, int]] | None
                      ) -> dict[tuple[str, int], tuple[int, int, str]]:
        committed = self.offsets.group_offsets(group_id)
        if partitions is None:
            return {k: tuple(v) for k, v in committed.items()}  # type: ignore[misc]
        return {(t, p): tuple(committed[(t, p)]) if (t, p) in committed else (-1, -1, "")  # type: ignore[misc]
                for t, p in partitions}

    def delete_offsets_for_topic(self, topic: str) -> int:
        return self.offsets.delete_topic(topic)

    def committed_by_group(self) -> dict[str, dict[tuple[str, int], int]]:
        return {g: {k: c.offset for k, c in self.offsets.group_offsets(g).items()} for g in self.offsets.groups()}

    # ------------------------------------------------------------------ admin
    def list_groups(self, states: list[str] | None = None) -> list[tuple[str, str, str]]:
        found = {g: (g, "", EMPTY) for g in self.offsets.groups()}
        for g, group in self._groups.items():
            found[g] = (g, group.protocol_type or "", group.state)
        wanted = {s.lower() for s in states} if states else None
        return [row for row in found.values() if wanted is None or row[2].lower() in wanted]

    def describe_group(self, group_id: str) -> GroupDescription:
        if not group_id:
            return GroupDescription(INVALID_GROUP_ID, group_id, DEAD, "", "", [])
        group = self._groups.get(group_id)
        if group is None:
            state = EMPTY if group_id in self.offsets.groups() else DEAD
            return GroupDescription(NONE, group_id, state, "", "", [])
        stable = group.state == STABLE
        members = [(m.member_id, m.instance_id, m.client_id, m.client_host,
                    m.metadata(group.protocol) if stable else b"", m.assignment if stable else b"")
                   for m in group.members.values()]
        return GroupDescription(NONE, group_id, group.state, group.protocol_type or "",
                                (group.protocol or "") if stable else "", members)

    def delete_groups(self, group_ids: list[str]) -> list[tuple[str, int]]:
        out = []
        for gid in group_ids:
            group = self._groups.get(gid)
            if not gid:
                out.append((gid, INVALID_GROUP_ID))
            elif group is None and gid not in self.offsets.groups():
                out.append((gid, GROUP_ID_NOT_FOUND))
            elif group is not None and group.state != EMPTY:
                out.append((gid, NON_EMPTY_GROUP))
            else:
                try:
                    self.offsets.delete_group(gid)
                except OSError:
                    out.append((gid, COORDINATOR_NOT_AVAILABLE))
                    continue
                self._groups.pop(gid, None)
                out.append((gid, NONE))
        return out

    # ------------------------------------------------------------------ internals
    def _supports(self, group: _Group | None, member_id: str, protocol_type: str,
                  protocols: list[tuple[str, bytes]]) -> bool:
        if not protocol_type or not protocols:
            return False
        others = [m for mid, m in group.members.items() if mid != member_id] if group else []
        if not others:
            return True
        if protocol_type != group.protocol_type:  # type: ignore[union-attr]
            return False
        common = set.intersection(*({n for n, _ in m.protocols} for m in others))
        return any(n in common for n, _ in protocols)

    def _check_member(self, group_id: str, group: _Group | None, generation_id: int, member_id: str,
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

    def _update(self, group: _Group, m: _Member, protocol_type: str, info: tuple) -> None:
        m.client_id, m.client_host, m.protocols, m.session_timeout_ms, m.rebalance_timeout_ms = info
        if len(group.members) == 1:
            group.protocol_type = protocol_type

    async def _rebalance_with(self, group: _Group, m: _Member, why: str) -> JoinResult:
        """Mark an existing member as (re)joined, start or advance the rebalance, wait for its end."""
        if m.join is not None and not m.join.done():  # a retried JoinGroup supersedes the old one
            m.join.set_result(_join_error(REBALANCE_IN_PROGRESS, m.member_id))
        fut = m.join = asyncio.get_running_loop().create_future()
        if group.state == PREPARING:
            self._try_complete(group, self._clock())
        else:
            self._prepare(group, self._clock(), why)
        return await fut

    def _current_join(self, group: _Group, m: _Member) -> JoinResult:
        leader = m.member_id == group.leader
        members = [(x.member_id, x.instance_id, x.metadata(group.protocol)) for x in group.members.values()]
        return JoinResult(NONE, group.generation, group.protocol_type, group.protocol, group.leader or "",
                          m.member_id, members if leader else [])

    def _prepare(self, group: _Group, now: float, reason: str) -> None:
        """Start a rebalance: every member must (re)join; waiting syncs are told to rejoin."""
        if group.state == COMPLETING:
            for m in group.members.values():
                if m.sync is not None and not m.sync.done():
                    m.sync.set_result(_sync_error(REBALANCE_IN_PROGRESS))
                m.sync = None
        if group.state == EMPTY:
            group.initial_start = now
            group.initial_until = now + min(self._initial_delay_s, group.max_rebalance_s())
        else:
            group.initial_until = None
        group.join_deadline = now + group.max_rebalance_s()
        group.state = PREPARING
        self._event("rebalance", group=group.group_id, generation=group.generation, reason=reason)
        self._try_complete(group, now)

    def _try_complete(self, group: _Group, now: float, force: bool = False) -> None:
        if group.state != PREPARING:
            return
        if not group.members:  # nobody left to wait for (pending ids just rejoin as new members)
            ready = True
        elif group.initial_until is not None:
            ready = now >= group.initial_until
        else:
            ready = not group.pending and all(m.join is not None for m in group.members.values())
        if ready or force:
            self._complete_join(group, now)

    def _complete_join(self, group: _Group, now: float) -> None:
        """End the join phase: drop members that did not rejoin, bump the generation, answer every join."""
        for mid in [mid for mid, m in group.members.items() if m.join is None]:
            self._remove(group, mid, expired=True)
        group.generation += 1
        group.initial_until = None
        if not group.members:
            group.state, group.protocol, group.leader = EMPTY, None, None
            self._event("empty", group=group.group_id, generation=group.generation)
            return
        if group.leader not in group.members:
            group.leader = next(iter(group.members))
        group.protocol = self._select_protocol(group)
        group.state = COMPLETING
        group.sync_deadline = now + group.max_rebalance_s()
        self._event("joined", group=group.group_id, generation=group.generation, members=len(group.members))
        for m in group.members.values():
            fut, m.join = m.join, None
            m.deadline = now + m.session_timeout_ms / 1000
            if fut is not None and not fut.done():
                fut.set_result(self._current_join(group, m))

    def _select_protocol(self, group: _Group) -> str:
        members = list(group.members.values())
        leader = group.members[group.leader]  # type: ignore[index]
        common = [n for n, _ in leader.protocols if all(n in {x for x, _ in m.protocols} for m in members)]
        if not common:
            return leader.protocols[0][0]
        votes = dict.fromkeys(common, 0)
        for m in members:
            votes[next(n for n, _ in m.protocols if n in votes)] += 1
        return max(common, key=lambda n: votes[n])  # ties: the leader's preference

    def _remove(self, group: _Group, member_id: str, expired: bool = False) -> None:
        m = group.members.pop(member_id)
        if expired and self._removed is not None:
            self._removed.append(member_id)
        self._event("member_removed", group=group.group_id, member=member_id,
                    reason="expired" if expired else "left")
        if m.instance_id and group.static.get(m.instance_id) == member_id:
            del group.static[m.instance_id]
        if m.join is not None and not m.join.done():
            m.join.set_result(_join_error(UNKNOWN_MEMBER_ID, member_id))
        if m.sync is not None and not m.sync.done():
            m.sync.set_result(_sync_error(UNKNOWN_MEMBER_ID))
        if group.leader == member_id:
            group.leader = next(iter(group.members), None)

    def _after_removal(self, group: _Group, now: float, reason: str) -> None:
        if group.state in (STABLE, COMPLETING):
            self._prepare(group, now, reason)
        else:
            self._try_complete(group, now)

    def _event(self, kind: str, **info: Any) -> None:
        if self._on_event is not None:
            self._on_event(kind, info)
