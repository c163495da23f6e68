"""Replica health from Metadata, as pure functions: under-replicated, under-min-ISR and offline
partitions per topic, and the events (isr-shrink, isr-expand, leader-change) between two snapshots."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping

log = logging.getLogger("sandbox.health")


@dataclass(frozen=True)
class PartitionView:
    """One partition as Metadata shows it; `offline` = replicas on brokers the cluster does not
    list (fenced or gone) plus Metadata's own offline_replicas; `unopenable` = those of them on
    brokers the cluster lists: their broker cannot open that partition's log (a file of it held
    by another program, reported to the coordinator: KIP-858's offline log dirs)."""
    topic: str
    partition: int
    leader: int
    replicas: tuple[int, ...]
    isr: tuple[int, ...]
    leader_epoch: int = -1
    offline: tuple[int, ...] = ()
    unopenable: tuple[int, ...] = ()


Snapshot = dict[tuple[str, int], PartitionView]


def snapshot(md: Any, *, internal: bool = False) -> Snapshot:
    """PartitionViews of a ClusterMetadata (sandbox.client); internal topics only when asked."""
    live = {b.id for b in md.brokers}
    out: Snapshot = {}
    for name, t in md.topics.items():
        if getattr(t, "error_code", 0) or (not internal and t.internal):
            continue
        for p in t.partitions:
            told = set(getattr(p, "offline_replicas", ()) or ())
            gone = told | {r for r in p.replicas if r not in live}
            out[(name, p.index)] = PartitionView(name, p.index, p.leader, tuple(p.replicas), tuple(p.isr),
                                                 p.leader_epoch, tuple(r for r in p.replicas if r in gone),
                                                 tuple(r for r in p.replicas if r in told and r in live))
    return out


def is_offline(p: PartitionView) -> bool:
    """Kafka's offline partition: no leader, or (one replica: no other could lead it) a leader
    that cannot open the partition's log."""
    return p.leader < 0 or p.leader in p.unopenable


def unopenable_problems(views: Iterable[PartitionView], limit: int = 10) -> list[str]:
    """One sentence per partition whose log a live broker cannot open (at most `limit`, then a
    count of the rest)."""
    found = sorted((v for v in views if v.unopenable), key=lambda v: (v.topic, v.partition))
    out = []
    for v in found[:limit]:
        where = ", ".join(str(b) for b in v.unopenable)
        if v.leader >= 0 and v.leader not in v.unopenable:
            meanwhile = f"led by broker {v.leader} meanwhile"
        elif len(v.replicas) == 1:
            meanwhile = "its only replica: unavailable (KAFKA_STORAGE_ERROR) until that program lets go"
        else:
            meanwhile = "no other in-sync replica can lead it: no leader until that program lets go"
        out.append(f"{v.topic}-{v.partition}: its log on broker {where} cannot be opened (a file is held "
                   f"by another program); {meanwhile}")
    if len(found) > limit:
        out.append(f"{len(found) - limit} more partition(s) have a log that cannot be opened on a broker "
                   f"(a file held by another program)")
    return out


def is_under_replicated(p: PartitionView) -> bool:
    return len(p.isr) < len(p.replicas)


def is_under_min_isr(p: PartitionView, min_isr: int) -> bool:
    """acks=all writes are refused (NOT_ENOUGH_REPLICAS) while the ISR is below min.insync.replicas."""
    return len(p.isr) < min_isr


def topic_health(parts: Iterable[PartitionView], min_isr: int | None) -> dict[str, Any]:
    """The status fields of one topic: counts (SPEC style) and the partitions needing a look.
    min_isr None (unknown: DescribeConfigs failed) leaves under_min_isr_partitions None."""
    parts = sorted(parts, key=lambda p: p.partition)
    under = [p for p in parts if is_under_replicated(p)]
    below = None if min_isr is None else [p for p in parts if is_under_min_isr(p, min_isr)]
    offline = [p for p in parts if is_offline(p)]
    look = {p.partition for p in under + (below or []) + offline} | {p.partition for p in parts if p.offline}
    return {
        "under_replicated_partitions": len(under),
        "under_min_isr_partitions": None if below is None else len(below),
        "offline_partitions": len(offline),
        "min_insync_replicas": min_isr,
        # extra detail (not in SPEC.md): every partition with a missing replica
        "replica_problems": [{"partition": p.partition, "leader": p.leader, "replicas": list(p.replicas),
                              "isr": list(p.isr), "offline_replicas": list(p.offline),
                              # replicas whose broker cannot open the log (a held file)
                              **({"unopenable_replicas": list(p.unopenable)} if p.unopenable else {})}
                             for p in parts if p.partition in look],
    }


