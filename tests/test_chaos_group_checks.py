"""The consumer-group invariants of the fault campaign (scripts/chaos_group.py) catch what they are
for: each check is fed a group history with one fault planted (a lost commit, a committed offset
ahead of what was processed, a record read that the log does not keep, a lag status gets wrong)
and the same history without it. The coordinator's answers are faked here; tests/integration/
test_chaos.py runs the checks against real brokers."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "chaos_group.py"
spec = importlib.util.spec_from_file_location("sandbox_chaos_group", SCRIPT)
cg = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = cg
spec.loader.exec_module(cg)

CLASSIC, CONSUMER = list(cg.GROUPS)


@pytest.fixture
def answers(monkeypatch):
    """group -> {partition: committed offset} the faked coordinator answers."""
    table: dict[str, dict[int, int] | str] = {}

    def committed(bootstrap, group, partitions, topic, timeout=cg.ASK_S):
        got = table.get(group, {})
        return got if isinstance(got, str) else {p: got.get(p, -1) for p in partitions}
    monkeypatch.setattr(cg, "committed_offsets", committed)
    return table


def _load(acked=None, seen=None) -> "cg.GroupLoad":
    load = cg.GroupLoad("127.0.0.1:1", "t")
    for g in cg.GROUPS:
        load.acked[g] = dict((acked or {}).get(g, {}))
        load.seen[g] = set((seen or {}).get(g, ()))
    return load


def test_an_acknowledged_commit_missing_from_the_answer_is_reported(answers):
    load = _load(acked={CLASSIC: {0: 10, 1: 4}, CONSUMER: {0: 7}})
    answers.update({CLASSIC: {0: 12, 1: 4}, CONSUMER: {0: 7}})
    assert cg.check_commits_kept(load, [0, 1], "after fault 1") == []
    answers[CLASSIC] = {0: 9, 1: 4}   # the coordinator moved and forgot the commit of 10
    out = cg.check_commits_kept(load, [0, 1], "after fault 2 (kill-broker)")
    assert len(out) == 1 and CLASSIC in out[0] and "{0: (9, 10)}" in out[0] and "fault 2" in out[0]
    answers[CONSUMER] = "the committed offsets of group chaos-consumer were not answered"
    assert any("not answered" in v for v in cg.check_commits_kept(load, [0, 1], "after fault 3"))


def test_a_committed_offset_past_unprocessed_records_is_reported(answers):
    log = {0: [(0, b"a"), (1, b"b"), (2, b"c")], 1: [(0, b"d")]}
    acked = [(b"a", 0, 0), (b"b", 0, 1), (b"c", 0, 2), (b"d", 1, 0)]
    every = {(0, 0, b"a"), (0, 1, b"b"), (0, 2, b"c"), (1, 0, b"d")}
    answers.update({CLASSIC: {0: 3, 1: 1}, CONSUMER: {0: 3, 1: 1}})
    load = _load(seen={CLASSIC: every, CONSUMER: every})
    assert cg.check_final(load, log, acked, lambda v: False) == []
    # a delivery report without an offset (confluent-kafka gives None) is not a position to check
    assert cg.check_final(load, log, acked + [(b"e", 0, None)], lambda v: False) == []
    # the consumer group never handed out b"b" but committed past it: an at-least-once app lost it
    load = _load(seen={CLASSIC: every, CONSUMER: every - {(0, 1, b"b")}})
    out = cg.check_final(load, log, acked, lambda v: False)
    assert len(out) == 1 and CONSUMER in out[0] and "('b', 0, 1)" in out[0]
    # below the committed offset only: a record past it may still be on its way
    answers[CONSUMER] = {0: 1, 1: 1}
    assert cg.check_final(load, log, acked, lambda v: False) == []


def test_a_record_handed_out_that_the_log_does_not_keep_is_reported(answers):
    log = {0: [(0, b"a"), (1, b"b")]}
    answers.update({CLASSIC: {0: 2}, CONSUMER: {0: 2}})
    kept = {(0, 0, b"a"), (0, 1, b"b")}
    # read past the high watermark: offset 1 held "x" before a failover truncated it
    load = _load(seen={CLASSIC: kept | {(0, 1, b"x")}, CONSUMER: kept})
    out = cg.check_final(load, log, [], lambda v: False)
    assert len(out) == 1 and CLASSIC in out[0] and "(0, 1, 'x')" in out[0]
    # unless the fault itself destroyed (or a quarantine keeps) the journal that held it
    assert cg.check_final(load, log, [], lambda v: v == b"x") == []


def test_groups_that_never_catch_up_are_reported_with_their_lag(answers):
    load = _load()
    answers.update({CLASSIC: {0: 5, 1: 3}, CONSUMER: {0: 5, 1: 3}})
    assert cg.wait_caught_up(load, {0: 5, 1: 3}, timeout=1) == []
    answers[CONSUMER] = {0: 5, 1: 2}
    out = cg.wait_caught_up(load, {0: 5, 1: 3}, timeout=0.5)
    assert len(out) == 1 and CONSUMER in out[0] and "{1: (2, 3)}" in out[0]


def test_status_must_show_the_caught_up_groups_without_lag():
    good = {"groups": [{"group": CLASSIC, "lag": 0}, {"group": CONSUMER, "lag": 0}, {"group": "x", "lag": 9}]}
    assert cg.check_status_lag(good) == []
    out = cg.check_status_lag({"groups": [{"group": CLASSIC, "lag": 3}]})
    assert len(out) == 2 and "lag 3" in out[0] and "does not list" in out[1]
