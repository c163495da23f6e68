"""Classic consumer-group coordinator, the asyncio side: hands JoinGroup/SyncGroup/Heartbeat/
LeaveGroup to the sans-io GroupMachine (group_machine.py) as events, parks futures for the
requests it answers later, and keeps committed offsets (commit, fetch, OffsetDelete) in an offset
store (OffsetStore's API: the `__consumer_offsets` topic on a broker, a journal in unit tests)."""
from __future__ import annotations

import asyncio
import itertools
import logging
import time
from typing import Any, Callable

from sandbox.broker.consumer_groups import (
    DEFAULT_HEARTBEAT_INTERVAL_MS, DEFAULT_SESSION_TIMEOUT_MS, ConsumerGroups,
)
from sandbox.broker.group_machine import GroupMachine
from sandbox.protocol.errors import (
    COORDINATOR_NOT_AVAILABLE, GROUP_ID_NOT_FOUND, GROUP_SUBSCRIBED_TO_TOPIC, INCONSISTENT_GROUP_PROTOCOL,
    INVALID_SESSION_TIMEOUT,
    INVALID_GROUP_ID, NON_EMPTY_GROUP, NONE, OFFSET_METADATA_TOO_LARGE, UNKNOWN_TOPIC_OR_PARTITION,
)
from sandbox.broker.group_model import (
    DEAD, EMPTY, STABLE, GroupDescription, JoinResult, SyncResult, join_error,
)
from sandbox.broker.offsets import OffsetStore

log = logging.getLogger(__name__)

MAX_METADATA_CHARS = 4096
PEER_CHECK_INTERVAL_S = 1.0  # how often parked requests are checked for a client that went away
PEER_CHECK_AFTER_S = 0.5     # a request parked for less than this is not checked yet


def open_peers() -> set[str] | None:
    """"host:port" of every established TCP peer of this process; None if the OS will not say.
    A parked JoinGroup/SyncGroup whose peer is not among them can never be answered."""
    try:
        import psutil

        proc = psutil.Process()
        conns = proc.net_connections(kind="tcp") if hasattr(proc, "net_connections") else proc.connections("tcp")
    except Exception:  # psutil missing, access denied, ...: treat every client as still there
        return None
    return {f"{c.raddr[0]}:{c.raddr[1]}" for c in conns if c.raddr and c.status == "ESTABLISHED"}


def _port(peer: str) -> int | None:
    try:
        return int(peer.rsplit(":", 1)[1])
    except (IndexError, ValueError):
        return None


