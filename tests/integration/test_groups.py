"""Consumer groups with real clients: partition split, takeover, and group admin."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
from confluent_kafka import KafkaError

from helpers import wait_for

from .kit import consumer, create_topic, produce_all, producer, unique

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

GROUP_CONF = {"partition.assignment.strategy": "range", "enable.auto.commit": True,
              "auto.commit.interval.ms": 500}


class Tracked:
    """A confluent consumer whose on_assign/on_revoke callbacks are recorded."""

    def __init__(self, bootstrap: str, group: str, topic: str, name: str) -> None:
        self.name = name
        self.assigned: list[set[int]] = []
        self.revoked: list[set[int]] = []
        self.messages: list = []
        self.c = consumer(bootstrap, group, **GROUP_CONF, **{"client.id": name})
        self.c.subscribe([topic], on_assign=self._on_assign, on_revoke=self._on_revoke)

    def _on_assign(self, c, parts) -> None:
        self.assigned.append({p.partition for p in parts})

    def _on_revoke(self, c, parts) -> None:
        self.revoked.append({p.partition for p in parts})

    def poll(self, timeout: float = 0.1) -> None:
        m = self.c.poll(timeout)
        if m is not None:
            if m.error():
                assert m.error().code() == KafkaError._PARTITION_EOF, m.error()
            else:
                self.messages.append(m)

    def current(self) -> set[int]:
        return {p.partition for p in self.c.assignment()}


def poll_until(consumers: list[Tracked], pred, timeout: float, what: str) -> None:
    """Poll every consumer (0.1 s each) until pred(); the consumers' state in the failure."""
    def step() -> bool:
        for c in consumers:
            c.poll(0.1)
        return pred()

    wait_for(step, timeout, interval=0, what=what,
             detail=lambda: str({c.name: (sorted(c.current()), c.assigned, c.revoked) for c in consumers}))


def test_two_consumers_split_then_one_takes_over(broker):
    t = unique("split")
    group = unique("grp")
    create_topic(broker.bootstrap, t, 4)
    c1 = Tracked(broker.bootstrap, group, t, "c1")
    c2 = None
    try:
        poll_until([c1], lambda: c1.current() == {0, 1, 2, 3}, 30, "c1 alone owns all 4 partitions")
        c2 = Tracked(broker.bootstrap, group, t, "c2")

        def split():
            a, b = c1.current(), c2.current()
            return len(a) == 2 and len(b) == 2 and not (a & b) and (a | b) == {0, 1, 2, 3}
        poll_until([c1, c2], split, 40, "an even, disjoint split of 4 partitions")
        # the callbacks saw the same thing
        assert c1.assigned[-1] == c1.current() and c2.assigned[-1] == c2.current()
        assert c1.revoked, "c1 must have given partitions back when c2 joined"

        # each consumer now receives exactly the records of its own partitions
        p = producer(broker.bootstrap)
        produce_all(p, t, [(f"k{i}".encode(), f"split {i}".encode(), {"partition": i % 4}) for i in range(40)])
        poll_until([c1, c2], lambda: len(c1.messages) + len(c2.messages) >= 40, 30, "40 records")
        for c in (c1, c2):
            got = {m.partition() for m in c.messages}
            assert got == c.current(), (c.name, got, c.current())
            assert len(c.messages) == 20, (c.name, len(c.messages))
        c2_parts = c2.current()

        # c2 leaves: c1 takes over all four
        c2.c.close()
        c2 = None
        poll_until([c1], lambda: c1.current() == {0, 1, 2, 3}, 30, "c1 owning all 4 partitions again")
        assert c1.assigned[-1] == {0, 1, 2, 3}

        # and consumes new data from the partitions c2 had, resuming after c2's commits
        produce_all(p, t, [(b"after", f"after {i}".encode(), {"partition": i % 4}) for i in range(40)])
        poll_until([c1], lambda: sum(m.value().startswith(b"after") for m in c1.messages) >= 40, 30,
                   "40 new records at c1")
        after = [m for m in c1.messages if m.value().startswith(b"after")]
        assert sorted(m.value() for m in after) == sorted(f"after {i}".encode() for i in range(40))
        split_values = [m.value() for m in c1.messages if m.value().startswith(b"split")]
        redelivered = [m for m in c1.messages if m.value().startswith(b"split") and m.partition() in c2_parts]
        assert not redelivered, f"c1 re-read c2's committed records: {[m.value() for m in redelivered]}"
        assert len(split_values) == 20
    finally:
        if c2 is not None:
            c2.c.close()
        c1.c.close()


