"""A full disk under a real broker (its journal on a small tmpfs filled to the last byte): produce is
answered with KAFKA_STORAGE_ERROR on the same connection, nothing acknowledged before is lost, and
producing resumes by itself once space is freed (librdkafka retries through it). Needs root to
mount the tmpfs, which CI and the developer machines have."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid

import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

from sandbox.client import KafkaClient, KafkaClientError

from helpers import wait_for

from .kit import create_topic


@pytest.fixture
def small_disk(tmp_path):
    mnt = tmp_path / "disk"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mnt)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def _fill(path) -> None:
    """Write a filler file until the disk is full (unbuffered: every write reaches the disk)."""
    with open(path, "wb", buffering=0) as f:
        for size in (65536, 4096, 512, 1):
            try:
                while True:
                    f.write(b"\0" * size)
            except OSError:
                pass


def test_full_disk_is_a_storage_error_and_producing_resumes_when_space_is_freed(broker_factory, small_disk):
    broker = broker_factory(data_dir=small_disk / "broker")
    topic = f"full-{uuid.uuid4().hex[:8]}"
    create_topic(broker.bootstrap, topic, 1)
    with KafkaClient(broker.bootstrap, timeout=5.0) as c:
        for i in range(50):
            c.produce(topic, 0, [(None, f"before-{i}".encode())])
        filler = small_disk / "filler"
        _fill(filler)
        with pytest.raises(KafkaClientError, match="KAFKA_STORAGE_ERROR|56|storage"):
            c.produce(topic, 0, [(None, b"x" * 20000)])
        # the same client (and connection) still works: metadata and reads answer
        assert c.end_offsets(topic) == {0: 50}

        # a real client keeps retrying through the full disk and delivers once space is freed
        delivered, errors = [], []
        p = Producer({"bootstrap.servers": broker.bootstrap, "enable.idempotence": True, "acks": "all",
                      "message.timeout.ms": 60000, "retry.backoff.ms": 200, "linger.ms": 0})
        for i in range(20):
            p.produce(topic, value=f"during-{i}".encode() * 500,
                      on_delivery=lambda err, m: (errors if err else delivered).append(err or m.offset()))
        p.poll(2.0)
        assert not delivered, "records were acknowledged while the disk was full"
        os.remove(filler)
        t0 = time.monotonic()
        assert p.flush(45) == 0
        resumed_s = time.monotonic() - t0
        assert not errors and len(delivered) == 20, (errors, delivered)

    log = broker.log_path.read_text(errors="replace")
    assert "EVENT storage-error" in log and "EVENT storage-ok" in log, log[-2000:]
    assert "Traceback" not in log, log[-3000:]
    # every record acknowledged before the disk filled is still there, in order, then the rest
    cons = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "check", "enable.auto.commit": False})
    cons.assign([TopicPartition(topic, 0, 0)])
    values = []
    deadline = time.monotonic() + 30
    while len(values) < 70 and time.monotonic() < deadline:
        for m in cons.consume(100, timeout=0.5):
            if m.error() is None:
                values.append(m.value())
            elif m.error().code() != KafkaError._PARTITION_EOF:
                raise AssertionError(m.error())
    cons.close()
    assert values[:50] == [f"before-{i}".encode() for i in range(50)]
    assert values[50:] == [f"during-{i}".encode() * 500 for i in range(20)]
    assert resumed_s < 30, resumed_s


def test_coordinator_on_a_full_disk_answers_with_an_error_and_keeps_serving(tmp_path, small_disk):
    """The coordinator's journal on a full disk: CreateTopics answers KAFKA_STORAGE_ERROR (no
    dropped connection, no traceback, no crash), a refused topic never appears later, and topics
    are created again once space is freed."""
    from coordinator.server_helpers import CoordinatorProcess

    from helpers import api_versions_ok, listen_port

    coord = CoordinatorProcess(small_disk / "coord", log_path=tmp_path / "coord.log").start()
    port = listen_port()
    broker = subprocess.Popen([sys.executable, "-m", "sandbox", "broker", "--port", str(port), "--data-dir",
                               str(tmp_path / "broker"), "--coordinator", f"127.0.0.1:{coord.port}"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: api_versions_ok(port, 0.5) or broker.poll() is not None, 30, what="the broker")
        with KafkaClient(f"127.0.0.1:{port}", timeout=5.0) as c:
            _fill(small_disk / "filler")
            refused = []
            for i in range(80):          # enough to need a new page of the journal file
                try:
                    c.create_topic(f"t{i}", 1)
                except KafkaClientError as e:
                    assert "KAFKA_STORAGE_ERROR" in str(e), e
                    refused.append(f"t{i}")
            assert refused, "the journal never hit the full disk"
            assert coord.proc.poll() is None and broker.poll() is None
            os.remove(small_disk / "filler")
            c.create_topic("after", 1)
            md, _ = c.metadata()
            assert "after" in md.topics and not set(refused) & set(md.topics)
        log = coord.log_text()
        assert "Traceback" not in log, log[-2000:]
        coord.kill()
        coord.start()                    # the refused topics are not in the journal either
        with KafkaClient(f"127.0.0.1:{coord.port}", timeout=5.0) as c:
            md, _ = c.metadata()
            assert "after" in md.topics and not set(refused) & set(md.topics)
    finally:
        broker.kill()
        broker.wait(10)
        coord.kill()


def test_a_broker_says_its_disk_takes_writes_again_without_waiting_for_a_produce(broker_factory, small_disk):
    """Status shows a broker's "disk full" until the broker says writes succeed again. A broker
    that leads nothing written to afterwards (leaders moved, the application stopped) must still
    say so once space is freed, or status tells of a full disk for ever."""
    broker = broker_factory(data_dir=small_disk / "broker")
    topic = f"full-{uuid.uuid4().hex[:8]}"
    create_topic(broker.bootstrap, topic, 1)
    filler = small_disk / "filler"
    with KafkaClient(broker.bootstrap, timeout=5.0) as c:
        c.produce(topic, 0, [(None, b"before")])
        _fill(filler)
        with pytest.raises(KafkaClientError, match="KAFKA_STORAGE_ERROR|56|storage"):
            c.produce(topic, 0, [(None, b"x" * 20000)])
    wait_for(lambda: "EVENT storage-error" in broker.log_path.read_text(errors="replace"), 10, what="storage-error")
    time.sleep(1.5)
    assert "EVENT storage-ok" not in broker.log_path.read_text(errors="replace"), "told ok while still full"
    os.remove(filler)   # and nothing is produced any more
    wait_for(lambda: "EVENT storage-ok" in broker.log_path.read_text(errors="replace"), 10, what="storage-ok")
    log = broker.log_path.read_text(errors="replace")
    assert "Traceback" not in log, log[-3000:]
    assert not list((small_disk / "broker").rglob(".write-probe-*")), "the probe's file was left behind"


def test_a_broker_stopped_on_a_full_disk_exits_cleanly_and_keeps_every_record(broker_factory, small_disk):
    """`sandbox down` while the disk is full: the stop's last flush cannot be written. The broker
    used to die there with a traceback (exit 1) with its handles open; now it says what it could
    not flush, closes everything, exits 0, and the next start recovers every acknowledged record."""
    broker = broker_factory(data_dir=small_disk / "broker")
    topic = f"full-{uuid.uuid4().hex[:8]}"
    create_topic(broker.bootstrap, topic, 1)
    with KafkaClient(broker.bootstrap, timeout=5.0) as c:
        for i in range(40):
            c.produce(topic, 0, [(None, f"kept-{i}".encode() * 50)])
    _fill(small_disk / "filler")
    assert broker.stop() == 0
    log = broker.log_path.read_text(errors="replace")
    assert "Traceback" not in log, log[-3000:]
    assert "could not flush" in log and "stopped cleanly" not in log.split("could not flush")[-1], log[-2000:]
    os.remove(small_disk / "filler")
    broker.start()
    with KafkaClient(broker.bootstrap, timeout=5.0) as c:
        assert c.end_offsets(topic) == {0: 40}
    cons = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "check-stop", "enable.auto.commit": False})
    cons.assign([TopicPartition(topic, 0, 0)])
    values = []
    deadline = time.monotonic() + 30
    while len(values) < 40 and time.monotonic() < deadline:
        values += [m.value() for m in cons.consume(100, timeout=0.5) if m.error() is None]
    cons.close()
    assert values == [f"kept-{i}".encode() * 50 for i in range(40)]
