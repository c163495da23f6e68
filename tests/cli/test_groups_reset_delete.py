"""`sandbox groups reset-offsets` and `sandbox groups delete`, what kafka-consumer-groups --reset-offsets
and --delete do, against a real `sandbox broker` on a free 127.0.0.1 port (given with -b), with a
real confluent-kafka consumer group: refused while the group has members, a dry run unless
--execute, offsets kept between the log start and end, and a consumer that reads again from where
the offsets were moved. Pure helpers (offset rules, argument parsing) are checked without a broker."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid

import pytest

from helpers import wait_for
from sandbox.cli.groups_cmds import new_offsets, parse_datetime_ms, parse_topic_arg
from sandbox.client import KafkaClient

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

T0 = 1_790_000_000_000   # the records' timestamps: T0, T0 + 1 s, ... (2026-09-21)


def cli(*args: str, timeout: float = 90) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run([sys.executable, "-m", "sandbox", *args], env=env, capture_output=True, text=True,
                          timeout=timeout)


# ---- without a broker -------------------------------------------------------------------------------

def test_new_offsets_follow_kafkas_rules():
    tp0, tp1 = ("t", 0), ("t", 1)
    starts, ends, current = {tp0: 2, tp1: 0}, {tp0: 10, tp1: 4}, {tp0: 7}
    assert new_offsets(current, starts, ends, "earliest") == ({tp0: 2, tp1: 0}, [])
    assert new_offsets(current, starts, ends, "latest") == ({tp0: 10, tp1: 4}, [])
    out, notes = new_offsets(current, starts, ends, "offset", 5)
    assert out == {tp0: 5, tp1: 4} and notes == ["t-1: offset 5 is past the log end 4; 4 is used"]
    out, notes = new_offsets({tp0: 7, tp1: 1}, starts, ends, "shift", -6)
    assert out == {tp0: 2, tp1: 0} and len(notes) == 2 and "below the log start 2" in notes[0]
    with pytest.raises(ValueError, match="no committed offset on t-1 to shift"):
        new_offsets(current, starts, ends, "shift", 1)
    # by time: the first offset at or after it, or the end, taken as it is (not adjusted, as in Kafka)
    assert new_offsets(current, starts, ends, "datetime", by_time={tp0: 6, tp1: 5}) == ({tp0: 6, tp1: 5}, [])


def test_topic_and_datetime_arguments():
    assert parse_topic_arg("orders") == ("orders", None)
    assert parse_topic_arg("orders:2,0,2") == ("orders", [0, 2])
    for bad in ("orders:x", ":1", "orders:", "orders:-1"):
        with pytest.raises(ValueError, match="--topic"):
            parse_topic_arg(bad)
    assert parse_datetime_ms("2026-09-21T14:13:20Z") == T0
    assert parse_datetime_ms("2026-09-21T16:13:20+02:00") == T0
    # exact to the millisecond (a float's timestamp() * 1000 comes out 1 ms early for some)
    import datetime as dt
    for ms in (2183226373411, T0 + 1, 1_000_000_000_999):
        text = (dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(milliseconds=ms)).isoformat()
        assert parse_datetime_ms(text) == ms, text
    for bad in ("yesterday", "1969-12-31T23:59:59.999Z"):   # before 1970: ListOffsets' special values
        with pytest.raises(ValueError):
            parse_datetime_ms(bad)


# ---- against a real broker --------------------------------------------------------------------------

def _consumer(bootstrap: str, group: str):
    from confluent_kafka import Consumer

    return Consumer({"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest",
                     "enable.auto.commit": False, "session.timeout.ms": 6000})


def _read_all(bootstrap: str, group: str, topic: str, want: int, limit_s: float = 30.0) -> list[tuple[int, int]]:
    """(partition, offset) of what one consumer of `group` reads (up to `want` records), committed."""
    c = _consumer(bootstrap, group)
    c.subscribe([topic])
    got: list[tuple[int, int]] = []
    deadline = time.monotonic() + limit_s
    try:
        while len(got) < want and time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is not None and not m.error():
                got.append((m.partition(), m.offset()))
        if got:
            c.commit(asynchronous=False)
    finally:
        c.close()
    return got


@pytest.fixture
def group_at_end(broker):
    """A topic of 2 partitions, 10 records each (timestamps T0 + i s), and group `g` that read them all."""
    from confluent_kafka import Producer

    topic, group = f"reset-{uuid.uuid4().hex[:6]}", f"g-{uuid.uuid4().hex[:6]}"
    with KafkaClient(broker.bootstrap) as c:
        c.create_topic(topic, 2, 1)
    p = Producer({"bootstrap.servers": broker.bootstrap})
    for part in (0, 1):
        for i in range(10):
            p.produce(topic, value=f"{part}-{i}".encode(), partition=part, timestamp=T0 + i * 1000)
    assert p.flush(30) == 0
    assert len(_read_all(broker.bootstrap, group, topic, 20)) == 20
    return topic, group


def _wait_inactive(broker, group: str) -> None:
    """A closed consumer's LeaveGroup handled: the group has no members (Empty)."""
    def inactive():
        with KafkaClient(broker.bootstrap) as c:
            d = c.describe_group(group)
        return not d.members and d.state in ("Empty", "Dead", "")
    wait_for(inactive, 15, what=f"group {group} without members")


