"""`sandbox consume TOPIC --group G` through confluent-kafka (librdkafka): a real group member, so
partitions are shared with the group's other members and rebalanced as they come and go, reading
starts at the group's committed offsets, and what is printed is committed. The hand-written client
in sandbox/client stays for everything else (no group protocol there: the supervisor and probes
need none). confluent-kafka is a dependency of the `clients` extra and of the tests; without it
this says how to install it."""

from __future__ import annotations

import time
from typing import BinaryIO

from .common import fail
from .record_format import render

PIP_HINT = ("--group needs confluent-kafka (librdkafka; wheels for Windows, macOS and Linux): "
            "pip install confluent-kafka")
POLL_S = 0.2


def consume_in_group(bootstrap: str, topic: str, group: str, where: tuple[str, int], template: bytes,
                     count: int | None, exit_at_end: bool, idle_s: float | None, out: BinaryIO,
                     isolation: str = "read_committed") -> int:
    """Print records as a member of `group` until count, the end (-e), idle_s without a record, or
    Ctrl-C; commit what was printed; returns how many were printed. `where` applies to partitions
    the group has no committed offset for (Kafka's auto.offset.reset: beginning or end)."""
    try:
        from confluent_kafka import Consumer, KafkaError, TopicPartition
    except ImportError:
        fail(PIP_HINT, 1)
        raise AssertionError from None
    how, n = where
    reset = "earliest" if how == "beginning" else "latest"
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": reset,
                         "enable.auto.commit": False, "enable.partition.eof": exit_at_end,
                         "isolation.level": isolation,
                         "client.id": "sandbox-consume", "logger": _quiet_logger()})
    got = 0
    at_end: set[int] = set()
    assigned: set[int] = set()

    def on_assign(c, tps) -> None:
        for tp in tps:   # --offset N / -N: an explicit start, whatever the group committed
            if how == "at":
                tp.offset = n
            elif how == "from-end":
                low, high = c.get_watermark_offsets(TopicPartition(topic, tp.partition), timeout=10)
                tp.offset = max(high - n, low)
        assigned.update(tp.partition for tp in tps)
        c.assign(tps)

    consumer.subscribe([topic], on_assign=on_assign)
    last = time.monotonic()
    try:
        while count is None or got < count:
            if idle_s is not None and time.monotonic() - last >= idle_s:
                break
            m = consumer.poll(POLL_S)
            if m is None:
                continue
            if m.error():
                if m.error().code() == KafkaError._PARTITION_EOF:
                    at_end.add(m.partition())
                    if exit_at_end and assigned and at_end >= assigned:
                        break
                    continue
                fail(f"{m.error()}; {got} records were printed before this", 1)
            at_end.discard(m.partition())
            ts = m.timestamp()[1]
            out.write(render(template, topic=topic, partition=m.partition(), offset=m.offset(), key=m.key(),
                             value=m.value(), timestamp=ts, headers=m.headers() or ()))
            out.flush()
            consumer.commit(message=m, asynchronous=True)
            got += 1
            last = time.monotonic()
    except KeyboardInterrupt:
        pass
    finally:
        try:
            consumer.commit(asynchronous=False)
        except Exception:   # noqa: BLE001 - nothing new to commit
            pass
        consumer.close()
    return got


def _quiet_logger():
    import logging

    log = logging.getLogger("sandbox.consume.librdkafka")
    log.addHandler(logging.NullHandler())
    log.propagate = False
    return log
