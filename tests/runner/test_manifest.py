"""Topics as code: plan() cases, apply() against a real broker, and the live-reload watcher."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from sandbox.client import KafkaClient
from sandbox.config import TopicSpec
from sandbox.runner.manifest import (Action, ManifestWatcher, actual_state, apply, plan,
                                     reconcile)


def spec(name, partitions=1, replication=1, **config):
    return TopicSpec(name, partitions, replication, {k.replace("_", "."): v for k, v in config.items()})


# ---------------------------------------------------------------------------- plan

def test_plan_creates_missing_topics_in_name_order():
    acts = plan({"b": spec("b", 3, retention_ms="1000"), "a": spec("a")}, {})
    assert [(a.kind, a.topic, a.partitions, a.config, a.replication) for a in acts] == [
        ("create", "a", 1, {}, 1), ("create", "b", 3, {"retention.ms": "1000"}, 1)]
    assert acts[1].detail == "create topic b (3 partitions, replication 1, retention.ms=1000)"


def test_plan_in_sync_is_empty_and_never_deletes():
    desired = {"a": spec("a", 2, retention_ms="5")}
    actual = {"a": (2, {"retention.ms": "5", "segment.ms": "9"}), "removed": (4, {})}
    assert plan(desired, actual) == []
    assert plan({}, actual) == []


def test_plan_grows_partitions_and_warns_on_shrink():
    assert plan({"a": spec("a", 5)}, {"a": (2, {})}) == [
        Action("add-partitions", "a", 5, detail="grow topic a from 2 to 5 partitions")]
    [warn] = plan({"a": spec("a", 1)}, {"a": (3, {})})
    assert (warn.kind, warn.topic, warn.partitions) == ("warn-shrink", "a", 3)
    assert "cannot remove partitions" in warn.detail


def test_plan_alters_only_declared_changed_keys():
    desired = {"a": spec("a", 1, retention_ms="1000", cleanup_policy="delete")}
    actual = {"a": (1, {"retention.ms": "604800000", "cleanup.policy": "delete",
                        "segment.ms": "42"})}
    [act] = plan(desired, actual)
    assert (act.kind, act.topic, act.config) == ("alter-config", "a", {"retention.ms": "1000"})
    assert act.detail == "set retention.ms=1000 on topic a (retention.ms was 604800000)"
    # a key the file no longer declares is left alone
    assert plan({"a": spec("a")}, actual) == []


def test_plan_combines_growth_config_and_shrink_warning():
    acts = plan({"a": spec("a", 4, segment_ms="10"), "b": spec("b", 1)},
                {"a": (2, {}), "b": (2, {})})
    assert [(a.kind, a.topic) for a in acts] == [("add-partitions", "a"), ("alter-config", "a"),
                                                 ("warn-shrink", "b")]


def test_apply_never_raises_for_one_topic():
    class Broken:
        def create_topic(self, *a, **k):
            raise RuntimeError("boom")

        def create_partitions(self, *a):
            from sandbox.client import KafkaClientError
            raise KafkaClientError("no", 37)

    msgs = apply([Action("create", "x", 1, detail="create topic x"),
                  Action("add-partitions", "y", 2, detail="grow topic y"),
                  Action("warn-shrink", "z", 3, detail="z is big")], Broken())
    assert msgs == ["failed to create topic x: RuntimeError: boom", "failed to grow topic y: no",
                    "warning: z is big"]


# ---------------------------------------------------------------------------- apply

@pytest.mark.integration
@pytest.mark.timeout(120)
def test_apply_against_a_real_broker(broker):
    with KafkaClient(broker.bootstrap) as c:
        c.create_topic("legacy", 2)
        c.create_topic("grow", 1, config={"retention.ms": "1000"})
        c.alter_configs("grow", {"segment.ms": "77"})
        desired = {"orders": spec("orders", 3, retention_ms="604800000", cleanup_policy="compact"),
                   "grow": spec("grow", 4, retention_ms="2000")}
        actions = plan(desired, actual_state(c, desired))
        assert [(a.kind, a.topic) for a in actions] == [
            ("add-partitions", "grow"), ("alter-config", "grow"), ("create", "orders")]
        assert apply(actions, c) == [
            "grew topic grow to 4 partitions", "set retention.ms=2000 on topic grow",
            "created topic orders (3 partitions)"]
        md, _ = c.metadata()
        assert {n: len(t.partitions) for n, t in md.topics.items()} == {"legacy": 2, "grow": 4, "orders": 3}
        grow = c.describe_configs("grow")
        assert grow["retention.ms"] == ("2000", False) and grow["segment.ms"] == ("77", False)
        orders = c.describe_configs("orders")
        assert orders["cleanup.policy"] == ("compact", False)
        # now in sync: a second pass does nothing; the legacy topic is never touched
        assert reconcile(desired, c) == []
        assert reconcile({"legacy": spec("legacy", 1)}, c) == [
            "warning: topic legacy has 2 partitions but sandbox.toml asks for 1; Kafka cannot "
            "remove partitions, so it keeps 2 (set partitions = 2 to silence this)"]
        # one bad topic does not stop the next
        msgs = reconcile({"bad": spec("bad", 1, retention_ms="soon"), "good": spec("good", 2)}, c)
        assert msgs[0].startswith("failed to create topic bad") and "INVALID_CONFIG" in msgs[0]
        assert msgs[1] == "created topic good (2 partitions)"
        # a restore from a catalog older than a deletion (the topic's id kept) does not make it again
        from sandbox.protocol.extensions import RESTORE_TOPIC_ID
        gone_id = c.metadata(["good"])[0].topics["good"].topic_id
        c.delete_topic("good")
        assert reconcile({"good": spec("good", 2, **{RESTORE_TOPIC_ID.replace(".", "_"): str(gone_id)})}, c) == [
            "topic good not put back: it was deleted since the catalog was written"]
        assert "good" not in c.metadata()[0].topics
        assert "legacy" in c.metadata()[0].topics


def test_reconcile_reports_an_unreachable_cluster():
    from helpers import free_port
    with KafkaClient(f"127.0.0.1:{free_port()}", timeout=1) as c:
        [msg] = reconcile({"a": spec("a")}, c)
    assert msg.startswith("failed to read the cluster's topics: nothing listens on")


# ---------------------------------------------------------------------------- watcher

GOOD = '[sandbox]\nport = 9092\n\n[topics.orders]\npartitions = {n}\n'


class Recorder:
    def __init__(self):
        self.changes, self.errors = [], []
        self.event = threading.Event()

    def change(self, cfg):
        self.changes.append(cfg)
        self.event.set()

    def error(self, msg):
        self.errors.append(msg)
        self.event.set()

    def wait(self, timeout=5.0):
        assert self.event.wait(timeout), "the watcher did not call back in time"
        self.event.clear()


@pytest.mark.parametrize("polling", [False, True], ids=["native", "polling"])
def test_watcher_reloads_good_edits_and_reports_broken_ones(tmp_path: Path, polling):
    path = tmp_path / "sandbox.toml"
    path.write_text(GOOD.format(n=1))
    (tmp_path / "other.txt").write_text("x")
    rec = Recorder()
    w = ManifestWatcher(path, rec.change, rec.error, debounce_s=0.1, force_polling=polling)
    with w:
        assert w.polling == polling
        time.sleep(0.3)
        start = time.monotonic()
        path.write_text(GOOD.format(n=3))
        rec.wait()
        assert time.monotonic() - start < 2.0
        assert rec.changes[-1].topics["orders"].partitions == 3 and rec.errors == []

        path.write_text(GOOD.format(n=3) + "replication = 0\n")
        rec.wait()
        assert len(rec.errors) == 1 and len(rec.changes) == 1
        assert rec.errors[0] == (f"{path}:6: [topics.orders] replication = 0 must be at least 1; "
                                 "set replication = 1 or more.")

        # editors save by writing a temp file and renaming it over the original
        tmp = tmp_path / ".sandbox.toml.swp"
        tmp.write_text(GOOD.format(n=5))
        tmp.replace(path)
        rec.wait()
        assert rec.changes[-1].topics["orders"].partitions == 5

        # other files in the folder and unchanged saves are ignored
        (tmp_path / "other.txt").write_text("y")
        path.write_text(GOOD.format(n=5))
        assert not rec.event.wait(1.0)
    assert len(rec.changes) == 2 and len(rec.errors) == 1
    path.write_text(GOOD.format(n=7))   # stopped: no more callbacks
    assert not rec.event.wait(1.0)


def test_watcher_falls_back_to_polling_when_native_fails(tmp_path, monkeypatch):
    import watchdog.observers as obs

    class Failing:
        def schedule(self, *a, **k):
            raise OSError(28, "inotify watch limit reached")

    monkeypatch.setattr(obs, "Observer", Failing)
    path = tmp_path / "sandbox.toml"
    path.write_text(GOOD.format(n=1))
    rec = Recorder()
    with ManifestWatcher(path, rec.change, rec.error, debounce_s=0.05) as w:
        assert w.polling
        time.sleep(0.2)
        path.write_text(GOOD.format(n=2))
        rec.wait()
    assert rec.changes[0].topics["orders"].partitions == 2