def _ids(brokers: Iterable[int]) -> str:
    return ", ".join(str(b) for b in sorted(brokers))


def _span(parts: list[int]) -> str:
    parts = sorted(parts)
    return f"partition {parts[0]}" if len(parts) == 1 else f"partitions {_ids(parts)}"


def replica_events(before: Mapping[tuple[str, int], PartitionView],
                   after: Mapping[tuple[str, int], PartitionView]) -> list[dict[str, str]]:
    """isr-shrink, isr-expand and leader-change events from one snapshot to the next, one per
    (kind, topic, broker(s)) so a broker loss reads as one line per topic, not one per partition.
    New and deleted partitions are no event. Each: {"service", "kind", "detail"}."""
    groups: dict[tuple[str, str, tuple[int, ...], int], list[int]] = {}
    epochs: dict[tuple[str, str, tuple[int, ...], int], set[int]] = {}   # of a leader-change, per group
    for key in sorted(after):
        old, new = before.get(key), after[key]
        if old is None:
            continue
        topic, part = key
        left, joined = set(old.isr) - set(new.isr), set(new.isr) - set(old.isr)
        if left:
            groups.setdefault(("isr-shrink", topic, tuple(sorted(left)), len(new.isr)), []).append(part)
        if joined:
            groups.setdefault(("isr-expand", topic, tuple(sorted(joined)), len(new.isr)), []).append(part)
        if old.leader != new.leader:
            # one event per topic and move (old leader, new leader): each partition has its own epoch
            key = ("leader-change", topic, (old.leader, new.leader), 0)
            groups.setdefault(key, []).append(part)
            if new.leader_epoch >= 0:
                epochs.setdefault(key, set()).add(new.leader_epoch)
    events = []
    for key, parts in groups.items():
        kind, topic, who, n = key
        where = f"topic {topic} {_span(parts)}"
        if kind == "leader-change":
            was, now = who
            said = (f"{where}: no leader (was broker {was})" if now < 0 else
                    f"{where}: leader broker {now} (was {'none' if was < 0 else f'broker {was}'})"
                    + _epochs(epochs.get(key, ())))
            service = f"broker-{now if now >= 0 else was}"
        else:
            verb = "left" if kind == "isr-shrink" else "rejoined"
            said = f"{where}: broker(s) {_ids(who)} {verb} the ISR ({n} in sync)"
            service = f"broker-{who[0]}"
        events.append({"service": service, "kind": kind, "detail": said})
    return events


def _epochs(found: Iterable[int]) -> str:
    found = sorted(found)
    if not found:
        return ""
    return f", leader epoch {found[0]}" if len(found) == 1 else f", leader epochs {_ids(found)}"


class ReplicaWatch:
    """Keeps the last snapshot; observe(md) returns the events since the previous one (none on
    the first call: there is nothing to compare with)."""

    def __init__(self) -> None:
        self._last: Snapshot | None = None

    def observe(self, md: Any) -> list[dict[str, str]]:
        now = snapshot(md)
        events = [] if self._last is None else replica_events(self._last, now)
        self._last = now
        return events


class ReplicaWatcher:
    """A daemon thread: every interval_s, fetch() a ClusterMetadata and hand each replica event to
    on_event (the supervisor's event stream). A failed fetch is skipped (the snapshot is kept, so
    what changed meanwhile is reported once the cluster answers again)."""

    def __init__(self, fetch: Callable[[], Any], on_event: Callable[[dict[str, str]], None], *,
                 interval_s: float = 1.0) -> None:
        self.fetch, self.on_event, self.interval_s = fetch, on_event, interval_s
        self.watch = ReplicaWatch()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="replica-watch", daemon=True)

    def start(self) -> "ReplicaWatcher":
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                md = self.fetch()
            except Exception as e:   # a broker or the coordinator not answering: try again later
                log.debug("replica watch: no metadata: %s", e)
            else:
                for event in self.watch.observe(md):
                    try:
                        self.on_event(event)
                    except Exception:   # the event sink must not end the watch
                        log.exception("replica watch: recording %s failed", event)
            self._stop.wait(self.interval_s)

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
