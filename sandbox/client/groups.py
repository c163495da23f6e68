"""KafkaClient's consumer-group calls (a base of KafkaClient): find a group's coordinator, list and
describe groups (classic and KIP-848), committed offsets, commits and lag."""

from __future__ import annotations

import time
from collections.abc import Collection
from typing import Any

from sandbox.protocol import consumer_protocol
from sandbox.protocol.errors import GROUP_ID_NOT_FOUND
from .base import (
    CONSUMER_GROUP_DESCRIBE, DELETE_GROUPS, DESCRIBE_GROUPS, FIND_COORDINATOR, LATEST, LIST_GROUPS, OFFSET_COMMIT,
    OFFSET_FETCH, _ATTEMPTS, RETRIABLE, _check, _locked,
)
from .connection import Address, fmt
from .models import GroupDescription, GroupListing, GroupMember, KafkaClientError, PartitionLag


class GroupAdmin:
    def _coordinator(self, group: str) -> Address:
        for attempt in range(_ATTEMPTS):
            resp, _ = self._any(FIND_COORDINATOR, {"key": group, "key_type": 0})
            code = int(resp.error_code)
            if code in RETRIABLE and attempt + 1 < _ATTEMPTS:
                time.sleep(0.1 * (attempt + 1))
                continue
            _check(code, f"finding the coordinator of group {group}",
                   getattr(resp, "error_message", None))
            return self._allowed(resp.host, int(resp.port), f"the coordinator of group {group}")
        raise AssertionError("unreachable")

    def _to_coordinator(self, group: str, api_key: int, data: dict, error_of) -> Any:
        """Send to the group's coordinator, following NOT_COORDINATOR/loading a few times."""
        for attempt in range(_ATTEMPTS):
            resp, _ = self._send(self._coordinator(group), api_key, data)
            code = int(error_of(resp))
            if code in RETRIABLE and attempt + 1 < _ATTEMPTS:
                time.sleep(0.1 * (attempt + 1))
                continue
            return resp
        raise AssertionError("unreachable")

    @_locked
    def list_groups(self, *, skip: Collection[int] = (), failed: list[str] | None = None,
                    failed_nodes: set[int] | None = None) -> list[GroupListing]:
        """Groups of every broker (each coordinates some) but those in `skip` (known not to
        answer: the groups they coordinate are left out), sorted by id. With a `failed` list, a
        broker that cannot be listed adds a sentence there (and its id to `failed_nodes`) and the
        others are still listed; without one, it raises KafkaClientError."""
        found: dict[str, GroupListing] = {}
        for addr in self._brokers(skip):
            try:
                resp, _ = self._send(addr, LIST_GROUPS, {"states_filter": []})
                _check(resp.error_code, f"listing groups on {fmt(addr)}")
            except KafkaClientError as e:
                if failed is None:
                    raise
                failed.append(f"the groups {fmt(addr)} coordinates are not listed: {e}")
                if failed_nodes is not None:
                    failed_nodes.update(n for n, a in self._nodes.items() if a == addr)
                continue
            for g in resp.groups:
                found[g.group_id] = GroupListing(g.group_id, getattr(g, "group_state", ""),
                                                 g.protocol_type)
        return [found[k] for k in sorted(found)]

    @_locked
    def describe_group(self, group: str) -> GroupDescription:
        """A KIP-848 consumer group through ConsumerGroupDescribe, else (a classic group, or a broker
        without it) through DescribeGroups, as Kafka's admin client does."""
        found = self._describe_consumer_group(group)
        if found is not None:
            return found
        resp = self._to_coordinator(group, DESCRIBE_GROUPS, {
            "groups": [group], "include_authorized_operations": False},
            lambda r: r.groups[0].error_code if r.groups else 0)
        g = resp.groups[0]
        _check(g.error_code, f"describing group {group}")
        members = [GroupMember(m.member_id, m.client_id, m.client_host,
                               getattr(m, "group_instance_id", None),
                               decode_assignment(m.member_assignment)
                               if g.protocol_type == "consumer" else {})
                   for m in g.members]
        return GroupDescription(g.group_id, g.group_state, g.protocol_type, g.protocol_data,
                                members, int(g.error_code))

    def _describe_consumer_group(self, group: str) -> GroupDescription | None:
        try:
            resp = self._to_coordinator(group, CONSUMER_GROUP_DESCRIBE, {
                "group_ids": [group], "include_authorized_operations": False},
                lambda r: r.groups[0].error_code if r.groups else 0)
        except KafkaClientError as e:
            if e.error_code is None and "does not support api" in e.message:
                return None
            raise
        g = resp.groups[0]
        if int(g.error_code) == GROUP_ID_NOT_FOUND:
            return None
        _check(g.error_code, f"describing group {group}", getattr(g, "error_message", None))
        members = [GroupMember(m.member_id, m.client_id, m.client_host, m.instance_id,
                               {tp.topic_name: sorted(tp.partitions) for tp in m.assignment.topic_partitions})
                   for m in g.members]
        return GroupDescription(g.group_id, g.group_state, "consumer", g.assignor_name, members, 0,
                                group_type="consumer", epoch=int(g.group_epoch))

    @_locked
    def committed_offsets(self, group: str) -> dict[tuple[str, int], int]:
        """Every committed offset of the group: {(topic, partition): offset}."""
        resp = self._to_coordinator(group, OFFSET_FETCH, {
            "group_id": group, "topics": None, "require_stable": False},
            lambda r: r.error_code)
        _check(resp.error_code, f"fetching committed offsets of group {group}")
        out = {}
        for t in resp.topics:
            for p in t.partitions:
                _check(p.error_code, f"fetching the offset of {group} on {t.name}-{p.partition_index}")
                if int(p.committed_offset) >= 0:
                    out[(t.name, int(p.partition_index))] = int(p.committed_offset)
        return dict(sorted(out.items()))

    @_locked
    def commit_offsets(self, group: str, offsets: dict[tuple[str, int], int]) -> None:
        """A standalone commit (generation -1), as admin tools do to put a group's offsets back."""
        by_topic: dict[str, list[dict]] = {}
        for (t, p), off in sorted(offsets.items()):
            by_topic.setdefault(t, []).append({"partition_index": p, "committed_offset": off,
                                               "committed_leader_epoch": -1, "committed_metadata": ""})
        resp = self._to_coordinator(group, OFFSET_COMMIT, {
            "group_id": group, "generation_id_or_member_epoch": -1, "member_id": "",
            "group_instance_id": None, "retention_time": -1,
            "topics": [{"name": t, "partitions": ps} for t, ps in by_topic.items()]},
            lambda r: next((p.error_code for t in r.topics for p in t.partitions if int(p.error_code)), 0))
        for t in resp.topics:
            for p in t.partitions:
                _check(p.error_code, f"committing {group} on {t.name}-{p.partition_index}")

    @_locked
    def delete_group(self, group: str) -> int:
        """DeleteGroups (42) asked of the group's coordinator: the group's error code, 0 when
        deleted (with its committed offsets), GROUP_ID_NOT_FOUND, NON_EMPTY_GROUP (it has
        members), ... as Kafka's admin client reports it per group."""
        resp = self._to_coordinator(group, DELETE_GROUPS, {"groups_names": [group]},
                                    lambda r: r.results[0].error_code if r.results else 0)
        return int(resp.results[0].error_code) if resp.results else 0

    @_locked
    def group_lag(self, group: str, *, skip: Collection[int] = (),
                  known_ends: dict[tuple[str, int], int] | None = None) -> list[PartitionLag]:
        """(topic, partition, committed, end, lag) for each partition the group committed. The end is
        the high watermark (ListOffsets read_uncommitted), also for groups that read_committed: that
        is what kafka-consumer-groups.sh --describe computes (its ListOffsetsOptions default to
        READ_UNCOMMITTED), so both tools agree. A consumer that read everything is past the
        markers, so a committed transaction leaves no lag; an open one counts as lag until it ends.
        Partitions led by a broker in `skip` (known not to answer) have no end and no lag.
        known_ends: high watermarks the caller just read (status reads every topic's): only the
        partitions missing there are asked for."""
        committed = self.committed_offsets(group)
        ends = {tp: known_ends[tp] for tp in committed if tp in known_ends} if known_ends else {}
        wanted: dict[str, list[int]] = {}
        for t, p in committed:
            if (t, p) not in ends:
                wanted.setdefault(t, []).append(p)
        if wanted:
            ends.update(self._list_offsets(wanted, LATEST, skip=skip))
        return [PartitionLag(t, p, off, ends[(t, p)], max(0, ends[(t, p)] - off)) if (t, p) in ends else
                PartitionLag(t, p, off, None, None)
                for (t, p), off in committed.items()]


def decode_assignment(data: bytes) -> dict[str, list[int]]:
    """Kafka's ConsumerProtocolAssignment (any version): topic -> partitions; {} if unreadable."""
    found = consumer_protocol.decode_assignment(data)
    return {} if found is None else found[0]