def _committed(broker, group):
    with KafkaClient(broker.bootstrap) as c:
        return c.committed_offsets(group)


def test_reset_offsets_is_a_dry_run_until_execute_and_a_consumer_reads_again(broker, group_at_end):
    topic, group = group_at_end
    b = ("-b", broker.bootstrap)
    _wait_inactive(broker, group)
    assert _committed(broker, group) == {(topic, 0): 10, (topic, 1): 10}

    r = cli("groups", "reset-offsets", group, "--topic", topic, "--to-earliest", *b)
    assert r.returncode == 0, r.stderr
    assert [line.split() for line in r.stdout.splitlines()[1:]] == [[group, topic, "0", "0"], [group, topic, "1", "0"]]
    assert "dry run" in r.stderr and _committed(broker, group) == {(topic, 0): 10, (topic, 1): 10}

    r = cli("groups", "reset-offsets", group, "--topic", topic, "--to-earliest", "--execute", *b)
    assert r.returncode == 0, r.stderr
    assert _committed(broker, group) == {(topic, 0): 0, (topic, 1): 0}
    again = _read_all(broker.bootstrap, group, topic, 20)
    assert sorted(again) == [(p, o) for p in (0, 1) for o in range(10)]
    _wait_inactive(broker, group)

    # shift back 3 from the end; past the start is kept at the start, and said
    r = cli("groups", "reset-offsets", group, "--all-topics", "--shift-by", "-3", "--execute", *b)
    assert r.returncode == 0, r.stderr
    assert _committed(broker, group) == {(topic, 0): 7, (topic, 1): 7}
    r = cli("groups", "reset-offsets", group, "--all-topics", "--shift-by", "-50", "--execute", *b)
    assert r.returncode == 0 and "below the log start 0; 0 is used" in r.stderr, r.stderr
    # one partition only, to an offset past the end (kept at the end)
    r = cli("groups", "reset-offsets", group, "--topic", f"{topic}:1", "--to-offset", "99", "--execute", *b)
    assert r.returncode == 0 and "past the log end 10" in r.stderr, r.stderr
    assert _committed(broker, group) == {(topic, 0): 0, (topic, 1): 10}
    # by time: the first record at or after T0 + 4.5 s is offset 5; after the last record, the end
    r = cli("groups", "reset-offsets", group, "--topic", topic, "--to-datetime", "2026-09-21T14:13:24.500Z",
            "--execute", *b)
    assert r.returncode == 0, r.stderr
    assert _committed(broker, group) == {(topic, 0): 5, (topic, 1): 5}
    r = cli("groups", "reset-offsets", group, "--topic", topic, "--to-datetime", "2030-01-01T00:00:00Z", "--execute", *b)
    assert r.returncode == 0, r.stderr
    assert _committed(broker, group) == {(topic, 0): 10, (topic, 1): 10}


def test_reset_and_delete_are_refused_while_the_group_has_members(broker, group_at_end):
    topic, group = group_at_end
    b = ("-b", broker.bootstrap)
    c = _consumer(broker.bootstrap, group)
    c.subscribe([topic])
    try:
        deadline = time.monotonic() + 30
        while not c.assignment() and time.monotonic() < deadline:
            c.poll(0.3)
        assert c.assignment(), "the consumer never joined"
        r = cli("groups", "reset-offsets", group, "--topic", topic, "--to-earliest", "--execute", *b)
        assert r.returncode == 1 and "can only be reset if the group" in r.stderr and "Traceback" not in r.stderr, r.stderr
        r = cli("groups", "delete", group, *b)
        assert r.returncode == 1 and "has active members; stop its consumers first" in r.stderr, r.stderr
        assert _committed(broker, group) == {(topic, 0): 10, (topic, 1): 10}
    finally:
        c.close()
    _wait_inactive(broker, group)
    r = cli("groups", "delete", group, *b)
    assert r.returncode == 0 and f"deleted consumer group {group}" in r.stdout, r.stderr
    assert _committed(broker, group) == {}
    r = cli("groups", "delete", group, *b)
    assert r.returncode == 1 and "does not exist" in r.stderr, r.stderr


def test_bad_reset_arguments_are_one_sentence():
    b = ("-b", "127.0.0.1:9")   # never asked: each is refused before any request
    for args, says in [
        (("--topic", "t"), "exactly one of --to-earliest"),
        (("--topic", "t", "--to-earliest", "--to-latest"), "not --to-earliest and --to-latest"),
        (("--to-earliest",), "name the topics with --topic"),
        (("--topic", "t", "--all-topics", "--to-earliest"), "name the topics with --topic"),
        (("--topic", "t:x", "--to-earliest"), "partitions are numbers"),
        (("--topic", "t", "--to-datetime", "yesterday"), "is not a date and time"),
        (("--topic", "t", "--to-datetime", "1960-01-01T00:00:00Z"), "after 1970"),
    ]:
        r = cli("groups", "reset-offsets", "g", *args, *b)
        assert r.returncode == 2 and says in r.stderr and "Traceback" not in r.stderr, (args, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr
