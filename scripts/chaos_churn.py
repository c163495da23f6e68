"""The fault campaign's topic churn (scripts/chaos.py --churn): a broker is down while one topic
is deleted and another is deleted and made again under the same name, as a test suite's set-up
does between tests. With the supervisor frozen (so the broker stays down meanwhile), one broker is
SIGKILLed; both topics, written before, are deleted; the second is made again with the dead
broker among its replicas and written to; then the supervisor goes on and restarts the broker.

Invariants (check): the deleted topic stays deleted (the broker must not put its folder back as a
topic nobody made), and the made-again topic holds exactly the records written to it after it was
made, on every replica (the old topic's records must not stay on the broker that was down: the
campaign compares the replicas' bytes after `down`).

With --compound, `churn-through-lost-journal`: the broker is paused with `sandbox pause` instead
(the supervisor runs on and its catalog learns the new topic), and the coordinator's journal is
destroyed before the broker is resumed, so the deletion is lost with it and the broker cannot tell
its folder of the old topic from its history. The made-again topic must still hold exactly its new
records on every replica (the restore must neither let that folder lead nor keep it as a
follower's records). The deleted topic is not checked then: with the journal lost, its folder on
that broker is a topic the metadata lost, and brokers put those back (README, self-healing)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from typing import Callable

ROUNDS_OLD, ROUNDS_NEW = 5, 3


def _admin(bootstrap: str):
    from confluent_kafka.admin import AdminClient
    return AdminClient({"bootstrap.servers": bootstrap, "socket.timeout.ms": 5000})


def _retry(attempt: Callable[[], bool], timeout: float) -> bool:
    """Until attempt() is true (an error counts as not yet); False after `timeout` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if attempt():
                return True
        except Exception:   # noqa: BLE001 - a broker just killed, a metadata change in flight
            pass
        time.sleep(0.3)
    return False


def _delete(bootstrap: str, topics: list[str]) -> bool:
    """Delete (those still there); True once none is in the metadata."""
    admin = _admin(bootstrap)
    left = [t for t in topics if t in admin.list_topics(timeout=3).topics]
    if left:
        for f in admin.delete_topics(left, request_timeout=10).values():
            f.result(15)
    return not set(topics) & set(admin.list_topics(timeout=3).topics)


def _create(bootstrap: str, topic) -> bool:
    """Make the topic (unless there already); True once the metadata shows it led."""
    from confluent_kafka import KafkaException
    admin = _admin(bootstrap)
    try:
        admin.create_topics([topic], request_timeout=10)[topic.topic].result(15)
    except KafkaException as e:
        if "already exists" not in str(e).lower() and "TOPIC_ALREADY_EXISTS" not in str(e):
            raise
    md = admin.list_topics(topic=topic.topic, timeout=3).topics.get(topic.topic)
    return md is not None and md.error is None and bool(md.partitions) and md.partitions[0].leader >= 0


CATALOG_WAIT_S = 20.0   # the supervisor refreshes its topic catalog every 3 s (a paused broker slows that)


