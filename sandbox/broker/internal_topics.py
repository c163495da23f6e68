"""Which topics clients see: the coordinator's topics (internal `__` names only when named) as
Metadata and DescribeTopicPartitions list them, plus `__consumer_offsets`.

Committed offsets live in each broker's offset journal, not in a topic. Kafka lists its offsets
topic as internal once it exists, and clients that subscribe by pattern with internal topics
included (aiokafka's exclude_internal_topics=False, kafka-python's too) expect to find it. So once
this broker holds committed offsets, `__consumer_offsets` is listed (is_internal, one partition
led by this broker: Kafka's 50 partitions spread groups over brokers, which one journal per broker
does not need), reads are empty (offset 0, no records), and appends are refused as Kafka refuses
them for internal topics."""

from __future__ import annotations

import uuid

from sandbox.coordinator.model import PartitionInfo, TopicInfo
from sandbox.log import LogSlices, OffsetOutOfRangeError

OFFSETS_TOPIC = "__consumer_offsets"
_NAMESPACE = uuid.UUID("6f1d7c3e-5b1a-4a53-9f61-0c5e5a1b2d40")


def offsets_topic(state) -> TopicInfo | None:
    """`__consumer_offsets` as this broker shows it, or None until a group committed offsets here."""
    offsets = getattr(state, "offsets", None)
    if offsets is None or not offsets.groups():
        return None
    node = state.node_id
    return TopicInfo(OFFSETS_TOPIC, uuid.uuid5(_NAMESPACE, f"{state.coordinator.cluster_id}/{OFFSETS_TOPIC}"),
                     (PartitionInfo(0, (node,), (node,), node, 0),))


def listed_topics(state) -> list:
    """The topics a request for all topics lists, sorted by name."""
    out = [t for t in state.coordinator.topics() if not t.internal]
    internal = offsets_topic(state)
    if internal is not None:
        out.append(internal)
    return sorted(out, key=lambda t: t.name)


def lookup_topic(state, name: str):
    """The topic called `name` (internal ones too), or None."""
    if name == OFFSETS_TOPIC:
        return state.coordinator.topic(name) or offsets_topic(state)
    return state.coordinator.topic(name)


def lookup_topic_id(state, topic_id):
    """The topic with this id (the internal offsets topic too), or None."""
    t = state.coordinator.topic_by_id(topic_id)
    if t is None:
        internal = offsets_topic(state)
        if internal is not None and internal.topic_id == topic_id:
            return internal
    return t


class EmptyInternalLog:
    """What reads of `__consumer_offsets` find: nothing, at offset 0."""

    high_watermark = log_start_offset = log_end_offset = 0
    latest_epoch = -1

    def read(self, offset: int, max_bytes: int, *, max_offset: int | None = None) -> LogSlices:
        if offset != 0:
            raise OffsetOutOfRangeError(f"offset {offset} is outside [0, 0] of {OFFSETS_TOPIC}-0")
        return LogSlices([])

    def offset_for_timestamp(self, ts_ms: int):
        return None


EMPTY_INTERNAL_LOG = EmptyInternalLog()
