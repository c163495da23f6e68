"""What kafka-console-producer/consumer and kcat users reach for, against a real `sandbox broker` on a
free 127.0.0.1 port (given with -b): headers (-H KEY=VALUE, also read from confluent-kafka), a
format string (%t %p %o %k %s %T %h), a start offset (--offset N / -N / beginning), and a consumer
group (--group: committed offsets carry over to the next run, checked with our own client)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import pytest

from sandbox.client import KafkaClient

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


def cli(*args: str, data: bytes = b"", timeout: float = 90) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run([sys.executable, "-m", "sandbox", *args], env=env, input=data, capture_output=True,
                          timeout=timeout)


@pytest.fixture
def topic(broker):
    name = f"opts-{uuid.uuid4().hex[:6]}"
    r = cli("topics", "create", name, "--partitions", "1", "-b", broker.bootstrap)
    assert r.returncode == 0, r.stderr
    return name


def test_headers_and_a_format_string(broker, topic):
    from confluent_kafka import Producer

    r = cli("produce", topic, "-K", ":", "-H", "trace=42", "-H", "from=cli", "-b", broker.bootstrap,
            data=b"k1:v1\nk2:v2\n")
    assert r.returncode == 0, r.stderr
    p = Producer({"bootstrap.servers": broker.bootstrap})
    p.produce(topic, key=b"k3", value=b"v3", headers=[("src", b"librdkafka")])
    assert p.flush(30) == 0
    r = cli("consume", topic, "--from-beginning", "-e", "--format", r"%t|%p|%o|%k|%s|%h|%T\n", "-b", broker.bootstrap)
    assert r.returncode == 0, r.stderr
    rows = [line.split("|") for line in r.stdout.decode().splitlines()]
    assert [row[:6] for row in rows] == [
        [topic, "0", "0", "k1", "v1", "trace=42,from=cli"],
        [topic, "0", "1", "k2", "v2", "trace=42,from=cli"],
        [topic, "0", "2", "k3", "v3", "src=librdkafka"]], rows
    assert all(int(row[6]) > 1_600_000_000_000 for row in rows)


def test_start_offset(broker, topic):
    cli("produce", topic, "-b", broker.bootstrap, data=b"a\nb\nc\nd\n")
    r = cli("consume", topic, "-p", "0", "--offset", "2", "-e", "-b", broker.bootstrap)
    assert r.stdout.decode().splitlines() == ["c", "d"], r.stderr
    r = cli("consume", topic, "--offset", "-1", "-e", "-b", broker.bootstrap)
    assert r.stdout.decode().splitlines() == ["d"], r.stderr
    r = cli("consume", topic, "--offset", "beginning", "-n", "1", "-b", broker.bootstrap)
    assert r.stdout.decode().splitlines() == ["a"], r.stderr
    r = cli("consume", topic, "--offset", "soon", "-b", broker.bootstrap)
    assert r.returncode == 2 and b"--offset soon is not beginning, end" in r.stderr


def test_a_consumer_group_carries_on_where_it_stopped(broker, topic):
    cli("produce", topic, "-b", broker.bootstrap, data=b"one\ntwo\nthree\n")
    r = cli("consume", topic, "--group", "readers", "--from-beginning", "-n", "2", "-b", broker.bootstrap)
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode().splitlines() == ["one", "two"]
    assert b"in group readers" in r.stderr
    with KafkaClient(broker.bootstrap, timeout=5.0) as c:
        assert c.committed_offsets("readers") == {(topic, 0): 2}
    r = cli("consume", topic, "--group", "readers", "-e", "--timeout-ms", "30000", "-b", broker.bootstrap)
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode().splitlines() == ["three"]
