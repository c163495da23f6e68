"""Transactions with real clients against a real broker process: commit and abort across topics
and partitions, read_committed against read_uncommitted, exactly-once consume-transform-produce
through a SIGKILL, fencing, the coordinator's timeout, a broker SIGKILL with transactions in its
journal, and kafka-python, aiokafka, kafkajs and kcat."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaException, TopicPartition

from helpers import wait_for

from .kit import create_topic, kcat, producer, unique

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

HERE = Path(__file__).parent


def txn_producer(bootstrap: str, txn_id: str, **conf):
    conf.setdefault("transaction.timeout.ms", 60000)
    return producer(bootstrap, **{"transactional.id": txn_id, **conf})


def read_all(bootstrap: str, topics: dict[str, int], isolation: str, timeout: float = 30.0):
    """Every record of the topics' partitions (name -> partition count) from the beginning to the
    end a consumer with `isolation` may read (its partition EOF): (values, end positions)."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": unique("reader"), "enable.auto.commit": False,
                  "isolation.level": isolation, "enable.partition.eof": True, "fetch.wait.max.ms": 100,
                  "socket.timeout.ms": 10000})
    tps = [TopicPartition(t, p, 0) for t, n in topics.items() for p in range(n)]
    c.assign(tps)
    values: list[bytes] = []
    at_end: set[tuple[str, int]] = set()
    deadline = time.monotonic() + timeout
    try:
        while len(at_end) < len(tps):
            assert time.monotonic() < deadline, f"only {sorted(at_end)} reached their end"
            m = c.poll(0.5)
            if m is None:
                continue
            if m.error() is not None:
                if m.error().code() == m.error()._PARTITION_EOF:
                    at_end.add((m.topic(), m.partition()))
                    continue
                raise AssertionError(f"consumer error: {m.error()}")
            values.append(m.value())
        positions = {(tp.topic, tp.partition): tp.offset for tp in c.position(tps)}
    finally:
        c.close()
    return values, positions


def high_watermarks(bootstrap: str, topics: dict[str, int]) -> dict[tuple[str, int], int]:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": unique("hw")})
    try:
        return {(t, p): c.get_watermark_offsets(TopicPartition(t, p), timeout=10)[1]
                for t, n in topics.items() for p in range(n)}
    finally:
        c.close()


@contextlib.contextmanager
def kafka_python_producer(bootstrap: str, prefix: str):
    """A kafka-python transactional producer, initialised, closed afterwards."""
    from kafka import KafkaProducer
    kp = KafkaProducer(bootstrap_servers=bootstrap, transactional_id=unique(prefix), request_timeout_ms=15000)
    try:
        kp.init_transactions()
        yield kp
    finally:
        kp.close(5)


@contextlib.asynccontextmanager
async def aiokafka_producer(bootstrap: str, prefix: str):
    """An aiokafka transactional producer, started, stopped afterwards."""
    from aiokafka import AIOKafkaProducer
    ap = AIOKafkaProducer(bootstrap_servers=bootstrap, transactional_id=unique(prefix), request_timeout_ms=15000)
    await ap.start()
    try:
        yield ap
    finally:
        await ap.stop()


def test_commit_and_abort_across_two_topics_and_partitions(broker):
    topics = {unique("tx-a"): 2, unique("tx-b"): 2}
    for t, n in topics.items():
        create_topic(broker.bootstrap, t, n)
    p = txn_producer(broker.bootstrap, unique("txid"))
    p.init_transactions(30)
    committed, aborted = [], []
    for round_, outcome in enumerate(("commit", "abort", "commit")):
        p.begin_transaction()
        for t in topics:
            for part in range(2):
                for i in range(3):
                    v = f"{outcome}-{round_}-{t}-{part}-{i}".encode()
                    p.produce(t, value=v, partition=part)
                    (committed if outcome == "commit" else aborted).append(v)
        if outcome == "commit":
            p.commit_transaction(30)
        else:
            assert p.flush(30) == 0          # sent, so the log holds them (abort drops what is unsent)
            p.abort_transaction(30)
    seen, positions = read_all(broker.bootstrap, topics, "read_committed")
    assert sorted(seen) == sorted(committed)
    every, _ = read_all(broker.bootstrap, topics, "read_uncommitted")
    assert sorted(every) == sorted(committed + aborted)
    # past the last commit marker: each partition holds 3 x 3 records and 3 markers
    hws = high_watermarks(broker.bootstrap, topics)
    assert set(hws.values()) == {12}
    assert positions == hws


