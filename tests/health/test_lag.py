"""LagTracker: lag trends per group/partition and records/s per topic, on an injected clock."""

from __future__ import annotations

from sandbox.client import PartitionLag
from sandbox.health.lag import LagTracker


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def feed(tr: LagTracker, clock: Clock, group: str, lags: list[int], step: float = 1.0) -> None:
    for lag in lags:
        tr.observe_lag(group, [PartitionLag("orders", 0, 0, lag, lag)])
        clock.t += step


def test_unknown_until_three_samples_spanning_two_seconds():
    clock = Clock()
    tr = LagTracker(clock=clock)
    assert tr.trend("g") == "unknown"
    feed(tr, clock, "g", [1, 2])
    assert tr.trend("g") == "unknown"            # two samples only
    tr2 = LagTracker(clock=clock)
    feed(tr2, clock, "g", [1, 2, 3, 4], step=0.5)  # four samples over 1.5 s
    assert tr2.trend("g") == "unknown"
    clock.t += 0.5
    feed(tr2, clock, "g", [5])                    # now 2.5 s span
    assert tr2.trend("g") == "growing"


def test_growing_shrinking_steady():
    clock = Clock()
    tr = LagTracker(clock=clock)
    feed(tr, clock, "up", [10, 20, 30])
    feed(tr, clock, "down", [30, 20, 20, 5])
    feed(tr, clock, "flat", [7, 7, 7])
    feed(tr, clock, "zigzag", [10, 30, 20])
    assert tr.trend("up") == "growing"
    assert tr.partition_trend("up", "orders", 0) == "growing"
    assert tr.trend("down") == "shrinking"
    assert tr.trend("flat") == "steady"
    assert tr.trend("zigzag") == "steady"
    assert tr.trend("nobody") == "unknown"


def test_only_the_recent_window_counts():
    clock = Clock()
    tr = LagTracker(clock=clock)
    feed(tr, clock, "g", [100, 90, 80, 70, 10, 20, 30])  # drained, then falling behind again
    assert tr.trend("g") == "growing"


def test_group_trend_sums_partitions_and_reads_status_dicts():
    clock = Clock()
    tr = LagTracker(clock=clock)
    for i in range(3):
        tr.observe_status({"topics": [{"name": "orders", "partition_offsets": [
            {"partition": 0, "end_offset": 100 + 10 * i}, {"partition": 1, "end_offset": 50}]}],
            "groups": [{"group": "g", "lag": 5 + i, "partitions": [
                {"topic": "orders", "partition": 0, "lag": 5 + i},
                {"topic": "orders", "partition": 1, "lag": 0}]}]})
        clock.t += 1.0
    assert tr.trend("g") == "growing"
    assert tr.partition_trend("g", "orders", 1) == "steady"
    assert [lag for _, lag in tr.history("g")] == [5, 6, 7]
    assert tr.rate("orders") == 10.0


def test_status_without_detail_uses_sums():
    clock = Clock()
    tr = LagTracker(clock=clock)
    for i in range(3):
        tr.observe_status({"topics": [{"name": "t", "end_offsets": 10 * i}],
                           "groups": [{"group": "g", "lag": 9 - i}]})
        clock.t += 2.0
    assert tr.trend("g") == "shrinking"
    assert tr.rate("t") == 5.0


def test_rate_and_resets():
    clock = Clock()
    tr = LagTracker(clock=clock)
    assert tr.rate("t") is None
    tr.observe_end_offsets("t", {0: 0, 1: 0})
    assert tr.rate("t") is None
    clock.t += 2.0
    tr.observe_end_offsets("t", {0: 100, 1: 100})
    assert tr.rate("t") == 100.0
    clock.t += 1.0
    tr.observe_end_offsets("t", 10)   # re-created: offsets went back
    assert tr.rate("t") is None
    # samples older than the rate window are not averaged in
    for _ in range(10):
        clock.t += 1.0
        tr.observe_end_offsets("t", 10)
    clock.t += 1.0
    tr.observe_end_offsets("t", 60)
    assert tr.rate("t") == 10.0       # 50 records over the last 5 s


def test_forget_drops_deleted_topics_and_groups():
    clock = Clock()
    tr = LagTracker(clock=clock)
    feed(tr, clock, "g", [1, 2, 3])
    tr.observe_end_offsets("t", 1)
    clock.t += 1
    tr.observe_end_offsets("t", 2)
    tr.observe_status({"topics": [], "groups": []})
    assert tr.trend("g") == "unknown" and tr.rate("t") is None


def test_history_is_bounded_and_same_instant_replaces():
    clock = Clock()
    tr = LagTracker(clock=clock, max_samples=5)
    feed(tr, clock, "g", list(range(20)))
    assert len(tr.history("g")) == 5
    tr.observe_lag("g", [("orders", 0, 99)])
    tr.observe_lag("g", [("orders", 0, 98)])
    assert tr.history("g", "orders", 0)[-1][1] == 98


def test_a_broker_restart_is_no_throughput_spike_nor_growing_lag():
    """While a broker restarts its partitions' end offsets and lag are unknown for a sample: that
    sample must not read as a re-created topic (a rate spike after) nor as lag that fell then grew."""
    from sandbox.health.lag import LagTracker

    tr = LagTracker(clock=lambda: 0.0)
    all3 = {"partition_offsets": [{"partition": p, "end_offset": 100} for p in range(3)]}
    for now, ends, lags in (
            (0.0, {0: 100, 1: 100, 2: 100}, {0: 10, 1: 10, 2: 10}),
            (1.0, {0: 110, 2: 110}, {0: 10, 1: None, 2: 10}),    # broker 2 (partition 1) restarting
            (2.0, {0: 120, 1: 120, 2: 120}, {0: 10, 1: 10, 2: 10}),
            (3.0, {0: 130, 1: 130, 2: 130}, {0: 10, 1: 10, 2: 10})):
        tr.observe_status({"topics": [{**all3, "name": "t", "partition_offsets": [
                               {"partition": p, "end_offset": o} for p, o in ends.items()]}],
                           "groups": [{"group": "g", "lag": None if None in lags.values() else sum(lags.values()),
                                       "partitions": [{"topic": "t", "partition": p, "lag": v}
                                                      for p, v in lags.items()]}]}, now)
    assert tr.rate("t") == 30.0          # 10 records/s into each of 3 partitions, not a spike
    assert tr.trend("g") == "steady"     # not "growing" from a partial sum
