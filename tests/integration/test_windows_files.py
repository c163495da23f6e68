"""Real broker processes under Windows' file rules: while a file is open it cannot be removed or
renamed, nor the folder holding it (what makes Apache Kafka crash on Windows when its log cleanup
deletes or renames segments it still holds). Every process of a 3-broker cluster runs with
tests/winfiles_site on PYTHONPATH, whose sitecustomize applies the rules (tests/winfiles.py) to
the cluster's folder; a refusal raises PermissionError inside the broker, as on Windows, and leaves
a line in its log.

Each journal operation that removes or renames files runs while clients read and write: retention
of segments (time and size), log compaction, DeleteRecords, a topic deleted while a consumer
fetches it and made again under the same name, a deposed leader truncating the records it alone
had (segments above the cut removed), aborted transactions' index files. What must hold: every
operation took effect (segments gone, folders gone, replicas alike), no broker logged an error or
a traceback, and no refusal happened at all."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import NewTopic

from sandbox.client import KafkaClient
from winfiles import VETO_MARK

from .replication_kit import Cluster
from .test_replication import check_replicas_identical

SITE = Path(__file__).resolve().parents[1] / "winfiles_site"
SEGMENT = 4096


@pytest.fixture
def cluster(tmp_path, monkeypatch):
    root = tmp_path / "cluster"
    monkeypatch.setenv("SANDBOX_TEST_WINDOWS_FILES", str(root))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in (str(SITE), os.environ.get("PYTHONPATH")) if p))
    c = Cluster(root, brokers=3, broker_options=["log.retention.check.interval.ms=300",
                                                 "log.cleaner.backoff.ms=300", "replica.lag.time.max.ms=10000"])
    try:
        yield c.start()
    finally:
        c.stop()


def _create(c: Cluster, name: str, partitions: int, **config: str) -> None:
    conf = {"segment.bytes": str(SEGMENT), "min.insync.replicas": "1", **config}
    admin = c.admin()   # kept alive until the answer is in
    admin.create_topics([NewTopic(name, partitions, 3, config=conf)], request_timeout=15)[name].result(20)
    c.wait_in_sync(name, partitions, timeout=30)


def _produce(c: Cluster, topic: str, records, acks: str = "all") -> None:
    p = Producer({"bootstrap.servers": c.bootstrap, "acks": acks, "linger.ms": 2, "batch.size": 2048})
    for key, value, part in records:
        while True:
            try:
                p.produce(topic, key=key, value=value, partition=part)
                break
            except BufferError:
                p.poll(0.05)
        p.poll(0)
    assert p.flush(60) == 0


def _segments(c: Cluster, topic: str, index: int) -> dict[int, int]:
    """broker -> how many segment files its replica of the partition has on disk."""
    return {n: len(list((c.data_dir(n) / f"{topic}-{index}").glob("*.log"))) for n in c.ports}


def _read(c: Cluster, topic: str) -> list:
    """Every record of partition 0 from its start to the high watermark."""
    out: list = []
    with KafkaClient(c.bootstrap) as kc:
        at = kc.start_offsets(topic, [0])[0]
        while True:
            got = kc.fetch(topic, {0: at}, max_bytes=1 << 20, max_wait_ms=10)[0]
            out += got.records
            if got.next_offset >= got.end or got.next_offset == at:
                return out
            at = got.next_offset


def _reader(c: Cluster, topics: list[tuple[str, int]], stop: threading.Event) -> tuple[threading.Thread, dict]:
    """A consumer fetching the partitions from the start over and over while the test runs; the
    thread and what it did ({"read": records, "error": what stopped it})."""
    did: dict = {"read": 0, "error": None}

    def run():
        try:
            # small fetches (librdkafka wants message.max.bytes <= fetch.max.bytes): many requests,
            # each reading a little of a segment that retention or the cleaner may be removing
            cons = Consumer({"bootstrap.servers": c.bootstrap, "group.id": "reader", "enable.auto.commit": False,
                             "auto.offset.reset": "earliest", "fetch.max.bytes": 8192, "message.max.bytes": 8192,
                             "max.partition.fetch.bytes": 4096, "topic.metadata.refresh.interval.ms": 1000})
        except Exception as e:   # noqa: BLE001 - reported by the test
            did["error"] = repr(e)
            return
        cons.assign([TopicPartition(t, i, 0) for t, i in topics])
        try:
            while not stop.is_set():
                for m in cons.consume(100, timeout=0.2):
                    if m.error() is None:
                        did["read"] += 1
                if time.monotonic() % 3 < 0.25:   # back to the start now and then: old segments are read
                    for t, i in topics:
                        try:
                            cons.seek(TopicPartition(t, i, 0))
                        except Exception:   # noqa: BLE001 - not assigned yet, or the topic went
                            pass
        finally:
            cons.close()
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, did


def _log_problems(c: Cluster) -> tuple[list[str], list[str], dict[str, bool]]:
    """(refusal lines, error and traceback lines, whether each broker ran under the rules)."""
    vetoes, errors, ruled = [], [], {}
    for name in ["coordinator", *(f"broker-{n}" for n in c.ports)]:
        text = (c.root / f"{name}.log").read_text(errors="replace")
        ruled[name] = f"{VETO_MARK} file rules on" in text
        for line in text.splitlines():
            if VETO_MARK in line and "file rules on" not in line:
                vetoes.append(f"{name}: {line}")
            elif " ERROR " in line or line.startswith("Traceback"):
                errors.append(f"{name}: {line}")
    return vetoes, errors, ruled


def test_journal_cleanup_works_under_windows_file_rules(cluster):
    c = cluster
    stop = threading.Event()
    _create(c, "ret", 2, **{"retention.bytes": str(2 * SEGMENT)})
    _create(c, "cmp", 1, **{"cleanup.policy": "compact", "min.cleanable.dirty.ratio": "0.01",
                            "delete.retention.ms": "0"})
    _create(c, "gone", 1)
    readers = [_reader(c, [("ret", 0), ("ret", 1), ("cmp", 0), ("gone", 0)], stop)]
    try:
        # aborted and committed transactions first: their index files go with the old segments
        tx = Producer({"bootstrap.servers": c.bootstrap, "transactional.id": "win-tx"})
        tx.init_transactions(30)
        for n in range(6):
            tx.begin_transaction()
            for i in range(20):
                tx.produce("ret", value=f"tx{n}-{i}".encode() * 8, partition=i % 2)
            (tx.commit_transaction if n % 2 else tx.abort_transaction)(30)
        # retention by size, while the reader fetches the segments being deleted
        _produce(c, "ret", [(None, f"r{i:06d}".encode() * 12, i % 2) for i in range(3000)])
        # compaction: 40 keys written 60 times each
        _produce(c, "cmp", [(f"k{i % 40}".encode(), f"v{i}".encode() * 10, 0) for i in range(2400)])
        _produce(c, "gone", [(None, f"g{i}".encode() * 20, 0) for i in range(600)])

        c.wait_for(lambda: all(n <= 4 for i in (0, 1) for n in _segments(c, "ret", i).values()), 60,
                   "retention to remove old segments of every replica")
        with KafkaClient(c.bootstrap) as kc:
            starts = kc.start_offsets("ret")
            assert min(starts.values()) > 0, starts
            end = kc.end_offsets("ret", [0])[0]
        # DeleteRecords up to 20 below the end: whole segments go on every replica
        admin = c.admin()
        cut = TopicPartition("ret", 0, end - 20)
        admin.delete_records([cut], request_timeout=15)[cut].result(20)
        c.wait_for(lambda: all(n <= 2 for n in _segments(c, "ret", 0).values()), 30,
                   "DeleteRecords to remove the segments below the new start")

        # 2400 records of about 40 B: some 25 segments before, the cleaned one and the active one after
        c.wait_for(lambda: 40 <= len(_read(c, "cmp")) < 2400 and all(
            n <= 3 for n in _segments(c, "cmp", 0).values()), 60, "the cleaner to compact every replica")
        latest = {rec.key: rec.value for rec in _read(c, "cmp")}
        assert latest == {f"k{k}".encode(): f"v{2400 - 40 + k}".encode() * 10 for k in range(40)}

        # a topic deleted while the reader fetches it, then made again under the same name
        admin.delete_topics(["gone"], request_timeout=15)["gone"].result(20)
        c.wait_for(lambda: not any((c.data_dir(n) / "gone-0").exists() for n in c.ports)
                   and not any(p.name.startswith("gone-") for n in c.ports for p in c.data_dir(n).iterdir()),
                   30, "the deleted topic's folders to go from every broker")
        _create(c, "gone", 1)
        _produce(c, "gone", [(None, b"again", 0)])
        assert [r.value for r in _read(c, "gone")] == [b"again"]

        # a deposed leader truncates what it alone had: followers frozen (still in the ISR), the
        # leader takes records with acks=1 over several segments and is killed; a follower takes
        # over, and the old leader, back, cuts its log to the new leader's
        _create(c, "trunc", 1)
        _produce(c, "trunc", [(None, f"a{i}".encode() * 10, 0) for i in range(200)])
        c.wait_in_sync("trunc", 1)
        time.sleep(1.0)
        leader = c.partition("trunc", 0)[0]
        followers = [n for n in c.ports if n != leader]
        for n in followers:
            c.pause(n)
        try:
            _produce(c, "trunc", [(None, f"b{i}".encode() * 40, 0) for i in range(300)], acks="1")
            c.kill(leader)
        finally:
            for n in followers:
                c.resume(n)
        c.wait_for(lambda: c.partition("trunc", 0)[0] in followers, 30, "a follower to lead")
        _produce(c, "trunc", [(None, f"c{i}".encode() * 10, 0) for i in range(50)])
        c.start_broker(leader)
        c.wait_in_sync("trunc", 1, timeout=60)
        c.wait_in_sync("ret", 2, timeout=60)
        time.sleep(1.5)   # the followers fetch the last batches
    finally:
        stop.set()
        for t, _ in readers:
            t.join(30)
    for _, did in readers:   # the reader ran the whole time: it fetched segments retention removed
        assert did["error"] is None and did["read"] > 0, did
    c.stop()
    check_replicas_identical(c, "trunc", 1)
    vetoes, errors, ruled = _log_problems(c)
    assert all(ruled.values()), f"the file rules were not on in {[n for n, on in ruled.items() if not on]}"
    assert not errors, "\n".join(errors[:20])
    assert not vetoes, f"{len(vetoes)} refusal(s) under Windows' rules:\n" + "\n".join(vetoes[:20])
