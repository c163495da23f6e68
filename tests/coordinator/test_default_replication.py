"""The stack's replication defaults in the coordinator: replication_factor -1 takes the default
factor, a new topic gets min.insync.replicas from the stack (capped at its factor), and a factor
above the broker count is Kafka's INVALID_REPLICATION_FACTOR naming the count."""
from __future__ import annotations

import uuid

import pytest

from sandbox.coordinator import CoordinatorError, MetadataMachine
from sandbox.coordinator.topic_configs import default_min_insync
from sandbox.protocol.errors import INVALID_REPLICATION_FACTOR
from coordinator.coordinator_helpers import run


def machine(brokers: int, rf: int = 1, isr: int = 1) -> MetadataMachine:
    m = MetadataMachine(default_replication_factor=rf, min_insync_replicas=isr)
    run(m, m.set_cluster_id("test-cluster"))
    for b in range(1, brokers + 1):
        run(m, m.register_broker(b, "127.0.0.1", 9090 + b, None, uuid.uuid4(), now_ms=0))
    return m


def create(m, name, parts=-1, rf=-1, configs=None, assignments=None):
    run(m, m.create_topic(name, parts, rf, configs, uuid.uuid4(), assignments))
    return m.topic(name)


def test_three_brokers_default_three_replicas_and_min_isr_two():
    m = machine(3, rf=3, isr=2)
    t = create(m, "orders", 4)
    assert t.replication_factor == 3
    assert all(sorted(p.replicas) == [1, 2, 3] and sorted(p.isr) == [1, 2, 3] for p in t.partitions)
    assert t.configs == {"min.insync.replicas": "2"}
    assert m.describe_configs("orders")["min.insync.replicas"] == ("2", False)


def test_explicit_factor_and_min_isr_win_and_min_isr_is_capped():
    m = machine(3, rf=3, isr=2)
    assert create(m, "one", 1, 1).configs == {}                      # min(2, 1) = 1: Kafka's default
    assert create(m, "two", 1, 2).configs == {"min.insync.replicas": "2"}
    assert create(m, "own", 1, 3, {"min.insync.replicas": "3"}).configs == {"min.insync.replicas": "3"}
    placed = create(m, "placed", assignments=[[1, 2, 3]])           # a re-created topic: its placement
    assert placed.replication_factor == 3 and placed.configs == {"min.insync.replicas": "2"}


def test_one_broker_changes_nothing():
    m = machine(1)
    t = create(m, "a")
    assert t.replication_factor == 1 and t.configs == {}
    assert m.describe_configs("a")["min.insync.replicas"] == ("1", True)


@pytest.mark.parametrize("rf, defaults", [(4, (1, 1)), (-1, (4, 1))])
def test_more_replicas_than_brokers_is_refused_naming_the_count(rf, defaults):
    m = machine(3, *defaults)
    with pytest.raises(CoordinatorError) as info:
        m.create_topic("big", 1, rf, None, uuid.uuid4())
    assert info.value.error_code == INVALID_REPLICATION_FACTOR
    assert "replication factor of 4" in str(info.value) and "only 3 broker(s)" in str(info.value)


def test_a_fenced_broker_does_not_count():
    m = machine(3, rf=3, isr=2)
    run(m, m.fence_broker(3))
    with pytest.raises(CoordinatorError, match="only 2 broker"):
        m.create_topic("late", 1, -1, None, uuid.uuid4())


def test_the_preview_fork_keeps_the_defaults():
    m = machine(3, rf=3, isr=2)
    fork = m.preview(m.create_topic("x", 1, -1, None, uuid.uuid4()))
    assert fork.topic("x").replication_factor == 3
    assert (fork.default_replication_factor, fork.min_insync_replicas) == (3, 2)


def test_default_min_insync():
    assert default_min_insync(2, {}, [[1, 2, 3]]) == {"min.insync.replicas": "2"}
    assert default_min_insync(2, {}, [[1]]) == {}
    assert default_min_insync(3, {}, [[1, 2]]) == {"min.insync.replicas": "2"}
    assert default_min_insync(2, {"min.insync.replicas": "1"}, [[1, 2, 3]]) == {}
    assert default_min_insync(2, {}, []) == {}
