"""health/replication.py on fake metadata: per-topic replica health and the events between two
snapshots; and build_status while a broker does not answer (topics still listed)."""

from __future__ import annotations

from sandbox.client import BrokerMeta, ClusterMetadata, PartitionMeta, TopicMeta
from sandbox.health.replication import (PartitionView, ReplicaWatch, replica_events, snapshot,
                                        topic_health)
from sandbox.health.status import build_status


def md(parts: dict[str, list[PartitionMeta]], brokers=(1, 2, 3)) -> ClusterMetadata:
    return ClusterMetadata("c", -1, [BrokerMeta(b, "127.0.0.1", 9091 + b) for b in brokers],
                           {n: TopicMeta(n, None, ps, n.startswith("__")) for n, ps in parts.items()})


def P(i, leader, replicas, isr, epoch=0):
    return PartitionMeta(i, leader, list(replicas), list(isr), epoch)


def view(topic, i, leader, replicas, isr, epoch=0, offline=()):
    return PartitionView(topic, i, leader, tuple(replicas), tuple(isr), epoch, tuple(offline))


def test_healthy_topic():
    h = topic_health([view("t", 0, 1, [1, 2, 3], [1, 2, 3]), view("t", 1, 2, [2, 3, 1], [2, 3, 1])], 2)
    assert (h["under_replicated_partitions"], h["under_min_isr_partitions"], h["offline_partitions"]) == (0, 0, 0)
    assert h["min_insync_replicas"] == 2 and h["replica_problems"] == []


def test_under_replicated_under_min_isr_and_offline_are_counted_apart():
    parts = [view("t", 0, 1, [1, 2, 3], [1, 2]),          # under-replicated only
             view("t", 1, 2, [2, 3, 1], [2]),             # under-replicated and under min ISR
             view("t", 2, -1, [3, 1, 2], [3]),            # offline (no leader), under both
             view("t", 3, 1, [1, 2, 3], [1, 2, 3])]       # fine
    h = topic_health(parts, 2)
    assert (h["under_replicated_partitions"], h["under_min_isr_partitions"], h["offline_partitions"]) == (3, 2, 1)
    assert [p["partition"] for p in h["replica_problems"]] == [0, 1, 2]
    assert h["replica_problems"][2] == {"partition": 2, "leader": -1, "replicas": [3, 1, 2], "isr": [3],
                                        "offline_replicas": []}


def test_min_isr_one_and_unknown():
    parts = [view("t", 0, 1, [1, 2], [1])]
    assert topic_health(parts, 1)["under_min_isr_partitions"] == 0
    h = topic_health(parts, None)   # DescribeConfigs failed: unknown, not zero
    assert h["under_min_isr_partitions"] is None and h["under_replicated_partitions"] == 1


def test_single_broker_topic_is_never_under_replicated():
    h = topic_health([view("t", 0, 1, [1], [1])], 1)
    assert (h["under_replicated_partitions"], h["under_min_isr_partitions"], h["offline_partitions"]) == (0, 0, 0)


def test_snapshot_marks_replicas_on_unlisted_brokers_offline_and_skips_internal():
    snap = snapshot(md({"t": [P(0, 1, [1, 2, 3], [1, 2, 3])], "__consumer_offsets": [P(0, 1, [1], [1])]},
                       brokers=(1, 2)))
    assert list(snap) == [("t", 0)]
    assert snap[("t", 0)].offline == (3,)
    h = topic_health(snap.values(), 2)
    assert h["replica_problems"][0]["offline_replicas"] == [3]   # listed even before the ISR shrinks


def test_events_isr_shrink_expand_and_leader_change_grouped_per_topic():
    before = {("t", i): view("t", i, 1 + i % 3, [1, 2, 3], [1, 2, 3], 4) for i in range(3)}
    after = dict(before)
    after[("t", 0)] = view("t", 0, 2, [1, 2, 3], [2, 3], 5)    # broker 1 fenced: leader moves
    after[("t", 1)] = view("t", 1, 2, [1, 2, 3], [2, 3], 4)
    events = replica_events(before, after)
    assert {"service": "broker-1", "kind": "isr-shrink",
            "detail": "topic t partitions 0, 1: broker(s) 1 left the ISR (2 in sync)"} in events
    assert {"service": "broker-2", "kind": "leader-change",
            "detail": "topic t partition 0: leader broker 2 (was broker 1), leader epoch 5"} in events
    assert len(events) == 2
    back = replica_events(after, before)
    assert {e["kind"] for e in back} == {"isr-expand", "leader-change"}
    assert any("broker(s) 1 rejoined the ISR (3 in sync)" in e["detail"] for e in back)


def test_events_offline_and_nothing_for_new_or_same():
    before = {("t", 0): view("t", 0, 3, [3], [3])}
    after = {("t", 0): view("t", 0, -1, [3], [3]), ("new", 0): view("new", 0, 1, [1], [1])}
    assert replica_events(before, after) == [
        {"service": "broker-3", "kind": "leader-change", "detail": "topic t partition 0: no leader (was broker 3)"}]
    assert replica_events(after, after) == []
    assert replica_events({}, after) == []
    assert replica_events(after, {("t", 0): view("t", 0, 3, [3], [3], 1)})[0]["detail"] == \
        "topic t partition 0: leader broker 3 (was none), leader epoch 1"


def test_watch_reports_nothing_first_then_changes():
    w = ReplicaWatch()
    assert w.observe(md({"t": [P(0, 1, [1, 2, 3], [1, 2, 3])]})) == []
    assert w.observe(md({"t": [P(0, 1, [1, 2, 3], [1, 2, 3])]})) == []
    (e,) = w.observe(md({"t": [P(0, 1, [1, 2, 3], [1, 2])]}, brokers=(1, 2)))
    assert e["kind"] == "isr-shrink" and "broker(s) 3 left" in e["detail"]


# ------------------------------------------------------------------ build_status with a broker down

