"""Every command that talks to a broker resolves its sandbox the same way (sandbox.cli.target):
the address given with -b, else this folder's running sandbox; otherwise one sentence, exit 3.
Against a real `sandbox broker` on a free 127.0.0.1 port standing in for "another folder's stack":
a folder whose sandbox.toml points at that port but runs nothing must not create topics there.
`sandbox consume` opened before its topic exists waits for it (says so once) and reads it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sandbox.client import KafkaClient

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def cli(cwd: Path, *args: str, timeout: float = 60, data: bytes | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run([sys.executable, "-m", "sandbox", *args], cwd=cwd, env=env, input=data,
                          capture_output=True, timeout=timeout)


def topics_of(bootstrap: str) -> set[str]:
    with KafkaClient(bootstrap, timeout=5.0) as c:
        return set(c.metadata()[0].topics)


@pytest.fixture
def elsewhere(tmp_path, broker):
    """A folder with a sandbox.toml whose port is where another stack's broker answers."""
    folder = tmp_path / "not-running-here"
    folder.mkdir()
    (folder / "sandbox.toml").write_text(f"[sandbox]\nport = {broker.port}\n", encoding="utf-8")
    return folder


@pytest.mark.parametrize("args", [
    ["topics", "create", "stray"],
    ["topics", "list"],
    ["topics", "describe", "stray"],
    ["topics", "delete", "stray"],
    ["produce", "stray"],
    ["consume", "stray", "-e"],
    ["groups", "list"],
    ["groups", "describe", "stray"],
])
def test_a_folder_whose_sandbox_is_not_running_never_uses_another_stack(elsewhere, broker, args):
    r = cli(elsewhere, *args, data=b"x\n")
    err = r.stderr.decode()
    assert r.returncode == 3, (r.returncode, err)
    assert "is not running" in err and "sandbox up" in err and "-b HOST:PORT" in err, err
    assert "Traceback" not in err
    assert "stray" not in topics_of(broker.bootstrap)


def test_a_folder_without_sandbox_toml_says_there_is_no_sandbox_here(tmp_path):
    r = cli(tmp_path, "topics", "create", "stray")
    err = r.stderr.decode()
    assert r.returncode == 3, err
    assert err.startswith("error: there is no sandbox here"), err


def test_dash_b_names_the_broker_for_topics_as_for_produce(elsewhere, broker):
    r = cli(elsewhere, "topics", "create", "given", "--partitions", "2", "-o", "retention.ms=60000",
            "-b", broker.bootstrap)
    assert r.returncode == 0, r.stderr.decode()
    assert "created topic given (2 partitions)" in r.stdout.decode()
    r = cli(elsewhere, "topics", "describe", "given", "-b", broker.bootstrap)
    assert r.returncode == 0 and "retention.ms=60000" in r.stdout.decode(), r.stdout + r.stderr


def test_dash_b_names_the_broker_for_groups_too(elsewhere, broker):
    from confluent_kafka import Consumer, TopicPartition

    r = cli(elsewhere, "topics", "create", "g-topic", "-b", broker.bootstrap)
    assert r.returncode == 0, r.stderr.decode()
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "given-group", "enable.auto.commit": False})
    try:
        c.commit(offsets=[TopicPartition("g-topic", 0, 0)], asynchronous=False)
    finally:
        c.close()
    r = cli(elsewhere, "groups", "list", "-b", broker.bootstrap)
    assert r.returncode == 0 and "given-group" in r.stdout.decode(), r.stdout + r.stderr
    r = cli(elsewhere, "groups", "describe", "given-group", "-b", broker.bootstrap)
    assert r.returncode == 0 and "g-topic" in r.stdout.decode(), r.stdout + r.stderr


def test_old_topics_create_spellings_still_work_with_a_note(elsewhere, broker):
    r = cli(elsewhere, "topics", "create", "legacy", "-p", "3", "-c", "retention.ms=1000", "-r", "1",
            "-b", broker.bootstrap)
    err = r.stderr.decode()
    assert r.returncode == 0, err
    assert "note: `topics create -p N` is deprecated; use --partitions N" in err
    assert "note: `topics create -c KEY=VALUE` is deprecated; use -o KEY=VALUE" in err
    with KafkaClient(broker.bootstrap, timeout=5.0) as c:
        assert len(c.partitions("legacy")) == 3
        assert c.describe_configs("legacy")["retention.ms"][0] == "1000"


def test_consume_waits_for_a_topic_that_does_not_exist_yet(tmp_path, broker):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    consumer = subprocess.Popen([sys.executable, "-m", "sandbox", "consume", "later", "-n", "2",
                                 "--timeout-ms", "60000", "-b", broker.bootstrap], cwd=tmp_path, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        time.sleep(4)   # time to start, look for the topic and say it waits
        assert consumer.poll() is None, consumer.communicate(timeout=5)
        r = cli(tmp_path, "produce", "later", "-b", broker.bootstrap, data=b"first\nsecond\n")
        assert r.returncode == 0, r.stderr.decode()
        out, err = consumer.communicate(timeout=30)
    finally:
        if consumer.poll() is None:
            consumer.kill()
            consumer.communicate(timeout=10)
    assert consumer.returncode == 0, err.decode()
    assert out.decode().splitlines() == ["first", "second"]
    assert err.decode().count("topic later does not exist yet; waiting for it") == 1, err.decode()


def test_consume_wait_is_bounded_by_timeout_ms(tmp_path, broker):
    r = cli(tmp_path, "consume", "never", "--timeout-ms", "1500", "-b", broker.bootstrap, timeout=30)
    err = r.stderr.decode()
    assert r.returncode == 1, err
    assert "topic never did not appear within 1.5 s" in err
