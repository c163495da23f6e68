"""The status model (status.py) as Prometheus metrics in the text exposition format, rendered with
prometheus_client into a fresh registry per call (no global state, safe from any thread)."""

from __future__ import annotations

import threading
from collections import Counter as _Tally
from typing import Any, Iterable

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

RECOVERY_KINDS = ("crash", "restart", "repair", "wipe", "topics-recreated", "unhealthy")
REPLICA_KINDS = ("isr-shrink", "isr-expand", "leader-change")   # health/replication.py's events
# generate_latest writes the 0.0.4 text format (newer prometheus_client calls "latest" 1.0.0)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class EventCounter:
    """Running totals of event kinds; feed it every event (the supervisor's on_event callback),
    since the status only carries the last events. Thread-safe."""

    def __init__(self, kinds: Iterable[str] = RECOVERY_KINDS + REPLICA_KINDS) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {k: 0 for k in kinds}

    def __call__(self, event: dict) -> None:
        kind = event.get("kind")
        if kind in self._counts:
            with self._lock:
                self._counts[kind] += 1

    def counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)


def _num(v: Any) -> float | None:
    if v is None or isinstance(v, bool):
        return None if v is None else float(v)
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def _lag_rows(status: dict, lag_per_partition: list | None) -> list[tuple[str, str, int, int]]:
    """(group, topic, partition, lag) from the argument or from the status' group detail."""
    rows: list[tuple[str, str, int, int]] = []
    if lag_per_partition is not None:
        for item in lag_per_partition:
            if isinstance(item, dict):
                g, t, p, lag = item["group"], item["topic"], item["partition"], item.get("lag")
            else:
                g, t, p, lag = item[0], item[1], item[2], item[-1]
            if lag is not None:
                rows.append((str(g), str(t), int(p), int(lag)))
        return rows
    for g in status.get("groups") or []:
        for d in g.get("partitions") or []:
            if d.get("lag") is not None:
                rows.append((g["group"], d["topic"], int(d["partition"]), int(d["lag"])))
    return rows


class _Snapshot:
    """A collector that yields ready-made families (counters without *_created samples)."""

    def __init__(self, families: list) -> None:
        self._families = families

    def collect(self):
        return iter(self._families)


def render_metrics(status: dict, *, lag_per_partition: list | None = None,
                   event_counts: dict | None = None) -> bytes:
    """Prometheus text (version 0.0.4) for one status dict.

    lag_per_partition: [{"group", "topic", "partition", "lag"}] or (group, topic, partition, lag)
    tuples; default: the status' per-group "partitions" detail. event_counts: {kind: total} running
    totals (EventCounter.counts()); default: the kinds counted in status["events"].
    """
    up = GaugeMetricFamily("sandbox_service_up", "1 if the service is running and healthy, else 0",
                           labels=["service", "role"])
    restarts = CounterMetricFamily("sandbox_service_restarts", "Restarts of the service by the supervisor",
                                   labels=["service"])
    cpu = GaugeMetricFamily("sandbox_service_cpu_ratio",
                            "CPU use of the service process (1 = one core busy)", labels=["service"])
    rss = GaugeMetricFamily("sandbox_service_rss_bytes", "Resident memory of the service process",
                            labels=["service"])
    disk = GaugeMetricFamily("sandbox_service_disk_bytes", "Size of the service's journal on disk",
                             labels=["service"])
    latency = GaugeMetricFamily("sandbox_service_latency_seconds", "Last health probe round trip",
                                labels=["service"])
    end = GaugeMetricFamily("sandbox_partition_end_offset", "High watermark of a partition",
                            labels=["topic", "partition"])
    lag = GaugeMetricFamily("sandbox_group_lag", "Records behind the end offset, per committed partition",
                            labels=["group", "topic", "partition"])
    # not *_sum: Prometheus reads that suffix as a summary's
    lag_sum = GaugeMetricFamily("sandbox_group_lag_records", "Records behind, summed over the group's partitions "
                                "(absent while the group's lag is unknown)", labels=["group"])
    events = CounterMetricFamily("sandbox_recovery_events", "Recovery events by kind", labels=["kind"])
    healthy = GaugeMetricFamily("sandbox_healthy", "1 if every service is healthy and there is no problem")
    replica = CounterMetricFamily("sandbox_replica_events", "ISR shrinks and expands and leader changes "
                                  "(one per topic and broker(s) per observation)", labels=["kind"])
    # Kafka's partition-state gauges, per topic (sum() them for the cluster's figure)
    per_topic = [(GaugeMetricFamily(f"sandbox_{key}", text, labels=["topic"]), key) for key, text in (
        ("under_replicated_partitions", "Partitions whose ISR is smaller than their replica list"),
        ("under_min_isr_partitions", "Partitions whose ISR is below min.insync.replicas: acks=all is refused"),
        ("offline_partitions", "Partitions without a leader: nothing can be read or written"))]

    for s in status.get("services") or []:
        name = str(s.get("name"))
        up.add_metric([name, str(s.get("role"))],
                      1 if s.get("state") == "running" and s.get("healthy") else 0)
        restarts.add_metric([name], max(int(s.get("restarts") or 0), 0))
        # base units, as Prometheus names them: a ratio, bytes, seconds
        for family, key, scale in ((cpu, "cpu_percent", 100.0), (rss, "rss_bytes", 1.0), (disk, "disk_bytes", 1.0),
                                   (latency, "latency_ms", 1000.0)):
            v = _num(s.get(key))
            if v is not None:
                family.add_metric([name], v / scale)

    for t in status.get("topics") or []:
        for family, key in per_topic:
            v = _num(t.get(key, t.get("leaderless_partitions") if key == "offline_partitions" else None))
            if v is not None:
                family.add_metric([str(t["name"])], v)
        for d in t.get("partition_offsets") or []:
            end.add_metric([str(t["name"]), str(d["partition"])], d["end_offset"])

    # a group of the status: its "lag" (none while it is null: a partition's lag is unknown, or
    # nothing is committed); summed from lag_per_partition only for groups the status does not list
    listed = {g["group"] for g in status.get("groups") or []}
    sums: dict[str, int] = {g["group"]: int(g["lag"]) for g in status.get("groups") or [] if g.get("lag") is not None}
    for g, t, p, v in _lag_rows(status, lag_per_partition):
        lag.add_metric([g, t, str(p)], v)
        if g not in listed:
            sums[g] = sums.get(g, 0) + max(v, 0)
    for g, total in sorted(sums.items()):
        lag_sum.add_metric([g], total)

    if event_counts is None:
        tally = _Tally(e.get("kind") for e in status.get("events") or [])
        event_counts = {k: tally.get(k, 0) for k in RECOVERY_KINDS + REPLICA_KINDS}
    kinds = list(RECOVERY_KINDS) + sorted(str(k) for k in event_counts if k not in RECOVERY_KINDS + REPLICA_KINDS)
    for kind in kinds:
        events.add_metric([kind], max(int(event_counts.get(kind, 0) or 0), 0))
    for kind in REPLICA_KINDS:
        replica.add_metric([kind], max(int(event_counts.get(kind, 0) or 0), 0))

    healthy.add_metric([], 1 if status.get("healthy") else 0)
    reg = CollectorRegistry(auto_describe=False)
    reg.register(_Snapshot([up, restarts, cpu, rss, disk, latency, end, lag, lag_sum, events, replica,
                            *(f for f, _k in per_topic), healthy]))
    return generate_latest(reg)