class Client:
    """Answers like a 3-broker cluster whose broker 3 is fenced; records where requests went."""

    def __init__(self, addresses):
        self.addresses, self.client_id, self.timeout = addresses, "t", 1.0
        self.asked: list = []

    def metadata(self, topics=None):
        return md({"orders": [P(0, 1, [1, 2, 3], [1, 2]), P(1, 2, [2, 3, 1], [2, 1]),
                              P(2, -1, [3], [3])]}, brokers=(1, 2)), 0.4

    def describe_configs(self, name):
        return {"min.insync.replicas": ("2", False)}

    def end_offsets_of(self, wanted, *, skip=()):
        self.asked += [sorted(ps) for ps in wanted.values()]
        return {(t, p): 10 for t, ps in wanted.items() for p in ps}

    def list_groups(self, *, skip=(), **kw):
        self.skipped = set(skip)
        return []

    def close(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass


def services(*healthy):
    out = [{"name": "coordinator", "role": "coordinator", "state": "running", "healthy": True, "port": 9095}]
    for n, ok in enumerate(healthy, 1):
        out.append({"name": f"broker-{n}", "role": "broker", "state": "running" if ok else "paused",
                    "healthy": ok, "port": 9091 + n})
    return {"services": out, "events": []}


def clients_made(monkeypatch) -> list[Client]:
    """Every KafkaClient build_status makes (a fake answering as Client does)."""
    made: list[Client] = []

    class Sub(Client):
        def __init__(self, addresses, **kw):
            super().__init__(addresses)
            made.append(self)

    monkeypatch.setattr("sandbox.health.status.KafkaClient", Sub)
    return made


def test_status_lists_topics_while_a_broker_is_down(monkeypatch):
    made = clients_made(monkeypatch)
    monkeypatch.setattr("sandbox.health.status._MIN_ISR", {})
    full = Client([("127.0.0.1", 9092), ("127.0.0.1", 9093), ("127.0.0.1", 9094)])
    st = build_status(name="n", mode="native", bootstrap="x", state=services(True, True, False), client=full)
    (sub,) = made
    assert sub.addresses == [("127.0.0.1", 9092), ("127.0.0.1", 9093)]   # only the brokers that answer
    (t,) = st["topics"]
    assert (t["under_replicated_partitions"], t["under_min_isr_partitions"], t["offline_partitions"],
            t["leaderless_partitions"], t["min_insync_replicas"]) == (2, 1, 1, 1, 2)
    assert sub.asked == [[0, 1]] and t["end_offsets"] is None   # partition 2 has no leader to ask
    assert [p["partition"] for p in t["partition_offsets"]] == [0, 1]
    assert not st["healthy"] and any("without a leader" in p for p in st["problems"])
    # groups are not asked of the broker that does not answer (a timeout per request), and so said
    assert sub.skipped == {3}
    assert "groups and transactions coordinated by broker(s) [3] are not shown: not healthy" in st["problems"]


def test_a_groups_lag_is_unknown_while_a_partition_it_committed_is_led_by_a_broker_not_asked(monkeypatch):
    """A partial sum would understate the lag: it is null (the text view shows "-") while any of
    the group's partitions has no end offset, and the partitions known keep theirs."""
    from sandbox.client.models import GroupDescription, GroupListing, PartitionLag
    from sandbox.cli.render import _or_dash

    made = clients_made(monkeypatch)
    monkeypatch.setattr("sandbox.health.status._MIN_ISR", {})
    monkeypatch.setattr(Client, "list_groups", lambda self, *, skip=(), **kw: [GroupListing("g", "Stable", "consumer"),
                                                                         GroupListing("h", "Stable", "consumer")])
    monkeypatch.setattr(Client, "describe_group",
                        lambda self, g: GroupDescription(g, "Stable", "consumer", "range", [], 0), raising=False)

    def group_lag(self, g, *, skip=(), known_ends=None):
        self.lag_skipped = set(skip)
        known = [PartitionLag("orders", 0, 4, 10, 6)]
        return known + ([PartitionLag("orders", 2, 1, None, None)] if g == "g" else [])

    monkeypatch.setattr(Client, "group_lag", group_lag, raising=False)
    full = Client([("127.0.0.1", 9092), ("127.0.0.1", 9093), ("127.0.0.1", 9094)])
    st = build_status(name="n", mode="native", bootstrap="x", state=services(True, True, False), client=full)
    (sub,) = made
    assert sub.lag_skipped == {3}
    lags = {g["group"]: g for g in st["groups"]}
    assert lags["g"]["lag"] is None and lags["h"]["lag"] == 6
    assert [p["lag"] for p in lags["g"]["partitions"]] == [6, None]
    assert _or_dash(lags["g"]["lag"]) == "-" and _or_dash(lags["h"]["lag"]) == "6"


def test_status_from_the_coordinator_when_no_broker_answers(monkeypatch):
    made = clients_made(monkeypatch)
    full = Client([("127.0.0.1", 9092)])
    st = build_status(name="n", mode="native", bootstrap="x", state=services(False), client=full,
                      coordinator=("127.0.0.1", 9095))
    assert made[0].addresses == [("127.0.0.1", 9095)] and made[0].asked == []   # no end offsets asked
    assert [t["name"] for t in st["topics"]] == ["orders"] and st["groups"] == []
    # the coordinator is still asked whether it knows every broker (it lists 1 and 2 here)
    assert not any("does not know" in p for p in st["problems"])


def test_monitor_replicas_column():
    from sandbox.cli.monitor import replicas_cell

    assert replicas_cell({"replication": 1}) == "1"
    assert replicas_cell({"replication": 3, "under_replicated_partitions": 0, "offline_partitions": 0}) == "3 in sync"
    assert replicas_cell({"replication": 3, "under_replicated_partitions": 2, "under_min_isr_partitions": 1,
                          "offline_partitions": 1}) == "3: 1 offline, 1 under min ISR, 2 under-replicated"


def test_one_broker_move_is_one_leader_change_per_topic_listing_the_epochs():
    """Partitions have leader epochs of their own: a move of several is still one event per topic."""
    before = {("t", i): view("t", i, 1, [1, 2], [1, 2], 3 + i) for i in range(3)}
    after = {("t", i): view("t", i, 2, [1, 2], [1, 2], 4 + i) for i in range(3)}
    events = [e for e in replica_events(before, after) if e["kind"] == "leader-change"]
    assert events == [{"service": "broker-2", "kind": "leader-change",
                       "detail": "topic t partitions 0, 1, 2: leader broker 2 (was broker 1), leader epochs 4, 5, 6"}]


def test_a_replica_whose_broker_cannot_open_the_log_is_named_and_counted():
    """Metadata's offline_replicas on a listed broker: its log of that partition cannot be opened
    (a file held by another program, reported to the coordinator). Status names the partition and
    the broker; one replica led by it counts as offline (nothing else can lead it)."""
    from sandbox.client import PartitionMeta as PM
    from sandbox.health.replication import unopenable_problems
    snap = snapshot(md({"events": [PM(0, 1, [2, 1, 3], [1, 3], 5, 0, [2]), P(1, 2, [2, 3, 1], [2, 3, 1])],
                        "solo": [PM(0, 2, [2], [2], 0, 0, [2])]}))
    assert snap[("events", 0)].unopenable == (2,) and snap[("events", 0)].offline == (2,)
    h = topic_health([v for k, v in snap.items() if k[0] == "events"], 2)
    assert (h["under_replicated_partitions"], h["offline_partitions"]) == (1, 0)
    assert h["replica_problems"][0]["unopenable_replicas"] == [2]
    solo = topic_health([snap[("solo", 0)]], 1)
    assert solo["offline_partitions"] == 1
    said = unopenable_problems(snap.values())
    assert said[0] == ("events-0: its log on broker 2 cannot be opened (a file is held by another program); "
                       "led by broker 1 meanwhile")
    assert said[1].startswith("solo-0: its log on broker 2 cannot be opened") and "KAFKA_STORAGE_ERROR" in said[1]
