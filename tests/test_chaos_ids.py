"""The fault campaign's cluster id watch (scripts/chaos_ids.py) catches what it is there for: a
broker that answers with another cluster id at any moment, not only at the end."""
from __future__ import annotations

import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "chaos_ids.py"
spec = importlib.util.spec_from_file_location("sandbox_chaos_ids", SCRIPT)
chaos_ids = importlib.util.module_from_spec(spec)
spec.loader.exec_module(chaos_ids)


def test_another_id_seen_for_a_moment_is_a_violation_naming_the_broker_and_the_fault():
    answers = {1: "kept", 2: "kept", 3: "kept"}
    doing = ["during fault 3 (coordinator-journal-destroyed)"]

    def ask(broker):
        if answers[broker] is None:
            raise OSError("connection refused")   # down: asked again later, never a violation
        return answers[broker]

    w = chaos_ids.ClusterIdWatch("127.0.0.1:1", 3, "kept", lambda: doing[0], ask=ask)
    w.once()
    assert w.violations() == []
    answers[2], answers[3] = "fresh-journal-id", None
    w.once()
    doing[0] = "after fault 3 (coordinator-journal-destroyed)"
    answers[2] = "kept"
    w.once()
    assert w.violations() == ["broker 2 answered with cluster id fresh-journal-id during fault 3 "
                              "(coordinator-journal-destroyed), not kept"]


def test_a_watch_that_never_got_an_answer_says_so():
    def ask(broker):
        raise OSError("connection refused")

    w = chaos_ids.ClusterIdWatch("127.0.0.1:1", 3, "kept", lambda: "", ask=ask)
    w.once()
    assert w.violations() == ["the cluster id watch got no answer from any broker"]
