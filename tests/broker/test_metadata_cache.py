"""Metadata for all topics reuses each topic's encoded entry only while the topic is unchanged:
new partitions, a deleted and re-created topic, and new topics all show up at once."""

from __future__ import annotations

import pytest

from sandbox.client import KafkaClient

pytestmark = pytest.mark.integration


def _all(c: KafkaClient) -> dict:
    md, _ = c.metadata()
    return {n: (t.topic_id, len(t.partitions), sorted(p.leader for p in t.partitions)) for n, t in md.topics.items()}


def test_every_change_shows_in_the_next_full_listing(broker_factory):
    b = broker_factory()
    with KafkaClient(b.bootstrap) as c:
        for n in range(20):
            c.create_topic(f"t{n}", 2)
        first = _all(c)
        assert _all(c) == first and len(first) == 20          # served from the cache: same answer
        c.create_partitions("t3", 5)
        grown = _all(c)
        assert grown["t3"][1] == 5 and grown["t4"] == first["t4"]
        c.delete_topic("t7")
        c.create_topic("t7", 3)
        again = _all(c)
        assert again["t7"][1] == 3 and again["t7"][0] != first["t7"][0]
        c.create_topic("late", 1)
        assert set(_all(c)) == set(first) | {"late"}