class GroupCoordinator:
    """Consumer groups of one broker. Call expire() every ~100 ms (or run run()) to drive timers."""

    def __init__(self, offsets: OffsetStore, *, clock: Callable[[], float] = time.monotonic,
                 initial_rebalance_delay_ms: int = 0, min_session_timeout_ms: int = 1000,
                 max_session_timeout_ms: int = 1800000,
                 partition_exists: Callable[[str, int], bool] | None = None,
                 on_event: Callable[[str, dict[str, Any]], None] | None = None,
                 peers: Callable[[], set[str] | None] | None = open_peers,
                 consumer_heartbeat_interval_ms: int = DEFAULT_HEARTBEAT_INTERVAL_MS,
                 consumer_session_timeout_ms: int = DEFAULT_SESSION_TIMEOUT_MS,
                 migration_policy: str = "bidirectional", wall: Callable[[], float] = time.time,
                 max_size: int = 2**31 - 1, consumer_max_size: int = 2**31 - 1,
                 lapsed: Callable[[str], bool] | None = None) -> None:
        self.offsets = offsets
        # whether this broker cannot vouch for a group now (GroupOwnership.group_lease_lapsed)
        self._lapsed = lapsed
        self._ticked: float | None = None
        self._clock = clock
        self._partition_exists = partition_exists
        self._on_event = on_event
        self.machine = GroupMachine(clock, initial_rebalance_delay_ms=initial_rebalance_delay_ms,
                                    min_session_timeout_ms=min_session_timeout_ms,
                                    max_session_timeout_ms=max_session_timeout_ms, on_event=self._event,
                                    max_size=max_size)
        # KIP-848 groups (ConsumerGroupHeartbeat); one group id belongs to one protocol
        self.consumer = ConsumerGroups(self.machine, clock=clock, heartbeat_interval_ms=consumer_heartbeat_interval_ms,
                                       session_timeout_ms=consumer_session_timeout_ms, on_event=self._event,
                                       migration_policy=migration_policy, max_size=consumer_max_size)
        self._ids = itertools.count(1)
        self._futures: dict[int, asyncio.Future] = {}
        self._peers = peers
        self._peer_of: dict[int, str] = {}  # parked request -> the client's "host:port"
        self._peers_checked = float("-inf")
        self._wall = wall   # seconds since the epoch: the clock commit timestamps are taken from
        # group -> when this broker last saw it with members, or first saw it at all (ms)
        self._active_at: dict[str, int] = {}

    # ------------------------------------------------------------------ requests that may wait
    async def join_group(self, group_id: str, member_id: str, group_instance_id: str | None,
                         protocol_type: str, protocols: list[tuple[str, bytes]], session_timeout_ms: int,
                         rebalance_timeout_ms: int, client_id: str, client_host: str,
                         require_known_member_id: bool, reason: str | None = None, peer: str = "",
                         topics: Callable[[], list] = list, supports_skip: bool = True) -> JoinResult:
        """`topics` gives the coordinator's topics (TopicInfo) when the group turns out to be a
        consumer group whose member still speaks the classic protocol (an online migration)."""
        if self.consumer.refuses_classic_join(group_id):
            return join_error(INCONSISTENT_GROUP_PROTOCOL, member_id)
        if self.consumer.is_consumer_group(group_id):
            if not self.machine.min_session_ms <= session_timeout_ms <= self.machine.max_session_ms:
                return join_error(INVALID_SESSION_TIMEOUT, member_id)
            return self.consumer.classic_join(group_id, member_id, group_instance_id, protocol_type, protocols,
                                              session_timeout_ms, rebalance_timeout_ms, client_id, client_host,
                                              require_known_member_id, topics())
        request = next(self._ids)
        res = self.machine.join(request, group_id, member_id, group_instance_id, protocol_type, protocols,
                                session_timeout_ms, rebalance_timeout_ms, client_id, client_host,
                                require_known_member_id, reason, supports_skip)
        return await self._wait(request, res, peer)  # type: ignore[return-value]

    async def sync_group(self, group_id: str, generation_id: int, member_id: str, group_instance_id: str | None,
                         protocol_type: str | None, protocol_name: str | None,
                         assignments: dict[str, bytes], peer: str = "") -> SyncResult:
        if self.consumer.is_consumer_group(group_id):
            return self.consumer.classic_sync(group_id, generation_id, member_id, group_instance_id,
                                              protocol_type, protocol_name)
        request = next(self._ids)
        res = self.machine.sync(request, group_id, generation_id, member_id, group_instance_id,
                                protocol_type, protocol_name, assignments)
        return await self._wait(request, res, peer)  # type: ignore[return-value]

    async def _wait(self, request: int, res: JoinResult | SyncResult | None, peer: str):
        self._deliver()
        if res is not None:
            return res
        fut = self._futures[request] = asyncio.get_running_loop().create_future()
        if peer:
            self._peer_of[request] = peer
        try:
            return await fut
        except asyncio.CancelledError:  # the connection is gone: nobody will read the answer
            self.machine.abandon(request)
            self._deliver()
            raise
        finally:
            self._futures.pop(request, None)
            self._peer_of.pop(request, None)

    def _deliver(self) -> None:
        for request, result in self.machine.drain():
            fut = self._futures.pop(request, None)
            if fut is not None and not fut.done():
                fut.set_result(result)

    # ------------------------------------------------------------------ immediate requests
    def heartbeat(self, group_id: str, generation_id: int, member_id: str, group_instance_id: str | None) -> int:
        if self.consumer.is_consumer_group(group_id):
            return self.consumer.classic_heartbeat(group_id, generation_id, member_id, group_instance_id)
        return self.machine.heartbeat(group_id, generation_id, member_id, group_instance_id)

    def leave_group(self, group_id: str, members: list[tuple[str, str | None]]
                    ) -> tuple[int, list[tuple[str, str | None, int]]]:
        if self.consumer.is_consumer_group(group_id):
            out = self.consumer.classic_leave(group_id, members)
        else:
            out = self.machine.leave(group_id, members)
        self._deliver()
        return out

    def consumer_heartbeat(self, group_id: str, member_id: str, member_epoch: int, **kw: Any):
        """ConsumerGroupHeartbeat (see ConsumerGroups.heartbeat); a classic group it turns into a
        consumer group tells its parked JoinGroup and SyncGroup requests to rejoin."""
        out = self.consumer.heartbeat(group_id, member_id, member_epoch, **kw)
        self._deliver()
        return out

    # ------------------------------------------------------------------ timers
    def expire(self, now: float | None = None) -> list[str]:
        """Run due timers; drop parked requests whose client went away. Returns removed member ids.
        Run every 0.1 s, and first thing by every request that reads or deletes whole groups
        (list, describe, delete, OffsetDelete, ConsumerGroupDescribe), so what they see is exact to the millisecond, as
        Kafka's timers are: a member whose session ended is gone by then, not up to a tick later
        (librdkafka's suite deletes a static member's group the moment its session has ended)."""
        now = self._clock() if now is None else now
        self._hold_lapsed(now)
        self._check_peers(now)
        removed = self.machine.tick(now)
        self._deliver()
        removed += self.consumer.tick(now)
        self._deliver()
        return removed

    def _hold_lapsed(self, now: float) -> None:
        """While this broker cannot vouch for a group (its coordinator session may have lapsed) it
        refuses the group's requests (NOT_COORDINATOR), so its members cannot heartbeat: the
        group's timers stand still meanwhile, and members are not expired for what the outage
        kept from them (Kafka's coordinator gives members a new session when it loads a group)."""
        elapsed = 0.0 if self._ticked is None else now - self._ticked
        self._ticked = now
        if self._lapsed is None or elapsed <= 0:
            return
        for group_id in [g for g in (*self.machine.groups, *self.consumer.machine.groups) if self._lapsed(g)]:
            self.machine.hold(group_id, elapsed)
            self.consumer.machine.hold(group_id, elapsed)

    def _check_peers(self, now: float) -> None:
        """A parked JoinGroup/SyncGroup whose client closed its connection is abandoned: Kafka cannot
        see this (its sockets are muted while a JoinGroup is parked) and waits for timeouts instead."""
        if self._peers is None or now - self._peers_checked < PEER_CHECK_INTERVAL_S:
            return
        parked = self.machine.parked
        due = [r for r, peer in self._peer_of.items() if r in parked and now - parked[r].since >= PEER_CHECK_AFTER_S]
        if not due:
            return
        self._peers_checked = now
        alive = self._peers()
        if alive is None:
            return
        # ports only: address spellings differ ("::ffff:" prefixes, "%scope" suffixes), and a port
        # that happens to be in use by another client only means we wait for the timeouts
        alive_ports = {_port(peer) for peer in alive}
        for request in due:
            port = _port(self._peer_of.get(request, ""))
            if request in parked and port is not None and port not in alive_ports:
                p = parked[request]
                log.info("group %s: %s of member %s abandoned: its client %s closed the connection",
                         p.group_id, "JoinGroup" if p.kind == "join" else "SyncGroup", p.member_id,
                         self._peer_of[request])
                self.machine.abandon(request)

    async def run(self, interval_s: float = 0.1) -> None:
        """Drive expire() forever; cancel the task to stop."""
        while True:
            try:
                self.expire()
            except Exception as exc:  # a bug here must not stop every group's timers
                self._event("error", {"error": repr(exc)})
            await asyncio.sleep(interval_s)

    def shutdown(self) -> None:
        """Answer every waiting JoinGroup/SyncGroup with COORDINATOR_NOT_AVAILABLE (broker stopping)."""
        self.machine.shutdown()
        self._deliver()

    # ------------------------------------------------------------------ offsets
    def commit_offsets(self, group_id: str, generation_id: int, member_id: str, group_instance_id: str | None,
                       offsets: list[tuple[str, int, int, int, str | None]], api_version: int = 9
                       ) -> list[tuple[str, int, int]]:
        if group_id in self.consumer:  # generation_id is the member epoch
            code = self.consumer.machine.commit_check(group_id, member_id, generation_id, api_version)
        else:
            code = self.machine.commit_check(group_id, generation_id, member_id, group_instance_id)
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
        except OSError as e:
            code = getattr(e, "error_code", COORDINATOR_NOT_AVAILABLE)
            return [(t, p, code if c == NONE else c) for t, p, c in results]
        return results

    def fetch_offsets(self, group_id: str, partitions: list[tuple[str, int]] | None
                      ) -> dict[tuple[str, int], tuple[int, int, str]]:
        committed = {k: (c.offset, c.leader_epoch, c.metadata) for k, c in self.offsets.group_offsets(group_id).items()}
        if partitions is None:
            return committed
        return {(t, p): committed.get((t, p), (-1, -1, "")) for t, p in partitions}

    def delete_offsets(self, group_id: str, partitions: list[tuple[str, int]]
                       ) -> tuple[int, list[tuple[str, int, int]]]:
        """OffsetDelete as Kafka answers it: (group error, [(topic, partition, error)]). An empty
        group loses the offsets asked for; a consumer group with members keeps those of topics it
        subscribes to (GROUP_SUBSCRIBED_TO_TOPIC); any other group with members is NON_EMPTY_GROUP."""
        if not group_id:
            return INVALID_GROUP_ID, []
        self.expire()
        desc = self.machine.describe(group_id)
        subscribed: set[str] | None
        if group_id in self.consumer:
            subscribed = self.consumer.machine.subscribed_topics(group_id) if self.consumer.machine.has_members(
                group_id) else set()
            desc = None
        elif desc is None and not self._has_offsets(group_id):
            return GROUP_ID_NOT_FOUND, []
        else:
            subscribed = set()
        if desc is not None and desc.state != EMPTY:
            if desc.protocol_type != "consumer":
                return NON_EMPTY_GROUP, []
            subscribed = self.machine.subscribed_topics(group_id)
        results = [(t, p, GROUP_SUBSCRIBED_TO_TOPIC if subscribed is None or t in subscribed else NONE)
                   for t, p in partitions]
        gone = {(t, p) for t, p, c in results if c == NONE}
        committed = self.offsets.group_offsets(group_id)
        if gone & (set(committed) | self._unsettled(group_id)):   # those not on the ISR yet too
            try:
                self._forget(group_id, gone, committed)
            except OSError:
                return NONE, [(t, p, COORDINATOR_NOT_AVAILABLE if c == NONE else c) for t, p, c in results]
        if desc is not None and desc.state == EMPTY and not self.offsets.group_offsets(group_id):
            self.machine.delete(group_id)  # Kafka: an empty group without offsets is dead
        return NONE, results

    def _unsettled(self, group_id: str) -> set[tuple[str, int]]:
        """Partitions of the group's commits not on the ISR yet (TopicOffsetStore.unsettled)."""
        unsettled = getattr(self.offsets, "unsettled", None)
        return unsettled(group_id) if unsettled is not None else set()

    def _has_offsets(self, group_id: str) -> bool:
        return group_id in self.offsets.groups() or bool(self._unsettled(group_id))

    def _forget(self, group_id: str, gone: set[tuple[str, int]], committed: dict) -> None:
        delete = getattr(self.offsets, "delete_partitions", None)
        if delete is not None:
            delete(group_id, sorted(gone))
            return
        # OffsetStore knows whole groups and topics only: drop the group, write back what stays
        keep = [(t, p, c.offset, c.leader_epoch, c.metadata) for (t, p), c in committed.items() if (t, p) not in gone]
        self.offsets.delete_group(group_id)
        self.offsets.commit(group_id, keep)

    # ------------------------------------------------------------------ offsets.retention.minutes
    def expire_offsets(self, now_ms: int, retention_ms: int) -> dict[str, int]:
        """Kafka's offset expiration (KIP-211), run every offsets.retention.check.interval.ms:
        - a group without members loses its offsets once `retention_ms` has passed since it was
          last seen with members or last committed, whichever is later. Kafka counts from when it
          became empty, a moment it keeps in its group metadata record; this broker knows it only
          while it runs, so a group it has not seen with members counts from when this broker first
          saw it (its start, or its taking over the group's partition): never sooner than Kafka;
        - a group whose members are settled (classic Stable, or KIP-848 with members) loses, each
          by its own commit time, the offsets of topics none of its members subscribes to;
        - a rebalancing group, and offsets a transaction holds, keep theirs.
        A group left with neither offsets nor members is forgotten. Returns {group: offsets gone}."""
        out: dict[str, int] = {}
        pending = getattr(self.offsets, "txn_pending", lambda g, t, p: False)
        for group in self.offsets.groups():
            offs = self.offsets.group_offsets(group)
            members, subscribed = self._settled_subscription(group)
            if members:
                self._active_at[group] = now_ms
                expired = [] if subscribed is None else [
                    tp for tp, c in offs.items()
                    if tp[0] not in subscribed and 0 <= c.commit_timestamp <= now_ms - retention_ms]
            else:
                seen = self._active_at.setdefault(group, now_ms)
                base = max([c.commit_timestamp for c in offs.values()] + [seen])
                # a commit on its way to the ISR is a commit now
                expired = list(offs) if base <= now_ms - retention_ms and not self._unsettled(group) else []
            expired = [tp for tp in expired if not pending(group, *tp)]
            if not expired:
                continue
            try:
                self._forget(group, set(expired), offs)
            except Exception as e:   # not writable now (moving, full disk): next time; the others go on
                log.warning("expired offsets of group %r not removed yet: %s", group, e)
                continue
            out[group] = len(expired)
            if not members and len(expired) == len(offs):
                self.machine.delete(group)
                self.consumer.machine.delete(group)
                self._active_at.pop(group, None)
        known = set(self.offsets.groups())
        for group in [g for g in self._active_at if g not in known and g not in self.machine.groups
                      and g not in self.consumer]:
            del self._active_at[group]
        return out

    def not_coordinating(self, groups: list[str]) -> None:
        """These groups' partition is led elsewhere now: what this broker saw of them is stale."""
        for group in groups:
            self._active_at.pop(group, None)

    def _settled_subscription(self, group: str) -> tuple[bool, set[str] | None]:
        """(has members, the topics they subscribe to; None while that is not settled or known)."""
        if group in self.consumer:
            if not self.consumer.machine.has_members(group):
                return False, None
            return True, self.consumer.machine.subscribed_topics(group)
        g = self.machine.groups.get(group)
        if g is None or g.state == EMPTY:
            return False, None
        return True, self.machine.subscribed_topics(group) if g.state == STABLE else None

    def delete_offsets_for_topic(self, topic: str) -> int:
        return self.offsets.delete_topic(topic)

    def committed_by_group(self) -> dict[str, dict[tuple[str, int], int]]:
        return {g: {k: c.offset for k, c in self.offsets.group_offsets(g).items()} for g in self.offsets.groups()}

    # ------------------------------------------------------------------ admin
    def list_groups(self, states: list[str] | None = None) -> list[tuple[str, str, str]]:
        self.expire()
        found = {g: (g, "", EMPTY) for g in self.offsets.groups()}
        for g, group in self.machine.groups.items():
            found[g] = (g, group.protocol_type or "", group.state)
        for row in self.consumer.list_rows():
            found[row[0]] = row
        wanted = {s.lower() for s in states} if states else None
        return [row for row in found.values() if wanted is None or row[2].lower() in wanted]

    def describe_group(self, group_id: str) -> GroupDescription:
        if not group_id:
            return GroupDescription(INVALID_GROUP_ID, group_id, DEAD, "", "", [])
        self.expire()
        desc = self.machine.describe(group_id)
        if group_id in self.consumer:  # DescribeGroups knows classic groups only: Kafka answers Dead
            return GroupDescription(NONE, group_id, DEAD, "", "", [])
        if desc is None:
            state = EMPTY if group_id in self.offsets.groups() else DEAD
            return GroupDescription(NONE, group_id, state, "", "", [])
        return desc

    def describe_consumer_group(self, group_id: str, topic_ids: dict[str, str]) -> dict:
        """ConsumerGroupDescribe of a consumer (KIP-848) group (ConsumerGroups.describe)."""
        self.expire()
        return self.consumer.describe(group_id, topic_ids)

    def delete_groups(self, group_ids: list[str]) -> list[tuple[str, int]]:
        self.expire()
        out = []
        for gid in group_ids:
            known = gid in self.machine.groups
            if not gid:
                out.append((gid, INVALID_GROUP_ID))
            elif not known and gid not in self.consumer and not self._has_offsets(gid):
                out.append((gid, GROUP_ID_NOT_FOUND))
            elif (known and self.machine.groups[gid].state != EMPTY) or self.consumer.machine.has_members(gid):
                out.append((gid, NON_EMPTY_GROUP))
            else:
                try:
                    self.offsets.delete_group(gid)
                except OSError:
                    out.append((gid, COORDINATOR_NOT_AVAILABLE))
                    continue
                self.machine.delete(gid)
                self.consumer.machine.delete(gid)
                out.append((gid, NONE))
        return out

    def _event(self, kind: str, info: dict[str, Any]) -> None:
        if kind == "member_removed":
            self._active_at[info["group"]] = int(self._wall() * 1000)   # it had members until now
            if info.get("reason") != "left":
                log.info("group %s: member %s removed (%s)", info["group"], info.get("member"), info.get("reason"))
        if self._on_event is not None:
            self._on_event(kind, info)
