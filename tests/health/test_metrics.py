"""render_metrics: Prometheus text that parses, with values taken from the status dict."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from sandbox.health.metrics import EventCounter, render_metrics

from .fake_status import status


def samples(text: bytes) -> dict[tuple[str, tuple], float]:
    out = {}
    for fam in text_string_to_metric_families(text.decode()):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_values_match_the_status():
    st = status()
    got = samples(render_metrics(st))
    assert got[("sandbox_healthy", ())] == 1
    assert got[("sandbox_service_up", (("role", "broker"), ("service", "broker-1")))] == 1
    assert got[("sandbox_service_up", (("role", "coordinator"), ("service", "coordinator")))] == 1
    assert got[("sandbox_service_restarts_total", (("service", "broker-1"),))] == 2
    assert got[("sandbox_service_cpu_ratio", (("service", "broker-1"),))] == 0.012
    assert got[("sandbox_service_rss_bytes", (("service", "coordinator"),))] == 41000000
    assert got[("sandbox_service_disk_bytes", (("service", "broker-1"),))] == 1048576
    assert got[("sandbox_service_latency_seconds", (("service", "coordinator"),))] == 0.0008
    assert got[("sandbox_partition_end_offset", (("partition", "0"), ("topic", "orders")))] == 1000
    assert got[("sandbox_partition_end_offset", (("partition", "1"), ("topic", "orders")))] == 200
    assert got[("sandbox_group_lag", (("group", "billing"), ("partition", "1"), ("topic", "orders")))] == 150
    assert got[("sandbox_group_lag", (("group", "billing"), ("partition", "0"), ("topic", "orders")))] == 0
    assert got[("sandbox_group_lag_records", (("group", "billing"),))] == 150
    kinds = {dict(k[1])["kind"]: v for k, v in got.items() if k[0] == "sandbox_recovery_events_total"}
    assert kinds == {"crash": 1, "restart": 1, "repair": 0, "wipe": 0, "topics-recreated": 0,
                     "unhealthy": 0}
    assert not any(name.endswith("_created") for name, _ in got)


def test_unhealthy_and_missing_figures():
    st = status(healthy=False)
    st["services"][1].update(state="crashed", healthy=False, pid=None, cpu_percent=None,
                             rss_bytes=None, latency_ms=None)
    st["topics"], st["groups"] = [], []
    got = samples(render_metrics(st))
    assert got[("sandbox_healthy", ())] == 0
    assert got[("sandbox_service_up", (("role", "broker"), ("service", "broker-1")))] == 0
    assert ("sandbox_service_cpu_ratio", (("service", "broker-1"),)) not in got
    assert not any(k[0] in ("sandbox_group_lag", "sandbox_partition_end_offset") for k in got)


def test_explicit_lag_and_event_counts_win():
    counter = EventCounter()
    for kind in ["crash", "crash", "wipe", "start", "topics-recreated"]:
        counter({"kind": kind})
    got = samples(render_metrics(status(), lag_per_partition=[("g2", "t", 3, 7), {"group": "g2",
                                 "topic": "t", "partition": 4, "lag": 5}],
                                 event_counts=counter.counts()))
    assert got[("sandbox_group_lag", (("group", "g2"), ("partition", "3"), ("topic", "t")))] == 7
    assert got[("sandbox_group_lag_records", (("group", "g2"),))] == 12
    assert got[("sandbox_group_lag_records", (("group", "billing"),))] == 150   # from the group's sum
    assert ("sandbox_group_lag", (("group", "billing"), ("partition", "1"), ("topic", "orders"))) not in got
    assert got[("sandbox_recovery_events_total", (("kind", "crash"),))] == 2
    assert got[("sandbox_recovery_events_total", (("kind", "wipe"),))] == 1
    assert got[("sandbox_recovery_events_total", (("kind", "topics-recreated"),))] == 1


def test_empty_status_renders():
    got = samples(render_metrics({"healthy": False}))
    assert got[("sandbox_healthy", ())] == 0


def test_fresh_registry_per_call():
    a = render_metrics(status())
    b = render_metrics(status())
    assert a == b


def test_no_group_total_while_the_groups_lag_is_unknown():
    """status says lag null (a partition's leader not asked): no partial sum of the known partitions."""
    st = status()
    st["groups"][0]["lag"] = None
    st["groups"][0]["partitions"][0].update(end_offset=None, lag=None)
    got = samples(render_metrics(st))
    assert got[("sandbox_group_lag", (("group", "billing"), ("partition", "1"), ("topic", "orders")))] == 150
    assert {k[0] for k in got if dict(k[1]).get("group") == "billing"} == {"sandbox_group_lag"}


def test_names_keep_prometheus_conventions():
    """Base units (seconds, a ratio) and no *_sum on a gauge (the suffix of a summary)."""
    names = {fam.name for fam in text_string_to_metric_families(render_metrics(status()).decode())}
    assert not any(n.endswith(("_ms", "_percent", "_sum")) for n in names), names
