"""Which topics clients see: the coordinator's topics as Metadata and DescribeTopicPartitions list
them, Kafka's two internal topics (`__consumer_offsets`, `__transaction_state`) among them once
they exist. Only those two are internal, as in Kafka (Topic.isInternal): a user's topic named
`__debezium-heartbeat.x` is listed like any other.

`__consumer_offsets` is a real, replicated, compacted internal topic (see offsets_topic.py): the
broker creates it on first need (FindCoordinator, a commit), lists it as internal as Kafka does
(clients that subscribe by pattern with internal topics included find it and read its records in
Kafka's format), and refuses appends by clients as Kafka refuses them for internal topics."""

from __future__ import annotations

# named once, beside where a group or id goes (the CLI and the catalog need them too)
from sandbox.client.partitioner import OFFSETS_TOPIC, TXN_TOPIC


def offsets_topic(state):
    """`__consumer_offsets`, or None until a group coordinator created it."""
    return state.coordinator.topic(OFFSETS_TOPIC)


def listed_internal_topics(state) -> list:
    """The internal topics a request for all topics lists (as Kafka lists them, is_internal set):
    `__consumer_offsets` and `__transaction_state`, each once its coordinators made it."""
    return [t for t in (state.coordinator.topic(n) for n in (OFFSETS_TOPIC, TXN_TOPIC)) if t is not None]


def listed_topics(state) -> list:
    """The topics a request for all topics lists, sorted by name."""
    out = [t for t in state.coordinator.topics() if not t.internal] + listed_internal_topics(state)
    return sorted(out, key=lambda t: t.name)


def lookup_topic(state, name: str):
    """The topic called `name` (internal ones too), or None."""
    return state.coordinator.topic(name)


def lookup_topic_id(state, topic_id):
    """The topic with this id (internal ones too), or None."""
    return state.coordinator.topic_by_id(topic_id)