def test_exactly_once_consume_transform_produce_through_a_sigkill(broker):
    src, dst = unique("eos-in"), unique("eos-out")
    create_topic(broker.bootstrap, src, 2)
    create_topic(broker.bootstrap, dst, 2)
    n = 600
    plain = producer(broker.bootstrap, **{"enable.idempotence": True})
    for i in range(n):
        plain.produce(src, value=f"rec-{i:04d}".encode(), partition=i % 2)
    assert plain.flush(30) == 0
    group, txn_id = unique("eos-group"), unique("eos-txn")
    log = open(broker.data_dir.parent / "eos-worker.out", "w+")

    def worker(pause: str) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, str(HERE / "eos_worker.py"), broker.bootstrap, src, dst, group,
                                 txn_id, str(n), "90", pause], stdout=log, stderr=subprocess.STDOUT)

    first = worker("0.2")
    try:
        # killed in the middle: some transactions committed, one open with written output
        wait_for(lambda: _committed_so_far(log) >= 100, 60, what="the first worker's commits")
        time.sleep(0.1)
        first.kill()
        first.wait(10)
        second = worker("0")
        assert second.wait(120) == 0, log.seek(0) or log.read()
    finally:
        for proc in (first, locals().get("second")):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
    out, _ = read_all(broker.bootstrap, {dst: 2}, "read_committed")
    assert sorted(out) == sorted(f"REC-{i:04d}".encode() for i in range(n))   # each exactly once
    every, _ = read_all(broker.bootstrap, {dst: 2}, "read_uncommitted")
    assert len(every) >= n   # the killed transaction's output is in the log, aborted


def _committed_so_far(log) -> int:
    log.seek(0)
    lines = [ln for ln in log.read().splitlines() if ln.startswith("committed ")]
    return int(lines[-1].split()[1]) if lines else 0


def test_a_second_producer_with_the_same_id_fences_the_first(broker):
    t = unique("fence")
    create_topic(broker.bootstrap, t, 1)
    txn_id = unique("fence-id")
    first = txn_producer(broker.bootstrap, txn_id)
    first.init_transactions(30)
    first.begin_transaction()
    first.produce(t, value=b"zombie")
    first.flush(10)
    second = txn_producer(broker.bootstrap, txn_id)
    second.init_transactions(30)            # aborts the first one's transaction, bumps the epoch
    with pytest.raises(KafkaException) as e:
        first.commit_transaction(10)
    err = e.value.args[0]
    assert err.fatal() or "fenced" in str(err).lower(), err
    second.begin_transaction()
    second.produce(t, value=b"current")
    second.commit_transaction(30)
    seen, _ = read_all(broker.bootstrap, {t: 1}, "read_committed")
    assert seen == [b"current"]


def test_a_producer_killed_inside_a_transaction_is_aborted_by_its_timeout(broker):
    t = unique("timeout")
    create_topic(broker.bootstrap, t, 1)
    out = broker.data_dir.parent / "hold.out"
    with open(out, "w") as f:
        holder = subprocess.Popen([sys.executable, str(HERE / "txn_hold.py"), broker.bootstrap, t,
                                   unique("held"), "3000"], stdout=f, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: "ready" in out.read_text(), 60, what="the held transaction")
    finally:
        holder.kill()
        holder.wait()
    plain = producer(broker.bootstrap)
    plain.produce(t, value=b"after")
    assert plain.flush(10) == 0
    seen, _ = read_all(broker.bootstrap, {t: 1}, "read_committed")
    assert seen == []                           # held back by the open transaction ...
    wait_for(lambda: read_all(broker.bootstrap, {t: 1}, "read_committed")[0] == [b"after"], 30,
             interval=0.5, what="the timed-out transaction aborted (3 s timeout, checked every second)")
    every, _ = read_all(broker.bootstrap, {t: 1}, "read_uncommitted")
    assert sorted(every) == sorted([b"after"] + [f"held-{i}".encode() for i in range(5)])


def test_a_broker_sigkilled_with_transactions_in_its_journal_answers_the_same(broker):
    t = unique("crash-tx")
    create_topic(broker.bootstrap, t, 2)
    p = txn_producer(broker.bootstrap, unique("crash-id"))
    p.init_transactions(30)
    for outcome in ("commit", "abort"):
        p.begin_transaction()
        for i in range(4):
            p.produce(t, value=f"{outcome}-{i}".encode(), partition=i % 2)
        p.commit_transaction(30) if outcome == "commit" else p.abort_transaction(30)
    p.begin_transaction()
    for i in range(4):
        p.produce(t, value=f"open-{i}".encode(), partition=i % 2)
    p.flush(10)
    before, _ = read_all(broker.bootstrap, {t: 2}, "read_committed")
    assert sorted(before) == sorted(f"commit-{i}".encode() for i in range(4))
    broker.kill()
    broker.start()
    after, _ = read_all(broker.bootstrap, {t: 2}, "read_committed")
    assert sorted(after) == sorted(before)
    p.commit_transaction(60)                    # the coordinator's state survived: it completes
    done, _ = read_all(broker.bootstrap, {t: 2}, "read_committed")
    assert sorted(done) == sorted(before + [f"open-{i}".encode() for i in range(4)])


