"""KIP-848 consumer groups beside classic ones: the ConsumerGroupMachine plus what needs both
(one group id belongs to one protocol), the topic catalog by name and by id, and the answers
ConsumerGroupHeartbeat and ConsumerGroupDescribe give."""
from __future__ import annotations

import time
import uuid
from typing import Any, Callable

from sandbox.broker.consumer_group_classic import CONSUMER, MigrationRefused
from sandbox.broker.consumer_group_machine import Catalog, ConsumerGroupMachine
from sandbox.coordinator.group_configs import DEFAULTS as GROUP_DEFAULTS, HEARTBEAT, SESSION, session_settings
from sandbox.protocol.errors import GROUP_ID_NOT_FOUND, NONE
from sandbox.broker.consumer_group_model import CGroup, HeartbeatResult, by_topic, error
from sandbox.broker.group_machine import GroupMachine
from sandbox.broker.group_model import EMPTY, STABLE, Group, JoinResult, Member, SyncResult, select_protocol
from sandbox.protocol.consumer_protocol import encode_assignment

# group.consumer.heartbeat.interval.ms: Kafka's default is 5000. A member waiting for partitions
# another member is revoking learns they are free only at its next heartbeat, so each step of a
# rebalance can take one interval; on one machine a heartbeat costs nothing, and 1 s makes a
# rebalance settle in a second or two instead of ten.
# group.consumer.heartbeat.interval.ms (the sandbox's 1 s) and group.consumer.session.timeout.ms
# (Kafka's 45 s): what a group gets without group configs, and what DescribeConfigs says it gets
DEFAULT_HEARTBEAT_INTERVAL_MS = int(GROUP_DEFAULTS[HEARTBEAT])
DEFAULT_SESSION_TIMEOUT_MS = int(GROUP_DEFAULTS[SESSION])


def topic_catalog(topics) -> tuple[Catalog, dict[str, str]]:
    """(name -> (topic id, partitions), topic id -> name) from the coordinator's TopicInfo list."""
    by_name = {t.name: (str(t.topic_id), len(t.partitions)) for t in topics}
    return by_name, {tid: name for name, (tid, _) in by_name.items()}


