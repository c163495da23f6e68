"""`sandbox topics alter`, what kafka-topics --alter --partitions and kafka-configs --alter do, against
a real `sandbox broker` on a free 127.0.0.1 port (given with -b): partitions grow (never shrink),
configs are set and reset, and records go to the new partitions; bad input is one sentence."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import pytest

from sandbox.client import KafkaClient

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


def cli(*args: str, timeout: float = 90) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run([sys.executable, "-m", "sandbox", *args], env=env, capture_output=True, text=True,
                          timeout=timeout)


def test_alter_grows_partitions_and_sets_and_resets_configs(broker):
    from confluent_kafka import Producer

    name, b = f"alter-{uuid.uuid4().hex[:6]}", ("-b", broker.bootstrap)
    assert cli("topics", "create", name, "--partitions", "2", "-o", "cleanup.policy=compact", *b).returncode == 0
    r = cli("topics", "alter", name, "--partitions", "4", "--set", "retention.ms=60000",
            "--delete-config", "cleanup.policy", *b)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == (f"altered topic {name}: partitions 2 -> 4; retention.ms=60000; "
                                "cleanup.policy reset to its default")
    with KafkaClient(broker.bootstrap) as c:
        md, _ = c.metadata([name])
        assert len(md.topics[name].partitions) == 4
        configs = c.describe_configs(name)
        assert configs["retention.ms"] == ("60000", False) and configs["cleanup.policy"] == ("delete", True)
    p = Producer({"bootstrap.servers": broker.bootstrap})
    p.produce(name, value=b"in-the-new-one", partition=3)
    assert p.flush(30) == 0
    with KafkaClient(broker.bootstrap) as c:
        assert c.end_offsets(name) == {0: 0, 1: 0, 2: 0, 3: 1}

    r = cli("topics", "alter", name, "--partitions", "2", *b)
    assert r.returncode == 1 and "currently has 4 partitions, which is higher than the requested 2" in r.stderr
    assert "Traceback" not in r.stderr
    r = cli("topics", "alter", name, "--partitions", "4", *b)
    assert r.returncode == 0 and "already has 4 partitions" in r.stdout, r.stdout + r.stderr


@pytest.mark.parametrize("args, says, code", [
    ((), "say what to change", 2),
    (("--set", "retention.ms"), "is not KEY=VALUE", 2),
    (("--set", "retention.ms=1", "--delete-config", "retention.ms"), "both set and reset", 2),
])
def test_bad_alter_input_is_one_sentence(broker, args, says, code):
    r = cli("topics", "alter", "t", *args, "-b", broker.bootstrap)
    assert r.returncode == code and says in r.stderr and "Traceback" not in r.stderr, r.stderr


def test_altering_a_missing_topic_or_a_bad_config_says_so(broker):
    b = ("-b", broker.bootstrap)
    r = cli("topics", "alter", "no-such-topic", "--partitions", "3", *b)
    assert r.returncode == 1 and "does not exist" in r.stderr, r.stderr
    name = f"alter-{uuid.uuid4().hex[:6]}"
    assert cli("topics", "create", name, *b).returncode == 0
    r = cli("topics", "alter", name, "--set", "retention.ms=abc", *b)
    assert r.returncode == 1 and "retention.ms" in r.stderr and "Traceback" not in r.stderr, r.stderr


def test_internal_topics_keep_their_partition_count(broker):
    """A group's `__consumer_offsets` partition is its hash modulo the count: growing it would
    move every group away from its committed offsets."""
    name = f"alter-{uuid.uuid4().hex[:6]}"
    with KafkaClient(broker.bootstrap) as c:
        c.create_topic(name, 1, 1)
        c.commit_offsets(f"g-{uuid.uuid4().hex[:6]}", {(name, 0): 0})   # makes __consumer_offsets
        md, _ = c.metadata(["__consumer_offsets"])
        have = len(md.topics["__consumer_offsets"].partitions)
    r = cli("topics", "alter", "__consumer_offsets", "--partitions", str(have + 10), "-b", broker.bootstrap)
    assert r.returncode == 1 and "cannot be changed" in r.stderr and "Traceback" not in r.stderr, r.stderr
    with KafkaClient(broker.bootstrap) as c:
        md, _ = c.metadata(["__consumer_offsets"])
        assert len(md.topics["__consumer_offsets"].partitions) == have


def test_deleting_a_config_not_set_on_the_topic_is_refused_as_kafka_configs_does(broker):
    """Found by review: `--delete-config foo` said "foo reset to its default" for a name Kafka does
    not know; kafka-configs refuses a config the topic does not set ("Invalid config(s)")."""
    b = ("-b", broker.bootstrap)
    name = f"alter-{uuid.uuid4().hex[:6]}"
    assert cli("topics", "create", name, "-o", "retention.ms=1000", *b).returncode == 0
    r = cli("topics", "alter", name, "--delete-config", "foo", "--delete-config", "segment.ms", *b)
    assert r.returncode == 1 and "Invalid config(s): foo, segment.ms" in r.stderr, r.stderr
    r = cli("topics", "alter", name, "--delete-config", "retention.ms", *b)
    assert r.returncode == 0 and "retention.ms reset to its default" in r.stdout, r.stdout + r.stderr
