"""The transactional half of the fault campaign (scripts/chaos.py): a transactional producer
writing transactions of TXN_RECORDS records over the partitions of TXN_TOPIC, committing most and
aborting some, and the check at the end: read with read_committed, every record of a transaction
whose commit returned is there exactly once (unless the fault destroyed or quarantined its journal),
nothing of an aborted one is, and no transaction is visible in part."""

from __future__ import annotations

import random
import threading
import time
from typing import Callable

TXN_TOPIC = "chaos-tx"
TXN_PARTITIONS = 2
TXN_RECORDS = 6


class TxnLoad:
    """Transactions at a bounded rate; the outcome of each as the client saw it."""

    def __init__(self, bootstrap: str, seed: int, rate: float = 5.0, limit: int = 20_000) -> None:
        self.bootstrap, self.rate, self.limit = bootstrap, rate, limit
        self.rng = random.Random(seed * 7919)
        self.committed: set[int] = set()
        self.aborted: set[int] = set()
        self.unknown: set[int] = set()     # the commit raised: either outcome, but all or nothing
        self.errors: list[str] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self._txn_id = f"chaos-txn-{seed}"

    def _producer(self):
        from confluent_kafka import Producer
        p = Producer({"bootstrap.servers": self.bootstrap, "transactional.id": self._txn_id, "linger.ms": 5,
                      "transaction.timeout.ms": 20000, "message.timeout.ms": 20000, "socket.timeout.ms": 10000,
                      "topic.metadata.refresh.interval.ms": 2000})
        p.init_transactions(60)
        return p

    def _run(self) -> None:
        from confluent_kafka import KafkaException
        p = None
        n = 0
        t0 = time.monotonic()
        while not self.stop.is_set() and n < self.limit:
            try:
                if p is None:
                    p = self._producer()
            except KafkaException as e:
                self.errors.append(f"init: {e}")
                time.sleep(1.0)
                continue
            commit = self.rng.random() < 0.85
            try:
                p.begin_transaction()
                for i in range(TXN_RECORDS):
                    p.produce(TXN_TOPIC, value=f"t{n:07d}-{i}".encode(), partition=i % TXN_PARTITIONS)
                if commit:
                    p.commit_transaction(60)
                    self.committed.add(n)
                else:
                    p.abort_transaction(60)
                    self.aborted.add(n)
            except KafkaException as e:
                err = e.args[0]
                self.unknown.add(n)
                self.errors.append(str(err))
                try:
                    if err.txn_requires_abort():
                        p.abort_transaction(60)
                    elif not err.retriable():
                        p = None   # fatal (fenced, a destroyed coordinator): a new producer
                except KafkaException:
                    p = None
            n += 1
            ahead = n / self.rate - (time.monotonic() - t0)
            if ahead > 0:
                time.sleep(ahead)


def read_committed(bootstrap: str, timeout: float = 90) -> dict[bytes, int]:
    """value -> how many times a read_committed consumer sees it in TXN_TOPIC."""
    from confluent_kafka import Consumer, KafkaError, TopicPartition
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"chaos-tx-check-{time.time()}",
                  "enable.auto.commit": False, "enable.partition.eof": True, "isolation.level": "read_committed"})
    c.assign([TopicPartition(TXN_TOPIC, p, 0) for p in range(TXN_PARTITIONS)])
    seen: dict[bytes, int] = {}
    at_end: set[int] = set()
    deadline = time.monotonic() + timeout
    try:
        while len(at_end) < TXN_PARTITIONS and time.monotonic() < deadline:
            for m in c.consume(1000, timeout=0.5):
                if m.error():
                    if m.error().code() == KafkaError._PARTITION_EOF:
                        at_end.add(m.partition())
                    continue
                seen[m.value()] = seen.get(m.value(), 0) + 1
    finally:
        c.close()
    return seen


def check(load: TxnLoad, seen: dict[bytes, int], kept_somewhere: Callable[[bytes], bool]) -> list[str]:
    """Violations of the transactional invariants; a committed record missing is allowed only
    when kept_somewhere(value) (its journal was destroyed by the fault or quarantined)."""
    out = []
    by_txn: dict[int, int] = {}
    for value, count in seen.items():
        if count > 1:
            out.append(f"transactional record {value.decode()} seen {count} times")
        by_txn[int(value[1:8])] = by_txn.get(int(value[1:8]), 0) + 1
    for n in sorted(load.aborted):
        if by_txn.get(n):
            out.append(f"aborted transaction {n}: {by_txn[n]} record(s) visible to read_committed")
    for n in sorted(load.committed):
        missing = [f"t{n:07d}-{i}".encode() for i in range(TXN_RECORDS)
                   if f"t{n:07d}-{i}".encode() not in seen]
        lost = [v for v in missing if not kept_somewhere(v)]
        if lost:
            out.append(f"committed transaction {n}: {len(lost)} record(s) lost and in no quarantine")
    for n in sorted(load.unknown):
        if by_txn.get(n, 0) not in (0, TXN_RECORDS):
            out.append(f"transaction {n} (outcome unknown to the client) visible in part: {by_txn[n]} of {TXN_RECORDS}")
    return out

