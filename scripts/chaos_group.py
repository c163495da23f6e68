"""The consumer-group half of the fault campaign (scripts/chaos.py): two groups of two confluent-
kafka consumers each (one group on the classic protocol, one on KIP-848's consumer protocol) read
the campaign's topic while the faults land, and commit what they processed synchronously, as an
at-least-once application does. What they saw and which commits the client saw succeed are kept,
and checked against these invariants:

- an acknowledged commit is never lost: after every fault has healed, the offsets the group
  coordinator answers are at least every commit acknowledged before the question was asked;
- nothing is skipped: every acknowledged record below a group's final committed offset was
  handed to one of its members (a committed offset ahead of what was processed loses records);
- nothing is read that the log does not keep: every record a member was handed is in the final
  log (a consumer served past the high watermark reads records a failover then truncates);
- the groups catch up once the load stops: each commits the log end of every partition, and
  `sandbox status` then shows their lag as 0.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Callable, Iterable

GROUPS = {"chaos-classic": "classic", "chaos-consumer": "consumer"}
MEMBERS = 2
COMMIT_EVERY_S = 0.3
CATCH_UP_S = 60.0
ASK_S = 30.0   # how long the committed offsets are asked for before a check gives up


class Member:
    """One consumer of a group: polls, keeps what it was handed, commits its position."""

    def __init__(self, load: "GroupLoad", group: str, protocol: str, index: int) -> None:
        self.load, self.group, self.protocol = load, group, protocol
        self.thread = threading.Thread(target=self._run, name=f"{group}-{index}", daemon=True)

    def _consumer(self):
        from confluent_kafka import Consumer
        conf = {"bootstrap.servers": self.load.bootstrap, "group.id": self.group,
                "group.protocol": self.protocol, "auto.offset.reset": "earliest",
                "enable.auto.commit": False, "socket.timeout.ms": 10000,
                "topic.metadata.refresh.interval.ms": 2000}
        if self.protocol == "classic":
            conf.update({"session.timeout.ms": 10000, "heartbeat.interval.ms": 1000})
        if os.environ.get("CHAOS_CONSUMER_DEBUG"):   # e.g. cgrp,broker: librdkafka's own log, on stderr
            conf["debug"] = os.environ["CHAOS_CONSUMER_DEBUG"]
        c = Consumer(conf)
        c.subscribe([self.load.topic])
        return c

    def _commit(self, c) -> None:
        from confluent_kafka import KafkaException
        try:
            done = c.commit(asynchronous=False)
        except KafkaException as e:   # a rebalance, the coordinator moving: not acknowledged
            self.load.refused[self.group] = self.load.refused.get(self.group, 0) + 1
            self.load.last_refusal[self.group] = str(e.args[0])
            return
        with self.load.lock:
            acked = self.load.acked[self.group]
            self.load.commits[self.group] = self.load.commits.get(self.group, 0) + 1
            for tp in done or ():
                if tp.error is None and tp.offset >= 0:
                    acked[tp.partition] = max(acked.get(tp.partition, 0), tp.offset)
                    self.load.history.append((time.time(), self.group, self.thread.name, tp.partition, tp.offset))

    def _run(self) -> None:
        c = self._consumer()
        last = time.monotonic()
        try:
            while not self.load.stop.is_set():
                msgs = c.consume(500, timeout=0.2)
                got = [m for m in msgs if m.error() is None]
                if got:
                    with self.load.lock:
                        seen = self.load.seen[self.group]
                        for m in got:
                            seen.add((m.partition(), m.offset(), m.value()))
                        first = got[0]
                        self.load.handed.append((time.time(), self.group, self.thread.name, first.partition(),
                                                 first.offset(), got[-1].offset(), len(got)))
                if time.monotonic() - last >= COMMIT_EVERY_S:
                    self._commit(c)
                    last = time.monotonic()
            self._commit(c)
        finally:
            c.close()


class GroupLoad:
    """The groups' members, started and stopped together."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.bootstrap, self.topic = bootstrap, topic
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.seen: dict[str, set[tuple[int, int, bytes]]] = {g: set() for g in GROUPS}
        self.acked: dict[str, dict[int, int]] = {g: {} for g in GROUPS}   # partition -> highest acked commit
        self.refused: dict[str, int] = {}
        self.commits: dict[str, int] = {}   # acknowledged commits per group
        self.history: list[tuple[float, str, str, int, int]] = []   # (time, group, member, partition, offset)
        # (time, group, member, partition of the first, its offset, the last's offset, how many): per consume()
        self.handed: list[tuple[float, str, str, int, int, int, int]] = []
        self.last_refusal: dict[str, str] = {}
        self.members = [Member(self, g, proto, i) for g, proto in GROUPS.items() for i in range(MEMBERS)]

    def start(self) -> None:
        for m in self.members:
            m.thread.start()

    def finish(self, timeout: float = 60) -> None:
        self.stop.set()
        for m in self.members:
            m.thread.join(timeout)

    def acked_now(self) -> dict[str, dict[int, int]]:
        with self.lock:
            return {g: dict(a) for g, a in self.acked.items()}


