"""Which broker answers for a group (mixed into BrokerState): the leader of the group's
`__consumer_offsets` partition while its metadata can be vouched for, or, before that topic
exists, a stable hash over the registered brokers."""

from __future__ import annotations

import zlib

from .internal_topics import OFFSETS_TOPIC


class GroupOwnership:
    """Mixed into BrokerState (it owns offsets, replicas, coordinator, partitions, node_id)."""

    def is_group_coordinator(self, group_id: str) -> bool:
        """Whether this broker answers for the group. Not while its coordinator session may have
        lapsed (a paused broker, cut off) when the group's partition is replicated: another
        broker may lead it by now, and this one's metadata saying otherwise is stale, so committed
        offsets it answers may be old and a rebalance it completes may hand out partitions the
        new coordinator gives to others (its writes are refused then too: check_produce). One
        with no other replica has no other leader to fear: its groups go on through an outage
        of the coordinator, as its writes do."""
        if self.offsets is not None and self.offsets.topic() is not None:
            return self.offsets.leads(group_id) and not self.group_lease_lapsed(group_id)
        return self.group_coordinator_id(group_id) == self.node_id

    def group_lease_lapsed(self, group_id: str) -> bool:
        """The group's replicated `__consumer_offsets` partition is led here by metadata this
        broker cannot vouch for now (its coordinator session may have lapsed)."""
        if self.coordinator.lease_valid() or self.offsets is None or self.offsets.topic() is None:
            return False
        key = (OFFSETS_TOPIC, self.offsets.partition_for(group_id))
        return self.replicas.replicated(key)

    def group_coordinator_id(self, key: str) -> int:
        """The broker that owns a group: the leader of its __consumer_offsets partition (-1 while
        that has none). Before the topic exists (the coordinator is away, so it cannot be made):
        a stable hash over the registered broker ids, so groups still consume, without commits.
        But -1 (COORDINATOR_NOT_AVAILABLE: the client asks again) while offsets may exist that
        the metadata does not know yet: the coordinator's journal was replaced and the topic is
        being put back from the brokers' disks, or a partition of it is on this broker's disk. A
        broker answering from nothing then would tell consumers they have no committed offsets,
        and they would reset (to earliest: records processed again; to latest: skipped)."""
        owner = self.offsets.coordinator_for(key) if self.offsets is not None else None
        if owner is not None:
            return owner
        if self.restoring() or any(topic == OFFSETS_TOPIC for topic, _ in self.partitions):
            return -1
        ids = sorted(b.broker_id for b in self.coordinator.brokers())
        if not ids:
            return self.node_id
        return ids[zlib.crc32(key.encode("utf-8")) % len(ids)]
