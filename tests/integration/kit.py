"""Small helpers shared by the integration tests (real clients against a real broker).

Every loop here is bounded by a deadline; every client gets short timeouts.
"""

from __future__ import annotations

import struct
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from helpers import wait_for

# Short client timeouts so a broken broker fails a test fast instead of hanging it.
CONSUMER_DEFAULTS = {
    "session.timeout.ms": 6000,
    "heartbeat.interval.ms": 500,
    "auto.offset.reset": "earliest",
    "enable.auto.commit": False,
    "topic.metadata.refresh.interval.ms": 2000,
    "socket.timeout.ms": 10000,
    "fetch.wait.max.ms": 200,
}
PRODUCER_DEFAULTS = {
    "linger.ms": 5,
    "message.timeout.ms": 30000,
    "socket.timeout.ms": 10000,
    "topic.metadata.refresh.interval.ms": 2000,
}

CODEC_IDS = {"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"



# ---- confluent-kafka ---------------------------------------------------------------------------

def admin(bootstrap: str) -> AdminClient:
    return AdminClient({"bootstrap.servers": bootstrap, "socket.timeout.ms": 10000})


def create_topic(bootstrap: str, name: str, partitions: int = 1, config: dict | None = None) -> None:
    """Create a topic with the AdminClient and wait until Metadata shows all its partitions."""
    a = admin(bootstrap)
    fs = a.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1,
                                   config=config or {})], operation_timeout=10, request_timeout=15)
    fs[name].result(timeout=20)
    wait_topic(a, name, partitions)


def wait_topic(a: AdminClient, name: str, partitions: int, timeout: float = 15.0) -> None:
    def ready():
        md = a.list_topics(topic=name, timeout=5)
        t = md.topics.get(name)
        return (t is not None and t.error is None and len(t.partitions) == partitions
                and all(p.leader == 1 for p in t.partitions.values()))
    wait_for(ready, timeout, interval=0.2, what=f"topic {name} with {partitions} partitions in Metadata")


def producer(bootstrap: str, **conf) -> Producer:
    c = dict(PRODUCER_DEFAULTS)
    c["bootstrap.servers"] = bootstrap
    c.update(conf)
    return Producer(c)


def consumer(bootstrap: str, group: str, **conf) -> Consumer:
    c = dict(CONSUMER_DEFAULTS)
    c["bootstrap.servers"] = bootstrap
    c["group.id"] = group
    c.update(conf)
    return Consumer(c)


@dataclass
class Delivered:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


def produce_all(p: Producer, topic: str, records: Iterable[tuple], timeout: float = 60.0,
                **kw) -> list[Delivered]:
    """Produce (key, value[, extra-kwargs]) records; wait for every delivery report; raise on any error.

    Returns the delivered records in delivery-report order."""
    delivered: list[Delivered] = []
    errors: list[KafkaError] = []

    def on_delivery(err, msg):
        if err is not None:
            errors.append(err)
        else:
            delivered.append(Delivered(msg.topic(), msg.partition(), msg.offset(), msg.key(), msg.value()))

    deadline = time.monotonic() + timeout
    n = 0
    for rec in records:
        key, value = rec[0], rec[1]
        extra = dict(kw)
        if len(rec) > 2:
            extra.update(rec[2])
        while True:
            try:
                p.produce(topic, key=key, value=value, on_delivery=on_delivery, **extra)
                break
            except BufferError:
                if time.monotonic() > deadline:
                    raise AssertionError("producer queue stayed full until the deadline")
                p.poll(0.05)
        n += 1
        if n % 1000 == 0:
            p.poll(0)
    remaining = p.flush(max(0.1, deadline - time.monotonic()))
    assert not errors, f"delivery errors: {errors[:5]} ({len(errors)} in all)"
    assert remaining == 0, f"{remaining} records still undelivered after {timeout}s"
    assert len(delivered) == n, f"{len(delivered)} delivery reports for {n} records"
    return delivered


def consume_n(c: Consumer, n: int, timeout: float = 60.0, settle: float = 1.0) -> list:
    """Poll until `n` messages arrived (then `settle` more seconds, to catch extras/duplicates)."""
    out = []
    deadline = time.monotonic() + timeout
    settle_until = None
    while time.monotonic() < deadline:
        if settle_until is None and len(out) >= n:
            settle_until = time.monotonic() + settle
        if settle_until is not None and time.monotonic() >= settle_until:
            break
        for m in c.consume(num_messages=1000, timeout=0.2):
            if m.error():
                if m.error().code() == KafkaError._PARTITION_EOF:
                    continue
                raise KafkaException(m.error())
            out.append(m)
    return out


def consume_topic(bootstrap: str, topic: str, n: int, timeout: float = 60.0, **conf) -> list:
    """A fresh consumer group reads `topic` from the beginning; returns the messages."""
    c = consumer(bootstrap, unique("g"), **conf)
    try:
        c.subscribe([topic])
        return consume_n(c, n, timeout)
    finally:
        c.close()


# ---- kcat ----------------------------------------------------------------------------------------

def kcat(*args: str, input: bytes | None = None, timeout: float = 30.0) -> subprocess.CompletedProcess:
    proc = subprocess.run(["kcat", *args], input=input, capture_output=True, timeout=timeout)
    assert proc.returncode == 0, f"kcat {' '.join(args)} exited {proc.returncode}: {proc.stderr.decode(errors='replace')}"
    return proc


# ---- the on-disk journal (Kafka's record batch v2 format) ---------------------------------------

@dataclass
class BatchHeader:
    base_offset: int
    length: int
    leader_epoch: int
    magic: int
    crc: int
    attributes: int
    last_offset_delta: int
    base_timestamp: int
    max_timestamp: int
    producer_id: int
    producer_epoch: int
    base_sequence: int
    records_count: int

    @property
    def codec(self) -> int:
        return self.attributes & 0x07


_HEADER = struct.Struct(">qiibIhiqqqhii")  # 61 bytes


def read_batches(partition_dir: Path) -> list[BatchHeader]:
    """Every batch header of every .log segment of one partition folder, in offset order."""
    out = []
    segments = sorted(partition_dir.glob("*.log"))
    assert segments, f"no .log segment in {partition_dir}: {sorted(p.name for p in partition_dir.parent.iterdir())}"
    for seg in segments:
        data = seg.read_bytes()
        pos = 0
        while pos + 12 <= len(data):
            base_offset, length = struct.unpack_from(">qi", data, pos)
            if length <= 0 or pos + 12 + length > len(data):
                break  # preallocated zeros or a torn tail: not part of the log
            assert pos + _HEADER.size <= len(data)
            out.append(BatchHeader(*_HEADER.unpack_from(data, pos)))
            pos += 12 + length
    return out
