"""read_committed against a real broker process, without a transaction coordinator: the test writes
transactional batches (Produce with a transactional id) and their commit/abort markers
(WriteTxnMarkers) itself, then confluent-kafka, kcat and `sandbox consume` read them at both
isolation levels; positions reach the high watermark past the markers."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from confluent_kafka import Consumer, KafkaError, TopicPartition

from helpers import wait_for
from rawclient import RawClient
from sandbox.log.batch import ATTR_TRANSACTIONAL, build_batch
from sandbox.protocol import build, request_class
from sandbox.protocol.records import encode_batch

from .kit import create_topic, kcat, unique

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

COMMITTED, ABORTED, OPEN = 1000, 1001, 1002   # producer ids


def _produce(raw: RawClient, topic: str, partition: int, batch: bytes, txn_id: str | None) -> None:
    resp = raw.request(build(request_class(0, 9), {"transactional_id": txn_id, "acks": -1, "timeout": 5000,
                                                   "topic_data": [{"name": topic, "partition_data": [
                                                       {"index": partition, "records": batch}]}]}))
    assert int(resp.responses[0].partition_responses[0].error_code) == 0


def _txn(raw, topic: str, partition: int, pid: int, values: list[bytes], seq: int) -> None:
    batch = build_batch([(None, v) for v in values], producer_id=pid, producer_epoch=0, base_sequence=seq,
                        attributes=ATTR_TRANSACTIONAL)
    _produce(raw, topic, partition, batch, f"txn-{pid}")


def _marker(raw, topic: str, pid: int, commit: bool, partitions: list[int]) -> None:
    resp = raw.request(build(request_class(27, 1), {"markers": [
        {"producer_id": pid, "producer_epoch": 0, "transaction_result": commit, "coordinator_epoch": 0,
         "topics": [{"name": topic, "partition_indexes": partitions}]}]}))
    assert [int(p.error_code) for p in resp.markers[0].topics[0].partitions] == [0] * len(partitions)


def _read(bootstrap: str, topic: str, isolation: str) -> tuple[list[bytes], dict[int, int]]:
    """Every value of both partitions from the beginning to their end, and the final positions."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": unique("g"), "isolation.level": isolation,
                  "enable.partition.eof": True, "enable.auto.commit": False})
    try:
        c.assign([TopicPartition(topic, p, 0) for p in (0, 1)])
        values, eof = [], set()
        deadline = time.monotonic() + 30
        while eof != {0, 1} and time.monotonic() < deadline:
            m = c.poll(0.2)
            if m is None:
                continue
            if m.error():
                assert m.error().code() == KafkaError._PARTITION_EOF, m.error()
                eof.add(m.partition())
                continue
            eof.discard(m.partition())
            values.append(m.value())
        assert eof == {0, 1}, "never reached the end of both partitions"
        positions = {tp.partition: tp.offset for tp in c.position([TopicPartition(topic, p) for p in (0, 1)])}
        return values, positions
    finally:
        c.close()


def _sandbox_consume(bootstrap: str, topic: str, *options: str) -> list[bytes]:
    out = subprocess.run([sys.executable, "-m", "sandbox", "consume", topic, "--from-beginning", "-e",
                          "--bootstrap", bootstrap, *options], capture_output=True, timeout=60, env=dict(os.environ))
    assert out.returncode == 0, out.stderr.decode(errors="replace")
    return out.stdout.splitlines()


def test_read_committed_and_read_uncommitted_consumers(broker):
    topic = unique("rc")
    create_topic(broker.bootstrap, topic, 2)
    with RawClient(broker.port) as raw:
        for p in (0, 1):
            _produce(raw, topic, p, encode_batch(0, [f"plain-{p}".encode()]), None)
            _txn(raw, topic, p, COMMITTED, [f"c{p}-a".encode(), f"c{p}-b".encode()], 0)
            _txn(raw, topic, p, ABORTED, [f"x{p}".encode()], 0)
        _marker(raw, topic, COMMITTED, True, [0, 1])
        _marker(raw, topic, ABORTED, False, [0, 1])
        _txn(raw, topic, 1, OPEN, [b"open-1"], 0)          # partition 1: an open transaction at the end

        committed = {b"plain-0", b"plain-1", b"c0-a", b"c0-b", b"c1-a", b"c1-b"}
        everything = committed | {b"x0", b"x1", b"open-1"}
        values, positions = _read(broker.bootstrap, topic, "read_committed")
        assert sorted(values) == sorted(committed)
        # partition 0: 1 plain + 2 + 1 aborted + 2 markers = 6, the high watermark; partition 1 stops
        # at the open transaction's first record (offset 6)
        assert positions == {0: 6, 1: 6}
        values, positions = _read(broker.bootstrap, topic, "read_uncommitted")
        assert sorted(values) == sorted(everything) and positions == {0: 6, 1: 7}

        got = kcat("-C", "-b", broker.bootstrap, "-t", topic, "-o", "beginning", "-e", "-q", "-f", "%s\n",
                   "-X", "isolation.level=read_committed").stdout.splitlines()
        assert sorted(got) == sorted(committed)
        got = kcat("-C", "-b", broker.bootstrap, "-t", topic, "-o", "beginning", "-e", "-q", "-f", "%s\n",
                   "-X", "isolation.level=read_uncommitted").stdout.splitlines()
        assert sorted(got) == sorted(everything)
        assert sorted(_sandbox_consume(broker.bootstrap, topic)) == sorted(committed)
        assert sorted(_sandbox_consume(broker.bootstrap, topic, "--isolation", "read_uncommitted")) == sorted(everything)

        _marker(raw, topic, OPEN, True, [1])             # the open one commits: now readable
        values, positions = _read(broker.bootstrap, topic, "read_committed")
        assert sorted(values) == sorted(committed | {b"open-1"}) and positions == {0: 6, 1: 8}
        assert sorted(_sandbox_consume(broker.bootstrap, topic)) == sorted(committed | {b"open-1"})