class ConsumerGroups:
    """The consumer-protocol side of a group coordinator; `classic` is the classic GroupMachine."""

    def __init__(self, classic: GroupMachine, *, clock: Callable[[], float] = time.monotonic,
                 heartbeat_interval_ms: int = DEFAULT_HEARTBEAT_INTERVAL_MS,
                 session_timeout_ms: int = DEFAULT_SESSION_TIMEOUT_MS,
                 on_event: Callable[[str, dict[str, Any]], None] | None = None,
                 migration_policy: str = "bidirectional", max_size: int = 2**31 - 1) -> None:
        self.classic = classic
        self.machine = ConsumerGroupMachine(clock, heartbeat_interval_ms=heartbeat_interval_ms,
                                            session_timeout_ms=session_timeout_ms, on_event=on_event,
                                            migration_policy=migration_policy, max_size=max_size)
        self.machine.classic_max_size = classic.max_size

    def __contains__(self, group_id: str) -> bool:
        return group_id in self.machine.groups

    # ------------------------------------------------------------------ ConsumerGroupHeartbeat
    def heartbeat(self, group_id: str, member_id: str, member_epoch: int, *, topics, owned_by_id,
                  group_configs: dict[str, str] | None = None, **kw: Any) -> tuple[HeartbeatResult, dict[str, str]]:
        """One heartbeat. `topics` is the coordinator's topic list, `owned_by_id` [(topic id, [partitions])]
        or None, `group_configs` the group's config overrides (consumer.session.timeout.ms and
        consumer.heartbeat.interval.ms). Returns the result (assignment by topic name) and name -> topic id
        to encode it."""
        catalog, names = topic_catalog(topics)
        classic = self.classic.groups.get(group_id)
        if classic is not None and member_epoch not in (-1, -2):
            if classic.state == EMPTY and not classic.members:
                self.classic.delete(group_id)  # an empty classic group (offsets only) becomes a consumer group
            elif member_epoch != 0:
                return error(GROUP_ID_NOT_FOUND, f"Group {group_id} is not a consumer group."), {}
            else:
                try:   # built aside: installed only if the heartbeat that asks for it is accepted
                    self.machine.groups[group_id] = self.machine.adopt_classic(
                        group_id, classic.generation, classic.protocol_type, classic.protocol,
                        list(classic.members.values()), catalog)
                except MigrationRefused as e:
                    return error(GROUP_ID_NOT_FOUND, str(e)), {}
                res = self._heartbeat(group_id, member_id, member_epoch, owned_by_id, catalog, names,
                                      group_configs, **kw)
                if res.error_code != NONE:   # refused (a bad assignor, an instance id still held...): still classic
                    del self.machine.groups[group_id]
                    return res, {}
                self.classic.release(group_id)
                self.machine.announce_upgrade(group_id, classic.generation)
                return res, {name: tid for name, (tid, _) in catalog.items()}
        res = self._heartbeat(group_id, member_id, member_epoch, owned_by_id, catalog, names, group_configs, **kw)
        self.hand_back()
        return res, {name: tid for name, (tid, _) in catalog.items()}

    def _heartbeat(self, group_id: str, member_id: str, member_epoch: int, owned_by_id, catalog: Catalog,
                   names: dict[str, str], group_configs: dict[str, str] | None, **kw: Any) -> HeartbeatResult:
        owned = None
        if owned_by_id is not None:
            owned = [(names[str(tid)], p) for tid, ps in owned_by_id if str(tid) in names for p in ps]
        m = self.machine
        settings = session_settings(group_configs or {}, m.heartbeat_interval_ms, m.session_timeout_ms)
        return m.heartbeat(group_id, member_id, member_epoch, owned=owned, catalog=catalog, settings=settings, **kw)

    # ------------------------------------------------------------------ online migration (KIP-848)
    def hand_back(self) -> None:
        """Groups left with classic members only go back to the classic coordinator (Kafka's
        convertToClassicGroup): Stable at the group epoch with each member's partitions, then
        rebalancing, so that they rejoin and their leader assigns."""
        while self.machine.downgraded:
            cg: CGroup = self.machine.downgraded.pop(0)
            group = Group(cg.group_id, state=STABLE, generation=cg.epoch, protocol_type=CONSUMER)
            for m in cg.members.values():
                assert m.classic is not None
                group.members[m.member_id] = Member(
                    m.member_id, m.instance_id, m.client_id, m.client_host, m.classic.protocols,
                    m.classic.session_timeout_ms, m.rebalance_timeout_ms)
                if m.instance_id:
                    group.static[m.instance_id] = m.member_id
            group.leader = next(iter(group.members))
            group.protocol = select_protocol(group)
            for m in cg.members.values():
                target = by_topic(cg.target.get(m.member_id, frozenset()))
                group.members[m.member_id].assignment = encode_assignment(
                    target, m.classic.subscription_version(group.protocol))  # type: ignore[union-attr]
            self.classic.adopt(group)

    def tick(self, now: float | None = None) -> list[str]:
        """Fence members past their timers (see ConsumerGroupMachine.tick); returns their ids."""
        removed = self.machine.tick(now)
        self.hand_back()
        return removed

    # ------------------------------------------------------------------ classic requests to a consumer group
    def is_consumer_group(self, group_id: str) -> bool:
        """Classic requests for this id go to the consumer group (it has members)."""
        return self.machine.has_members(group_id)

    def classic_join(self, group_id: str, member_id: str, instance_id: str | None, protocol_type: str,
                     protocols: list[tuple[str, bytes]], session_timeout_ms: int, rebalance_timeout_ms: int,
                     client_id: str, client_host: str, require_known_member_id: bool, topics) -> JoinResult:
        catalog, _ = topic_catalog(topics)
        return self.machine.classic_join(group_id, member_id, instance_id, protocol_type, protocols,
                                         session_timeout_ms, rebalance_timeout_ms, client_id, client_host,
                                         require_known_member_id, catalog)

    def classic_sync(self, group_id: str, generation_id: int, member_id: str, instance_id: str | None,
                     protocol_type: str | None, protocol_name: str | None) -> SyncResult:
        return self.machine.classic_sync(group_id, generation_id, member_id, instance_id, protocol_type, protocol_name)

    def classic_heartbeat(self, group_id: str, generation_id: int, member_id: str, instance_id: str | None) -> int:
        return self.machine.classic_heartbeat(group_id, generation_id, member_id, instance_id)

    def classic_leave(self, group_id: str, members: list[tuple[str, str | None]]
                      ) -> tuple[int, list[tuple[str, str | None, int]]]:
        out = self.machine.classic_leave(group_id, members)
        self.hand_back()
        return out

    # ------------------------------------------------------------------ what the classic APIs ask
    def refuses_classic_join(self, group_id: str) -> bool:
        """With group.consumer.migration.policy=disabled a JoinGroup for a consumer group with members
        is refused (INCONSISTENT_GROUP_PROTOCOL); an empty consumer group is dropped so that a classic
        group can take the id, as Kafka converts it."""
        if self.machine.has_members(group_id):
            return self.machine.migration_policy == "disabled"
        self.machine.delete(group_id)
        return False

    def list_rows(self) -> list[tuple[str, str, str]]:
        """(group id, protocol type, state) of every consumer group."""
        return [(g.group_id, "consumer", g.state) for g in self.machine.groups.values()]

    def describe(self, group_id: str, topic_ids: dict[str, str] | None = None) -> dict:
        """A ConsumerGroupDescribe DescribedGroup as a dict (errors as Kafka gives them)."""
        view = self.machine.describe(group_id)
        if view is None:
            msg = (f"Group {group_id} is not a consumer group." if group_id in self.classic.groups
                   else f"Group {group_id} not found.")
            return {"error_code": GROUP_ID_NOT_FOUND, "error_message": msg, "group_id": group_id,
                    "group_state": "", "group_epoch": 0, "assignment_epoch": 0, "assignor_name": "",
                    "members": [], "authorized_operations": -2147483648}
        ids = topic_ids or {}

        def assignment(parts: dict[str, list[int]]) -> dict:
            return {"topic_partitions": [
                {"topic_id": uuid.UUID(ids[t]) if t in ids else None, "topic_name": t, "partitions": ps}
                for t, ps in parts.items()]}
        return {"error_code": NONE, "error_message": None, "group_id": group_id, "group_state": view.state,
                "group_epoch": view.group_epoch, "assignment_epoch": view.assignment_epoch,
                "assignor_name": view.assignor, "authorized_operations": -2147483648,
                "members": [{"member_id": m.member_id, "instance_id": m.instance_id, "rack_id": m.rack_id,
                             "member_epoch": m.member_epoch, "client_id": m.client_id,
                             "client_host": m.client_host, "subscribed_topic_names": list(m.topic_names),
                             "subscribed_topic_regex": m.topic_regex, "assignment": assignment(m.assignment),
                             "target_assignment": assignment(m.target), "member_type": 0 if m.classic else 1}
                            for m in view.members]}
