"""KIP-848 consumer groups with a real client: librdkafka (confluent-kafka) with
group.protocol=consumer. Partitions are split without overlap, rebalanced when members join,
leave or die, committed offsets are honoured, and classic groups keep working beside them.
kafka-python and aiokafka have no KIP-848 consumer (kafka-python 3.0 knows the API key only)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from confluent_kafka import KafkaError, KafkaException

from helpers import wait_for

from .kit import consumer, create_topic, produce_all, producer, unique

pytestmark = [pytest.mark.integration, pytest.mark.timeout(150)]

SESSION_MS = 6000
NEW = {"group.protocol": "consumer", "enable.auto.commit": False, "auto.offset.reset": "earliest",
       "topic.metadata.refresh.interval.ms": 1000, "socket.timeout.ms": 10000, "fetch.wait.max.ms": 100}


def new_consumer(bootstrap: str, group: str, name: str, **conf):
    """A KIP-848 consumer: the classic-only settings of kit.consumer are left out (librdkafka refuses
    session.timeout.ms and heartbeat.interval.ms with group.protocol=consumer)."""
    from confluent_kafka import Consumer

    return Consumer({"bootstrap.servers": bootstrap, "group.id": group, "client.id": name, **NEW, **conf})


class Member:
    """A consumer that commits every record it processes before it polls again, so whoever owns a
    partition next starts right after it: every record is processed exactly once."""

    def __init__(self, bootstrap: str, group: str, topic: str, name: str) -> None:
        self.name, self.got = name, []
        self.c = new_consumer(bootstrap, group, name)
        self.c.subscribe([topic])

    def poll(self, timeout: float = 0.05) -> None:
        m = self.c.poll(timeout)
        if m is None:
            return
        if m.error():
            assert m.error().code() == KafkaError._PARTITION_EOF, m.error()
            return
        self.got.append((m.partition(), m.offset()))
        for attempt in range(20):
            try:
                self.c.commit(message=m, asynchronous=False)
                return
            except KafkaException as e:  # a rebalance moved the epoch on: librdkafka retries too
                if attempt == 19:
                    raise
                time.sleep(0.05)

    def owned(self) -> set[int]:
        return {tp.partition for tp in self.c.assignment()}


def run_until(members: list[Member], pred, timeout: float, what: str) -> None:
    """Poll every member in turn until pred(); after every round no partition may be owned by two."""
    def step() -> bool:
        for m in members:
            m.poll()
        owned = [m.owned() for m in members]
        for i in range(len(owned)):
            for j in range(i + 1, len(owned)):
                assert not owned[i] & owned[j], f"{members[i].name} and {members[j].name} both own {owned[i] & owned[j]}"
        return pred()

    wait_for(step, timeout, interval=0, what=what,
             detail=lambda: str({m.name: (sorted(m.owned()), len(m.got)) for m in members}))


def produce(bootstrap: str, topic: str, n: int, start: int = 0) -> None:
    p = producer(bootstrap)
    produce_all(p, topic, [(None, f"r{i}".encode(), {"partition": i % 6}) for i in range(start, start + n)])


def test_members_share_a_topic_exactly_once_rebalance_without_overlap_and_resume_from_commits(broker):
    topic, group = unique("kip848"), unique("g848")
    create_topic(broker.bootstrap, topic, 6)
    produce(broker.bootstrap, topic, 600)
    a, b = Member(broker.bootstrap, group, topic, "a"), Member(broker.bootstrap, group, topic, "b")
    members = [a, b]
    try:
        t0 = time.monotonic()
        run_until(members, lambda: len(a.got) + len(b.got) >= 600 and len(a.owned()) == len(b.owned()) == 3,
                  40, "600 records over two members")
        first = time.monotonic() - t0
        assert a.got and b.got
        assert a.owned() | b.owned() == set(range(6))
        c = Member(broker.bootstrap, group, topic, "c")
        members.append(c)
        t1 = time.monotonic()
        run_until(members, lambda: [len(m.owned()) for m in members] == [2, 2, 2], 30, "three members with 2 each")
        rebalance = time.monotonic() - t1
        produce(broker.bootstrap, topic, 300, start=600)
        run_until(members, lambda: sum(len(m.got) for m in members) >= 900, 30, "900 records")
        a.c.close()  # leaves with epoch -1: b and c take over its partitions at once
        members.remove(a)
        run_until(members, lambda: len(b.owned()) == len(c.owned()) == 3, 20, "b and c with 3 each")
        produce(broker.bootstrap, topic, 60, start=900)
        run_until(members, lambda: len(a.got) + sum(len(m.got) for m in members) >= 960, 30, "960 records")
        time.sleep(1.0)
        for m in members:
            m.poll(0.2)
        seen = a.got + b.got + c.got
        assert len(seen) == 960 and len(set(seen)) == 960, "a record was processed twice or lost"
        print(f"KIP-848: 600 records over 2 members in {first:.1f}s, 3rd member balanced in {rebalance:.1f}s")
    finally:
        for m in members:
            m.c.close()
    # committed offsets are honoured: a new member of the group reads only what came after
    produce(broker.bootstrap, topic, 30, start=960)
    d = Member(broker.bootstrap, group, topic, "d")
    try:
        run_until([d], lambda: len(d.got) >= 30, 30, "the 30 new records")
        time.sleep(1.0)
        d.poll(0.2)
        assert len(d.got) == 30
    finally:
        d.c.close()


DYING = textwrap.dedent("""
    import sys, time
    from confluent_kafka import Consumer
    c = Consumer({"bootstrap.servers": sys.argv[1], "group.id": sys.argv[2], "group.protocol": "consumer",
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    c.subscribe([sys.argv[3]])
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        c.poll(0.1)
        if c.assignment():
            print("ASSIGNED", len(c.assignment()), flush=True)
            break
    while time.monotonic() < deadline:
        c.poll(0.1)
""")


def test_a_member_that_dies_is_removed_after_the_session_timeout_and_the_other_takes_over(broker_factory):
    b = broker_factory([f"group.consumer.session.timeout.ms={SESSION_MS}"])
    topic, group = unique("kip848die"), unique("gdie")
    create_topic(b.bootstrap, topic, 6)
    proc = subprocess.Popen([sys.executable, "-c", DYING, b.bootstrap, group, topic], stdout=subprocess.PIPE,
                            text=True)
    survivor = None
    try:
        line = proc.stdout.readline()  # type: ignore[union-attr]
        assert line.startswith("ASSIGNED"), line
        survivor = Member(b.bootstrap, group, topic, "survivor")
        run_until([survivor], lambda: len(survivor.owned()) == 3, 30, "a 3/3 split with the doomed member")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        t0 = time.monotonic()
        run_until([survivor], lambda: len(survivor.owned()) == 6, SESSION_MS / 1000 + 15, "the takeover")
        took = time.monotonic() - t0
        assert took >= SESSION_MS / 1000 - 2, f"taken over after {took:.1f}s: before the session timeout"
        produce(b.bootstrap, topic, 60)
        run_until([survivor], lambda: len(survivor.got) >= 60, 20, "60 records")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        if survivor is not None:
            survivor.c.close()


def test_describe_list_and_classic_groups_beside_consumer_groups(broker):
    from confluent_kafka.admin import AdminClient

    from sandbox.cli.groups_cmds import describe_rows
    from sandbox.client import KafkaClient

    topic, group, classic_group = unique("kip848d"), unique("gnew"), unique("gold")
    create_topic(broker.bootstrap, topic, 6)
    produce(broker.bootstrap, topic, 60)
    a, b = Member(broker.bootstrap, group, topic, "a"), Member(broker.bootstrap, group, topic, "b")
    old = consumer(broker.bootstrap, classic_group)  # a classic consumer (JoinGroup/SyncGroup) beside them
    old.subscribe([topic])
    try:
        run_until([a, b], lambda: len(a.got) + len(b.got) >= 60 and len(a.owned()) == 3, 30, "the split")
        classic_got, deadline = 0, time.monotonic() + 30
        while classic_got < 60 and time.monotonic() < deadline:
            classic_got += sum(1 for m in old.consume(100, 0.2) if not m.error())
        assert classic_got == 60

        with KafkaClient(broker.bootstrap) as kc:
            desc, rows = describe_rows(kc, group)
            assert (desc.group_type, desc.state, desc.protocol) == ("consumer", "Stable", "uniform")
            assert sorted(m.client_id for m in desc.members) == ["a", "b"]
            owners = {r[1]: r[5] for r in rows}
            assert set(owners) == set(range(6)) and len(set(owners.values())) == 2
            assert all(r[2] == 10 and r[4] == 0 for r in rows), rows  # committed 10 of 10 per partition
            listed = {g.group: g for g in kc.list_groups()}
            assert listed[group].protocol_type == "consumer" and listed[classic_group].state == "Stable"
            classic_desc = kc.describe_group(classic_group)
            assert classic_desc.group_type == "classic" and len(classic_desc.members) == 1

        adm = AdminClient({"bootstrap.servers": broker.bootstrap})
        listing = adm.list_consumer_groups(request_timeout=10).result()
        types = {g.group_id: str(getattr(g, "type", "")) for g in listing.valid}
        assert "CONSUMER" in types[group].upper() and "CLASSIC" in types[classic_group].upper(), types

        # a classic consumer joins the consumer group (Kafka 4.0's migration policy: bidirectional):
        # the coordinator gives it a share through JoinGroup/SyncGroup, and takes it back when it leaves
        late = consumer(broker.bootstrap, group, **{"client.id": "late"})
        late.subscribe([topic])
        try:
            def late_poll():
                m = late.poll(0.05)
                assert m is None or not m.error() or m.error().code() == KafkaError._PARTITION_EOF, m.error()
                return len(late.assignment()) == 2
            run_until([a, b], lambda: late_poll() and len(a.owned()) == len(b.owned()) == 2
                      and not ({tp.partition for tp in late.assignment()} & (a.owned() | b.owned())),
                      30, "a classic member's share of the consumer group")
            with KafkaClient(broker.bootstrap) as kc:
                desc, _ = describe_rows(kc, group)
                assert desc.group_type == "consumer" and sorted(m.client_id for m in desc.members) == ["a", "b", "late"]
        finally:
            late.close()
        run_until([a, b], lambda: len(a.owned()) == len(b.owned()) == 3, 30, "its share back after it left")
    finally:
        old.close()
        a.c.close()
        b.c.close()