def _offset_fetch(raw: RawClient, group: str, topic: str) -> tuple[int, int]:
    resp = raw.request(build(request_class(9, 8), {"groups": [{"group_id": group, "topics": [
        {"name": topic, "partition_indexes": [0]}]}], "require_stable": True}))
    g = resp.groups[0]
    if int(g.error_code):   # NOT_COORDINATOR while the partition loads
        return -1, int(g.error_code)
    p = g.topics[0].partitions[0]
    return int(p.committed_offset), int(p.error_code)


def test_a_pending_txn_offset_commit_survives_a_restart_and_completes_with_its_marker(broker):
    from sandbox.broker.offsets_records import partition_for
    from sandbox.protocol.errors import NONE, UNSTABLE_OFFSET_COMMIT

    topic, group = unique("rco"), unique("g")
    create_topic(broker.bootstrap, topic, 1)
    body = {"transactional_id": "tx", "group_id": group, "producer_id": COMMITTED, "producer_epoch": 0,
            "generation_id": -1, "member_id": "", "group_instance_id": None, "topics": [
                {"name": topic, "partitions": [{"partition_index": 0, "committed_offset": 17,
                                                "committed_metadata": ""}]}]}
    with RawClient(broker.port) as raw:
        raw.request(build(request_class(10, 4), {"key_type": 0, "coordinator_keys": [group]}))   # makes the topic
        deadline = time.monotonic() + 15
        while True:
            resp = raw.request(build(request_class(28, 3), body))
            code = int(resp.topics[0].partitions[0].error_code)
            if code == NONE or time.monotonic() > deadline:
                break
            time.sleep(0.2)   # __consumer_offsets still being loaded
        assert code == NONE
        assert _offset_fetch(raw, group, topic) == (-1, UNSTABLE_OFFSET_COMMIT)
    broker.stop()
    broker.start()
    with RawClient(broker.port) as raw:
        deadline = time.monotonic() + 15
        while _offset_fetch(raw, group, topic)[1] != UNSTABLE_OFFSET_COMMIT and time.monotonic() < deadline:
            time.sleep(0.2)   # NOT_COORDINATOR until the partition is read back
        assert _offset_fetch(raw, group, topic) == (-1, UNSTABLE_OFFSET_COMMIT)   # still pending after the restart
        _marker(raw, "__consumer_offsets", COMMITTED, True, [partition_for(group, 10)])
        assert _offset_fetch(raw, group, topic) == (17, NONE)


def test_open_transactions_as_status_lists_them(broker):
    from confluent_kafka import Producer

    from sandbox.client import KafkaClient
    from sandbox.health.transactions import transaction_entries

    topic, txn_id = unique("ot"), unique("txid")
    create_topic(broker.bootstrap, topic, 2)
    p = Producer({"bootstrap.servers": broker.bootstrap, "transactional.id": txn_id, "transaction.timeout.ms": 60000})
    p.init_transactions(30)
    p.begin_transaction()
    p.produce(topic, value=b"x", partition=1)
    p.flush(10)
    with KafkaClient(broker.bootstrap) as c:
        entries, problems = transaction_entries(c)
        assert problems == []
        (e,) = [e for e in entries if e["transactional_id"] == txn_id]
        assert e["state"] == "Ongoing" and e["partitions"] == [{"topic": topic, "partition": 1}]
        assert 0 <= e["age_ms"] < 60000 and e["timeout_ms"] == 60000 and not e["hanging"]
        p.commit_transaction(30)   # answered once PrepareCommit is written; the markers follow
        wait_for(lambda: not [x for x in transaction_entries(c)[0] if x["transactional_id"] == txn_id], 10,
                 what="the committed transaction to leave the open ones")
