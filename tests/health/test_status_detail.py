"""build_status's additions beyond SPEC.md: per-partition end offsets and lag, aged uptimes."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sandbox.client import (ClusterMetadata, GroupDescription, GroupListing, PartitionLag,
                            PartitionMeta, TopicMeta)
from sandbox.health.status import build_status, service_entries


import pytest


@pytest.fixture(autouse=True)
def _fresh_min_isr_cache(monkeypatch):
    """min.insync.replicas is cached per topic across builds: another test's "orders" must not leak in."""
    monkeypatch.setattr("sandbox.health.status._MIN_ISR", {})


class FakeClient:
    def metadata(self, topics=None):
        parts = [PartitionMeta(0, 1, [1], [1]), PartitionMeta(1, 1, [1], [1])]
        return ClusterMetadata("c", 1, [], {"orders": TopicMeta("orders", None, parts)}), 0.5

    def end_offsets_of(self, wanted, *, skip=()):
        return {("orders", 0): 200, ("orders", 1): 10}

    def list_groups(self, *, skip=(), **kw):
        return [GroupListing("g", "Empty", "consumer")]

    def describe_group(self, group):
        return GroupDescription(group, "Empty", "consumer", "", [])

    def group_lag(self, group, *, skip=(), known_ends=None):
        return [PartitionLag("orders", 0, 50, 200, 150)]


def iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def state(updated_ago_s: float) -> dict:
    now = datetime.now(timezone.utc)
    return {"updated_at": iso(now - timedelta(seconds=updated_ago_s)), "events": [],
            "services": [{"name": "broker-1", "role": "broker", "state": "running", "healthy": True,
                          "pid": None, "port": 9092, "uptime_s": 3.0, "restarts": 0}]}


def test_partition_detail_keeps_spec_keys():
    st = build_status(name="n", mode="native", bootstrap="127.0.0.1:9092", state=state(0),
                      client=FakeClient())
    (t,) = st["topics"]
    assert t["end_offsets"] == 210 and t["partitions"] == 2
    assert t["partition_offsets"] == [{"partition": 0, "end_offset": 200},
                                      {"partition": 1, "end_offset": 10}]
    (g,) = st["groups"]
    assert (g["group"], g["state"], g["members"], g["lag"]) == ("g", "Empty", 0, 150)
    assert g["partitions"] == [{"topic": "orders", "partition": 0, "committed": 50,
                                "end_offset": 200, "lag": 150}]
    assert st["healthy"]


def test_uptime_is_aged_to_now():
    (s,) = service_entries(state(10))
    assert 12.9 <= s["uptime_s"] <= 15.0
    (s,) = service_entries({"services": state(0)["services"]})   # no updated_at: as written
    assert s["uptime_s"] == 3.0


def test_a_paused_service_is_shown_paused_with_its_pid():
    """SIGSTOPped behind the supervisor's back (a debugger, a suspended console) or by `sandbox
    pause`: shown paused and unhealthy, with the pid a user would resume."""
    import os
    import signal
    import subprocess
    import sys
    import time
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        os.kill(proc.pid, signal.SIGSTOP)
        import psutil
        deadline = datetime.now() + timedelta(seconds=10)
        while psutil.Process(proc.pid).status() != psutil.STATUS_STOPPED and datetime.now() < deadline:
            time.sleep(0.01)
        svc = {"name": "broker-1", "role": "broker", "healthy": True, "pid": proc.pid, "port": 9092,
               "uptime_s": 3.0, "restarts": 0}
        for written in ("running", "paused"):   # the supervisor has not noticed yet / has
            (s,) = service_entries({"services": [{**svc, "state": written}]})
            assert (s["state"], s["healthy"], s["pid"]) == ("paused", False, proc.pid)
    finally:
        os.kill(proc.pid, signal.SIGCONT)
        proc.kill()
        proc.wait(10)


def test_a_group_with_members_but_no_commits_has_no_lag_figure():
    """kafka-consumer-groups and `sandbox groups describe` show "-": nothing committed is not 0 behind."""
    from sandbox.client import GroupMember

    class NoCommits(FakeClient):
        def describe_group(self, group):
            return GroupDescription(group, "Stable", "consumer", "range",
                                    [GroupMember("m1", "c", "/127.0.0.1", None, {"orders": [0, 1]})])

        def group_lag(self, group, *, skip=(), known_ends=None):
            return []

    st = build_status(name="n", mode="native", bootstrap="x", state=state(0), client=NoCommits())
    (g,) = st["groups"]
    assert g["members"] == 1 and g["lag"] is None and g["partitions"] == []


def test_a_group_that_cannot_be_described_is_a_problem():
    from sandbox.client import KafkaClientError

    class NotCoordinator(FakeClient):
        def describe_group(self, group):
            raise KafkaClientError("describing group g failed with NOT_COORDINATOR", 16)

    st = build_status(name="n", mode="native", bootstrap="x", state=state(0), client=NotCoordinator())
    (g,) = st["groups"]
    assert g["lag"] is None and "NOT_COORDINATOR" in g["error"]
    assert any("group g" in p and "NOT_COORDINATOR" in p for p in st["problems"]), st["problems"]
    assert not st["healthy"]


def test_partitions_under_min_isr_are_a_problem_naming_the_topic(monkeypatch):
    """acks=all writes are refused (NOT_ENOUGH_REPLICAS) while the ISR is below min.insync.replicas."""
    monkeypatch.setattr("sandbox.health.status._MIN_ISR", {})

    class Shrunk(FakeClient):
        def metadata(self, topics=None):
            parts = [PartitionMeta(0, 1, [1, 2], [1]), PartitionMeta(1, 1, [1, 2], [1, 2])]
            return ClusterMetadata("c", 1, [], {"orders": TopicMeta("orders", None, parts)}), 0.5

        def describe_configs(self, name):
            return {"min.insync.replicas": ("2", False)}

    st = build_status(name="n", mode="native", bootstrap="x", state=state(0), client=Shrunk())
    (t,) = st["topics"]
    assert t["under_min_isr_partitions"] == 1
    assert any("topic orders" in p and "min.insync.replicas" in p for p in st["problems"]), st["problems"]
    assert not st["healthy"]


def test_a_process_stopped_by_a_debugger_is_paused(monkeypatch):
    """psutil's tracing-stop (a debugger holds it): it answers nothing, as SIGSTOP (README's fault table)."""
    import psutil

    from sandbox.health import status as status_mod

    class Traced:
        def __init__(self, pid):
            pass

        def status(self):
            return psutil.STATUS_TRACING_STOP

    monkeypatch.setattr(status_mod.psutil, "Process", Traced)
    assert status_mod._seen_state(1234) == "paused"


def test_min_insync_replicas_above_the_replication_says_to_lower_it(monkeypatch):
    """Found by review: one broker, a topic made with min.insync.replicas=2: status said "bring the
    missing broker back" though no broker is missing; the fix is lowering the setting."""
    monkeypatch.setattr("sandbox.health.status._MIN_ISR", {})

    class Alone(FakeClient):
        def metadata(self, topics=None):
            return ClusterMetadata("c", 1, [], {"t7": TopicMeta("t7", None, [PartitionMeta(0, 1, [1], [1])])}), 0.5

        def describe_configs(self, name):
            return {"min.insync.replicas": ("2", False)}

    st = build_status(name="n", mode="native", bootstrap="x", state=state(0), client=Alone())
    (p,) = [p for p in st["problems"] if "topic t7" in p]
    assert "missing broker" not in p and "sandbox topics alter t7 -o min.insync.replicas=1" in p, p
