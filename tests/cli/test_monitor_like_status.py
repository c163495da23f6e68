"""`sandbox monitor` builds its frame as `sandbox status` does: a paused supervisor (its state file
stale) or a killed one (services still serving) is said so, not shown healthy or "not running"."""

from __future__ import annotations



from sandbox.cli import monitor
from sandbox.config import load_config
from sandbox.health.lag import LagTracker
from sandbox.runner import orphans, stack

from health.fake_status import status
from cli.test_status_orphans import Proc, sleeper  # noqa: F401 - the fixture


def test_a_paused_supervisor_is_not_shown_healthy(tmp_path, monkeypatch, sleeper):  # noqa: F811
    cfg = load_config(None, cwd=tmp_path)
    monkeypatch.setattr(stack, "running_pid", lambda c: sleeper.pid)
    monkeypatch.setattr(stack, "live_state", lambda c: None)   # it stopped beating (SIGSTOP)
    monkeypatch.setattr(stack, "read_status_file", lambda c: {
        "services": [{"name": "broker-1", "role": "broker", "state": "running", "healthy": True,
                      "pid": None, "port": 9092, "uptime_s": 1.0, "restarts": 0}], "events": []})
    monkeypatch.setattr(orphans, "live_services", lambda specs: {})
    st = monitor.collect(cfg, None, LagTracker())
    assert st is not None and not st["healthy"]
    assert "the supervisor does not answer" in st["problems"][0]


def test_services_of_a_killed_supervisor_are_shown(tmp_path, monkeypatch, sleeper):  # noqa: F811
    cfg = load_config(None, cwd=tmp_path)
    monkeypatch.setattr(stack, "running_pid", lambda c: None)
    monkeypatch.setattr(orphans, "live_services", lambda specs: {"broker-1": Proc(sleeper.pid)})
    st = monitor.collect(cfg, None, LagTracker())
    assert st is not None and not st["healthy"]
    assert "supervisor not running" in st["problems"][0]
    frame = monitor.text_frame(st, LagTracker(), cfg.name)
    assert "not running (waiting" not in frame and "orphaned" in frame


def test_groups_hidden_behind_a_skipped_broker_are_not_called_none_yet():
    st = status(groups=[], problems=["groups and transactions coordinated by broker(s) [2] are not shown: "
                                     "not healthy"])
    frame = monitor.text_frame(st, LagTracker(), "demo")
    assert "no consumer groups yet" not in frame
    assert "none shown" in frame.split("-- consumer groups", 1)[1].splitlines()[0]


def test_replicas_stay_visible_in_80_columns_beside_long_end_offsets():
    st = status()
    st["topics"][0].update(partitions=12, replication=3, under_replicated_partitions=4,
                           partition_offsets=[{"partition": p, "end_offset": 123456789} for p in range(12)])
    frame = monitor.text_frame(st, LagTracker(), "demo", width=80)
    row = next(line for line in frame.splitlines() if line.startswith("orders"))
    assert "3: 4 under-replicated" in row, row