def test_kafka_python_and_aiokafka_transactions_and_kcat_read_committed(broker):
    t = unique("py-tx")
    create_topic(broker.bootstrap, t, 1)
    with kafka_python_producer(broker.bootstrap, "kp") as kp:
        kp.begin_transaction()
        kp.send(t, b"kp-commit")
        kp.commit_transaction()
        kp.begin_transaction()
        kp.send(t, b"kp-abort")
        kp.flush()
        kp.abort_transaction()

    async def aio() -> None:
        async with aiokafka_producer(broker.bootstrap, "aio") as ap:
            async with ap.transaction():
                await ap.send_and_wait(t, b"aio-commit")
            await ap.begin_transaction()
            await ap.send_and_wait(t, b"aio-abort")
            await ap.abort_transaction()
    asyncio.run(asyncio.wait_for(aio(), 60))
    want = [b"kp-commit", b"aio-commit"]
    seen, _ = read_all(broker.bootstrap, {t: 1}, "read_committed")
    assert seen == want
    r = kcat("-b", broker.bootstrap, "-C", "-t", t, "-e", "-q", "-X", "isolation.level=read_committed",
             "-f", "%s\n")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == want
    r = kcat("-b", broker.bootstrap, "-C", "-t", t, "-e", "-q", "-X", "isolation.level=read_uncommitted",
             "-f", "%s\n")
    assert r.stdout.split() == [b"kp-commit", b"kp-abort", b"aio-commit", b"aio-abort"]


def _kafkajs_dir() -> Path:
    """A folder whose node_modules holds kafkajs (installed from npm on first need)."""
    root = Path(os.environ.get("SANDBOX_NODE_DIR", Path.home() / ".cache" / "sandbox-node"))
    if not (root / "node_modules" / "kafkajs").is_dir():
        assert shutil.which("npm"), "npm is needed for the kafkajs test (.ci/run installs it)"
        root.mkdir(parents=True, exist_ok=True)
        r = subprocess.run(["npm", "install", "--prefix", str(root), "--no-audit", "--no-fund", "kafkajs@2.2.4"],
                           capture_output=True, text=True, timeout=180)
        assert r.returncode == 0, r.stderr
    return root


def test_kafkajs_transaction(broker):
    t = unique("kjs-tx")
    create_topic(broker.bootstrap, t, 1)
    env = dict(os.environ, NODE_PATH=str(_kafkajs_dir() / "node_modules"))
    r = subprocess.run(["node", str(HERE / "js" / "txn.js"), broker.bootstrap, t, unique("kjs")],
                       capture_output=True, text=True, timeout=90, env=env)
    assert r.returncode == 0 and "done" in r.stdout, r.stderr[-2000:]
    seen, _ = read_all(broker.bootstrap, {t: 1}, "read_committed")
    assert seen == [f"kjs-commit-{i}".encode() for i in range(3)]
    every, _ = read_all(broker.bootstrap, {t: 1}, "read_uncommitted")
    assert len(every) == 5


def test_kafka_python_and_aiokafka_send_offsets_to_transaction(broker):
    from kafka.structs import OffsetAndMetadata, TopicPartition as KTP
    src, dst = unique("so-in"), unique("so-out")
    create_topic(broker.bootstrap, src, 1)
    create_topic(broker.bootstrap, dst, 1)
    with kafka_python_producer(broker.bootstrap, "kp-so") as kp:
        kp.begin_transaction()
        kp.send(dst, b"kp")
        kp.send_offsets_to_transaction({KTP(src, 0): OffsetAndMetadata(4, "", -1)}, "g-kp")
        kp.commit_transaction()
        kp.begin_transaction()
        kp.send(dst, b"kp-aborted")
        kp.send_offsets_to_transaction({KTP(src, 0): OffsetAndMetadata(9, "", -1)}, "g-kp")
        kp.flush()
        kp.abort_transaction()

    async def aio() -> None:
        from aiokafka.structs import TopicPartition as ATP
        async with aiokafka_producer(broker.bootstrap, "aio-so") as ap:
            async with ap.transaction():
                await ap.send_and_wait(dst, b"aio")
                await ap.send_offsets_to_transaction({ATP(src, 0): 7}, "g-aio")
    asyncio.run(asyncio.wait_for(aio(), 60))

    def committed(group: str) -> int:
        c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group})
        try:
            return c.committed([TopicPartition(src, 0)], 10)[0].offset
        finally:
            c.close()
    assert committed("g-kp") == 4        # the aborted transaction's offsets (9) never count
    assert committed("g-aio") == 7
    seen, _ = read_all(broker.bootstrap, {dst: 1}, "read_committed")
    assert seen == [b"kp", b"aio"]
