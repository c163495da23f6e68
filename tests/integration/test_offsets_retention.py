"""offsets.retention.minutes with a real stack (`sandbox up`, set in sandbox.toml's [broker]) and
real librdkafka consumers: a group that went away loses its committed offsets after the retention
(its consumers start over from auto.offset.reset, as against Kafka) and `sandbox status` says so;
a live group keeps the offsets of the topics it reads and loses those of a topic it no longer
reads. One minute is the shortest retention Kafka allows."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import OFFSET_INVALID, TopicPartition

from helpers import wait_for

from .kit import consumer, create_topic, produce_all, producer
from .stack_kit import events

pytestmark = pytest.mark.integration


def _committed(bootstrap: str, group: str, parts: list[tuple[str, int]]) -> dict:
    c = consumer(bootstrap, group)
    try:
        return {(tp.topic, tp.partition): tp.offset
                for tp in c.committed([TopicPartition(t, p) for t, p in parts], timeout=15)}
    finally:
        c.close()


def test_committed_offsets_expire_after_offsets_retention_minutes(projects):
    proj = projects("retention", brokers=1)
    proj.write_toml(proj.toml + '\n[broker]\n"offsets.retention.minutes" = 1\n'
                                '"offsets.retention.check.interval.ms" = 500\n')
    r = proj.up()
    assert r.returncode == 0, r.stdout + r.stderr
    b = proj.bootstrap
    for topic in ("a", "b"):
        create_topic(b, topic, 1)
    produce_all(producer(b), "a", [(None, b"%d" % i) for i in range(10)])

    # a group that reads `a`, commits and goes away
    gone = consumer(b, "gone", **{"enable.auto.commit": False})
    gone.subscribe(["a"])
    got, deadline = 0, time.monotonic() + 30
    while got < 10 and time.monotonic() < deadline:
        got += sum(1 for m in gone.consume(10, timeout=0.5) if m.error() is None)
    assert got == 10
    gone.commit(asynchronous=False)
    gone.close()
    committed_at = time.monotonic()

    # a group that keeps reading `a` (and once committed an offset of `b`, which it does not read)
    live = consumer(b, "live", **{"enable.auto.commit": False})
    live.subscribe(["a"])
    wait_for(lambda: live.poll(0.2) is not None or bool(live.assignment()), 30, what="live's assignment")
    live.commit(offsets=[TopicPartition("a", 0, 7), TopicPartition("b", 0, 3)], asynchronous=False)
    try:
        assert _committed(b, "gone", [("a", 0)]) == {("a", 0): 10}
        # kept for the minute, gone after it (checked twice a second)
        wait_for(lambda: _committed(b, "gone", [("a", 0)]) == {("a", 0): OFFSET_INVALID}, 90,
                 what="group gone's offsets to expire")
        assert time.monotonic() - committed_at >= 55
        wait_for(lambda: _committed(b, "live", [("b", 0)]) == {("b", 0): OFFSET_INVALID}, 30,
                 what="live's offset of b, a topic it does not read, to expire")
        for _ in range(4):   # the live consumer keeps polling: a settled group
            live.poll(0.5)
        assert _committed(b, "live", [("a", 0)]) == {("a", 0): 7}
        # why the `gone` group's consumers would start over: in status
        code, st = proj.status()
        told = [e["detail"] for e in events(st, kind="offsets-expired")]
        assert any(m.startswith("group gone: 1 committed offset(s) expired (offsets.retention.minutes=1)")
                   for m in told), st.get("events")
    finally:
        live.close()
