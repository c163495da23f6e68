"""Which topics clients see: the coordinator's topics (internal `__` names only when named) as
Metadata and DescribeTopicPartitions list them."""

from __future__ import annotations


def listed_topics(state) -> list:
    """The topics a request for all topics lists, sorted by name."""
    return [t for t in state.coordinator.topics() if not t.internal]


def lookup_topic(state, name: str):
    """The topic called `name` (internal ones too), or None."""
    return state.coordinator.topic(name)