def test_kafka_python_admin_lists_and_describes_groups(broker):
    from kafka.admin import KafkaAdminClient

    t = unique("desc")
    group = unique("grp")
    create_topic(broker.bootstrap, t, 4)
    c1 = Tracked(broker.bootstrap, group, t, "member-one")
    c2 = Tracked(broker.bootstrap, group, t, "member-two")
    ka = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=15000)
    try:
        poll_until([c1, c2], lambda: len(c1.current()) == 2 and len(c2.current()) == 2, 40, "a stable split")
        listed = list_groups(ka)
        assert group in listed, listed
        assert listed[group] == "consumer", listed[group]

        def stable() -> dict | None:
            # keep the members alive (heartbeats are served by poll in librdkafka's background)
            for c in (c1, c2):
                c.poll(0.05)
            d = describe_group(ka, group)
            return d if d["state"] == "Stable" else None

        desc = wait_for(stable, 20, interval=0, what=f"group {group} Stable",
                        detail=lambda: str(describe_group(ka, group)))
        assert desc["protocol_type"] == "consumer"
        assert desc["protocol"] == "range"
        members = desc["members"]
        assert sorted(m["client_id"] for m in members) == ["member-one", "member-two"]
        assert len({m["member_id"] for m in members}) == 2
        assert all(m["client_host"].lstrip("/") == "127.0.0.1" for m in members), members
        assert all(list(subscribed_topics(m)) == [t] for m in members), members
        by_client = {m["client_id"]: m for m in members}
        assert assigned_partitions(by_client["member-one"], t) == c1.current()
        assert assigned_partitions(by_client["member-two"], t) == c2.current()

        c1.c.close()
        c2.c.close()
        def empty() -> dict | None:
            d = describe_group(ka, group)
            return d if d["state"] == "Empty" else None

        desc = wait_for(empty, 20, interval=0.2, what=f"group {group} Empty",
                        detail=lambda: str(describe_group(ka, group)))
        assert desc["members"] == []
    finally:
        ka.close()


def list_groups(ka) -> dict[str, str | None]:
    fn = getattr(ka, "list_consumer_groups", None) or ka.list_groups
    out = {}
    for g in fn():
        if isinstance(g, dict):
            out[g["group_id"]] = g.get("protocol_type")
        else:
            out[g[0]] = g[1]
    return out


def describe_group(ka, group: str) -> dict:
    """{"state", "protocol_type", "protocol", "members": [{client_id, member_id, client_host,
    member_assignment, member_metadata}]} from kafka-python 3.x (describe_groups) or 2.x."""
    if hasattr(ka, "describe_groups"):
        d = dict(ka.describe_groups([group])[group])
        assert d.get("error") is None, d
        assert d["group_id"] == group
        return {"state": d["group_state"], "protocol_type": d["protocol_type"],
                "protocol": d["protocol_data"], "members": d["members"]}
    (info,) = ka.describe_consumer_groups([group])  # kafka-python 2.x
    return {"state": info.state, "protocol_type": info.protocol_type, "protocol": info.protocol,
            "members": [{"client_id": m.client_id, "member_id": m.member_id, "client_host": m.client_host,
                         "member_assignment": m.member_assignment,
                         "member_metadata": m.member_metadata} for m in info.members]}


def subscribed_topics(member: dict) -> list[str]:
    md = member["member_metadata"]
    return list(md["topics"] if isinstance(md, dict) else md.topics)


def assigned_partitions(member: dict, topic: str) -> set[int]:
    a = member["member_assignment"]
    if isinstance(a, dict):
        a = a.get("assigned_partitions") or a.get("assignment")
        out = set()
        for item in a:
            if isinstance(item, dict):
                if item.get("topic") == topic:
                    out |= set(item.get("partitions"))
            else:
                name, parts = item
                if name == topic:
                    out |= set(parts)
        return out
    return {p.partition for p in a.partitions() if p.topic == topic}


# ---- issue 13, bug 2: a member that died must not hold the group up ----------------------------

KP_DIES = """
import os, sys
from kafka import KafkaConsumer
topic, bootstrap, group = sys.argv[1:4]
c = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group, auto_offset_reset="earliest",
                  session_timeout_ms=10000, heartbeat_interval_ms=1000, enable_auto_commit=False)
for _ in range(60):
    if c.poll(timeout_ms=500) and c.assignment():
        break
print("assigned" if c.assignment() else "never assigned", flush=True)
os._exit(0)  # hard: no LeaveGroup, the group learns only from its session timeout
"""

KP_GIVES_UP = """
import sys, time
from kafka import KafkaConsumer
topic, bootstrap, group = sys.argv[1:4]
c = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group, auto_offset_reset="earliest",
                  session_timeout_ms=45000, request_timeout_ms=2000, consumer_timeout_ms=1000)
n = sum(1 for _ in c)  # its JoinGroup waits for the dead member; it gives up after 1 s
t = time.monotonic()
c.close()  # its LeaveGroup queues behind the parked JoinGroup and times out
print(f"got {n}, close took {time.monotonic() - t:.1f} s", flush=True)
"""


