"""An exactly-once consume-transform-produce loop (run as a process by test_transactions_clients):
reads `input` with read_committed in group `group`, writes each value upper-cased to `output`
and commits the consumed offsets inside the same transaction (send_offsets_to_transaction).
Prints "committed N" after each transaction; exits when `expected` records were processed in all
(counted from the committed offsets) or after `deadline_s`.

usage: eos_worker.py BOOTSTRAP INPUT OUTPUT GROUP TXN_ID EXPECTED DEADLINE_S PAUSE_S
"""

import sys
import time

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition


def main() -> int:
    bootstrap, src, dst, group, txn_id, expected, deadline_s, pause_s = sys.argv[1:9]
    expected, deadline = int(expected), time.monotonic() + float(deadline_s)
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False,
                  "auto.offset.reset": "earliest", "isolation.level": "read_committed",
                  "session.timeout.ms": 6000, "heartbeat.interval.ms": 500, "fetch.wait.max.ms": 100})
    p = Producer({"bootstrap.servers": bootstrap, "transactional.id": txn_id, "linger.ms": 5,
                  "transaction.timeout.ms": 10000})
    p.init_transactions(30)
    c.subscribe([src])
    done = 0
    while time.monotonic() < deadline:
        msgs = c.consume(50, 0.5)
        msgs = [m for m in msgs if m.error() is None]
        if not msgs:
            if done_total(c, src) >= expected:
                break
            continue
        p.begin_transaction()
        for m in msgs:
            p.produce(dst, key=m.key(), value=m.value().upper())
        p.flush(10)
        time.sleep(float(pause_s))          # a window for the test's SIGKILL inside a transaction
        p.send_offsets_to_transaction(c.position(c.assignment()), c.consumer_group_metadata(), 10)
        p.commit_transaction(30)
        done += len(msgs)
        print(f"committed {done}", flush=True)
    c.close()
    return 0


def done_total(c: Consumer, topic: str) -> int:
    parts = c.assignment()
    if not parts:
        return -1
    committed = c.committed(parts, 10)
    return sum(max(tp.offset, 0) for tp in committed if tp.topic == topic)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KafkaException as e:
        print(f"kafka error: {e}", flush=True)
        sys.exit(3)