def fault(bootstrap: str, supervisor_pid: int | None, broker_pids: dict[str, int], rng, n: int,
          in_sync: Callable[[dict[str, int]], list[str]],
          lost_journal: tuple[Callable[[str, float], subprocess.Popen], Callable[[], None],
                              Callable[[], set[str]]] | None = None,
          ) -> tuple[str, dict | None, int | None]:
    """Run the churn; (what happened, the record for check() or None if skipped, the pid killed).
    lost_journal: (pause(service, seconds) -> the running `sandbox pause`, destroy the coordinator's
    journal, the topics the supervisor's catalog names) for churn-through-lost-journal."""
    from confluent_kafka import Producer
    from confluent_kafka.admin import NewTopic

    if not supervisor_pid or not broker_pids:
        return "skipped: no supervisor or broker", None, None
    gone, again = f"churn-gone-{n}", f"churn-again-{n}"
    admin = _admin(bootstrap)
    fs = admin.create_topics([NewTopic(t, 1, replication_factor=3, config={"min.insync.replicas": "1"})
                              for t in (gone, again)], request_timeout=15)
    for f in fs.values():
        f.result(20)
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 0,
                  "message.timeout.ms": 20000, "socket.timeout.ms": 5000})
    for i in range(ROUNDS_OLD):   # one batch per record: a truncation cannot cut them away as one
        for t in (gone, again):
            p.produce(t, value=f"{t}-old-{i}".encode())
        p.flush(20)
    behind = in_sync({gone: 1, again: 1})
    if behind:
        return f"skipped: the new topics not in sync ({behind[:2]})", None, None
    victim = rng.choice(sorted(broker_pids))
    vid = int(victim.rsplit("-", 1)[1])
    others = sorted(int(b.rsplit("-", 1)[1]) for b in broker_pids if b != victim)
    acked: list[str] = []
    errors: list[str] = []
    pausing = None
    if lost_journal is None:
        os.kill(supervisor_pid, signal.SIGSTOP)
    try:
        if lost_journal is None:
            os.kill(broker_pids[victim], signal.SIGKILL)
        else:
            pausing = lost_journal[0](victim, 60.0)
            time.sleep(1.0)   # the supervisor takes the request within a pass
        # asked again with a new client: the first may have sent it to the broker just killed
        if not _retry(lambda: _delete(bootstrap, [gone, again]), 20):
            return f"skipped: {gone} and {again} not deleted within 20 s", None, broker_pids[victim]
        made = _retry(lambda: _create(bootstrap, NewTopic(again, num_partitions=1, replica_assignment=[others + [vid]],
                                                          config={"min.insync.replicas": "1"})), 20)
        if not made:
            return f"skipped: {again} not made again within 20 s", None, broker_pids[victim]

        def done(err, msg):
            (errors if err is not None else acked).append(str(err) if err is not None else msg.value().decode())
        q = Producer({"bootstrap.servers": bootstrap, "acks": "1", "linger.ms": 0,
                      "message.timeout.ms": 20000, "socket.timeout.ms": 5000})
        for i in range(ROUNDS_NEW):
            q.produce(again, value=f"{again}-new-{i}".encode(), on_delivery=done)
            q.flush(20)
        if lost_journal is not None:
            # the catalog refreshed since: it names the topic made again, not the one deleted
            # with it (a stale catalog puts the deleted topics back, which no restore can tell)
            deadline = time.monotonic() + CATALOG_WAIT_S
            while time.monotonic() < deadline and not (again in (known := lost_journal[2]()) and gone not in known):
                time.sleep(0.2)
            lost_journal[1]()
            time.sleep(rng.uniform(0.5, 2.0))
    finally:
        if lost_journal is None:
            os.kill(supervisor_pid, signal.SIGCONT)
        elif pausing is not None:
            lost_journal[0](victim, 0.05).wait(60)   # resumed now: the pause is cut short
            pausing.wait(60)
    what = f"{victim} {'paused' if lost_journal else 'down'} while {gone} was deleted and {again} deleted and made again"
    if lost_journal is not None:
        what += ", then the coordinator's journal destroyed"
    if errors:
        what += f" ({len(errors)} new record(s) not acknowledged: {errors[0]})"
    record = {"gone": gone, "again": again, "values": acked, "journal_lost": lost_journal is not None}
    return what, record, broker_pids[victim] if lost_journal is None else None


def _read(bootstrap: str, topic: str, timeout: float = 30) -> list[str]:
    from confluent_kafka import Consumer, KafkaError, TopicPartition
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"chaos-churn-{time.time()}",
                  "enable.auto.commit": False, "enable.partition.eof": True})
    c.assign([TopicPartition(topic, 0, 0)])
    out: list[str] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is None:
                continue
            if m.error():
                if m.error().code() == KafkaError._PARTITION_EOF:
                    break
                continue
            out.append(m.value().decode())
    finally:
        c.close()
    return out


def check(bootstrap: str, churned: list[dict], timeout: float = 30) -> list[str]:
    """The deleted topics stay deleted (past the brokers' grace for putting topics back from
    disk), and each made-again topic holds exactly what was acknowledged after it was made."""
    if not churned:
        return []
    admin = _admin(bootstrap)
    gone = {c["gone"] for c in churned if not c.get("journal_lost")}
    time.sleep(11)   # a broker puts back what the metadata lost 10 s after it starts
    back = set(gone)
    deadline = time.monotonic() + timeout
    while back and time.monotonic() < deadline:
        try:
            back = gone & set(admin.list_topics(timeout=5).topics)
        except Exception:   # noqa: BLE001 - asked again
            pass
        if back:
            time.sleep(0.5)
    out = [f"topic {t}, deleted while a broker was down, is back" for t in sorted(back)]
    for c in churned:
        got = _read(bootstrap, c["again"])
        if got != c["values"]:
            out.append(f"topic {c['again']}, deleted and made again while a broker was down, holds {got} "
                       f"instead of {c['values']}")
    return out