def run_python(script: str, *args: str, timeout: float = 60.0) -> str:
    proc = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"exit {proc.returncode}: {proc.stderr[-2000:]}"
    return proc.stdout.strip()


def test_group_recovers_from_a_dead_member_and_one_that_gave_up(broker):
    """Issue 13's scenario: kafka-python A joins and os._exit()s; kafka-python B joins, gives up and
    closes (its LeaveGroup stuck behind its parked JoinGroup, then its connection closes); then a
    confluent consumer C must get a record once A's session (10 s) is over, not after B's (45 s)."""
    t, group = unique("dead"), unique("grp")
    create_topic(broker.bootstrap, t, 1)
    produce_all(producer(broker.bootstrap), t, [(b"k", b"v%d" % i) for i in range(5)])
    assert run_python(KP_DIES, t, broker.bootstrap, group) == "assigned"
    died = time.monotonic()
    out = run_python(KP_GIVES_UP, t, broker.bootstrap, group)
    assert out.startswith("got 0,"), out
    assert time.monotonic() - died < 9, "B must be gone before A's session ends, or this tests nothing"
    c = consumer(broker.bootstrap, group, **{"session.timeout.ms": 6000})
    try:
        c.subscribe([t])
        started = time.monotonic()
        first = None
        while first is None and time.monotonic() - started < 70:
            m = c.poll(0.5)
            if m is not None and not m.error():
                first = time.monotonic() - started
        print(f"C's first record after {first} s ({time.monotonic() - died:.1f} s after A died); B: {out}")
        assert first is not None, "C never got a record"
        assert first < 25, f"C's first record took {first:.1f} s: the group waited for B's session"
    finally:
        c.close()


# ---- OffsetDelete (47) ---------------------------------------------------------------------------

def test_offset_delete_with_kafka_python_admin(broker):
    """kafka-python's delete_group_offsets (confluent-kafka's Python AdminClient has no OffsetDelete)."""
    from kafka import TopicPartition
    from kafka.admin import KafkaAdminClient
    from kafka.errors import GroupIdNotFoundError, GroupSubscribedToTopicError, NoError, UnknownTopicOrPartitionError
    from kafka.structs import OffsetAndMetadata

    t, u, idle, busy = unique("od-t"), unique("od-u"), unique("idle"), unique("busy")
    create_topic(broker.bootstrap, t, 2)
    create_topic(broker.bootstrap, u, 1)
    produce_all(producer(broker.bootstrap), t, [(b"k", b"v%d" % i, {"partition": i % 2}) for i in range(4)])
    ka = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=15000)
    c = None
    try:
        def commit(group: str, *tps: tuple[str, int, int]) -> None:
            res = ka.alter_group_offsets(group, {TopicPartition(x, p): OffsetAndMetadata(o, "", -1) for x, p, o in tps})
            assert all(e is NoError for e in res.values()), res

        def committed(group: str) -> dict[tuple[str, int], int]:
            got = ka.list_group_offsets({group: None})[group]
            return {(tp.topic, tp.partition): om.offset for tp, om in got.items() if om.offset >= 0}

        # an idle group (offsets only): the partitions asked for go, the others stay
        commit(idle, (t, 0, 1), (t, 1, 2), (u, 0, 3))
        res = ka.delete_group_offsets(idle, [TopicPartition(t, 0), TopicPartition(unique("nope"), 0)])
        assert res[TopicPartition(t, 0)] is NoError, res
        assert [e for tp, e in res.items() if tp.topic != t] == [UnknownTopicOrPartitionError], res
        assert committed(idle) == {(t, 1): 2, (u, 0): 3}

        with pytest.raises(GroupIdNotFoundError):
            ka.delete_group_offsets(unique("never"), [TopicPartition(t, 0)])

        # a group with a live member subscribed to t: t's offsets are kept, u's go
        commit(busy, (t, 0, 1), (u, 0, 3))
        c = consumer(broker.bootstrap, busy, **{"session.timeout.ms": 6000})
        c.subscribe([t])
        wait_for(lambda: (c.poll(0.2), c.assignment())[1], 30, interval=0, what="the consumer's partitions")
        res = ka.delete_group_offsets(busy, [TopicPartition(t, 0), TopicPartition(u, 0)])
        assert res == {TopicPartition(t, 0): GroupSubscribedToTopicError, TopicPartition(u, 0): NoError}, res
        assert committed(busy) == {(t, 0): 1}
    finally:
        if c is not None:
            c.close()
        ka.close()