def committed_offsets(bootstrap: str, group: str, partitions: Iterable[int], topic: str,
                      timeout: float = ASK_S) -> dict[int, int] | str:
    """The offsets the group coordinator answers for the group (partition -> offset, -1 for none),
    asked again while it is moving or loading; a sentence when it never answered. (Asked with the
    sandbox's own client: librdkafka 2.16's admin list_consumer_group_offsets can abort the whole
    process, `rd_kafka_enq_once_del_source_return: Assertion eonce->refcnt > 0`, when its
    coordinator lookup keeps getting COORDINATOR_NOT_AVAILABLE.)"""
    from sandbox.client import KafkaClient, KafkaClientError
    parts = list(partitions)
    deadline = time.monotonic() + timeout
    why = "no answer"
    while time.monotonic() < deadline:
        try:
            with KafkaClient(bootstrap, timeout=10.0) as c:
                got = c.committed_offsets(group)
            return {p: got.get((topic, p), -1) for p in parts}
        except KafkaClientError as e:
            why = str(e)
        time.sleep(0.5)
    return f"the committed offsets of group {group} were not answered within {timeout:g} s ({why})"


def check_commits_kept(load: GroupLoad, partitions: Iterable[int], after: str) -> list[str]:
    """No commit acknowledged before now is missing from what the coordinator answers now."""
    out = []
    parts = list(partitions)
    for group, acked in load.acked_now().items():
        got = committed_offsets(load.bootstrap, group, parts, load.topic)
        if isinstance(got, str):
            out.append(f"{got}, {after}")
            continue
        behind = {p: (got.get(p, -1), o) for p, o in acked.items() if got.get(p, -1) < o}
        if behind:
            out.append(f"group {group} lost acknowledged commits {after}: partition -> (answered, acknowledged) "
                       f"{behind}")
    return out


def check_final(load: GroupLoad, log: dict[int, list[tuple[int, bytes]]], acked: Iterable[tuple[bytes, int, int]],
                kept_somewhere: Callable[[bytes], bool]) -> list[str]:
    """After the load stopped and the groups caught up: nothing skipped, nothing read that the log
    does not keep (unless a fault destroyed or quarantined that journal)."""
    out = []
    in_log = {(p, off, v) for p, recs in log.items() for off, v in recs}
    acked = list(acked)
    for group in GROUPS:
        final = committed_offsets(load.bootstrap, group, list(log), load.topic)
        if isinstance(final, str):
            out.append(final)
            continue
        seen_values = {v for _p, _o, v in load.seen[group]}
        # a delivery report without an offset (librdkafka gives None there) says nothing about
        # where the record is; the campaign's value check still finds it lost or not
        skipped = [(v, p, off) for v, p, off in acked
                   if off is not None and off < final.get(p, -1) and v not in seen_values]
        if skipped:
            out.append(f"group {group} committed past {len(skipped)} acknowledged record(s) none of its "
                       f"members was handed, e.g. {[(v.decode(), p, o) for v, p, o in skipped[:5]]}")
        phantom = [(p, off, v) for p, off, v in load.seen[group] if (p, off, v) not in in_log
                   and not kept_somewhere(v)]
        if phantom:
            out.append(f"group {group} was handed {len(phantom)} record(s) the log does not keep at that offset, "
                       f"e.g. {[(p, o, v.decode()) for p, o, v in sorted(phantom)[:5]]}")
    return out


def wait_caught_up(load: GroupLoad, ends: dict[int, int], timeout: float = CATCH_UP_S) -> list[str]:
    """Each group's committed offsets reach the log ends (its members keep running meanwhile)."""
    deadline = time.monotonic() + timeout
    behind: dict[str, dict[int, tuple[int, int]]] = {}
    while time.monotonic() < deadline:
        behind = {}
        for group in GROUPS:
            got = committed_offsets(load.bootstrap, group, list(ends), load.topic, timeout=10)
            if isinstance(got, str):
                behind[group] = {-1: (-1, -1)}
                continue
            lag = {p: (got.get(p, -1), end) for p, end in ends.items() if got.get(p, -1) < end}
            if lag:
                behind[group] = lag
        if not behind:
            return []
        time.sleep(1.0)
    return [f"group {g} did not commit the log end within {timeout:g} s after the load stopped: "
            f"partition -> (committed, end) {lag}; commits refused {load.refused.get(g, 0)}, last: "
            f"{load.last_refusal.get(g)}" for g, lag in behind.items()]


def check_status_lag(status: dict) -> list[str]:
    """`sandbox status` shows the caught-up groups with lag 0."""
    shown = {g.get("group"): g for g in status.get("groups", [])}
    out = []
    for group in GROUPS:
        g = shown.get(group)
        if g is None:
            out.append(f"status does not list group {group}: {sorted(shown)}")
        elif g.get("lag") != 0:
            out.append(f"status shows lag {g.get('lag')} for group {group}, which has committed every log end")
    return out


def dump(load: GroupLoad, path) -> None:
    """What the groups did (commits acknowledged, batches handed out), for a violation's post-mortem."""
    import json
    with load.lock:
        doc = {"commits": load.history, "handed": load.handed,
               "seen": {g: sorted((p, o, v.decode(errors="replace")) for p, o, v in s) for g, s in load.seen.items()}}
    with open(path, "w", encoding="utf-8") as f:
        json.dump(doc, f)
