"""A real 3-broker stack (`sandbox up`, free ports, a temp folder): topics get 3 replicas and
min.insync.replicas=2 without asking (declared, `topics create` without a factor, auto-created);
with one broker paused, `status --json` keeps listing topics and, once the coordinator fences that
broker, reports the partitions that lost a replica, /metrics and the event stream too.

What the coordinator does today on a fence (drop the broker from every ISR, move its leaderships)
is what is checked here; an ISR that grows back after the broker returns is the lead's replication
work (issue 11) and is not asserted."""

from __future__ import annotations

import os
import signal
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from sandbox.client import KafkaClient
from .stack_kit import events, make_project, service, topic, wait_status

pytestmark = pytest.mark.integration

TOPICS = '[topics.declared]\npartitions = 2\n\n[topics.one]\nreplication = 1\n'


@pytest.fixture
def proj(tmp_path):
    p = make_project(tmp_path / "proj", brokers=3, topics=TOPICS, recovery={"unhealthy_after_s": 120})
    yield p
    problems = p.teardown()
    assert not problems, problems


def metric(text: str, name: str, topic_name: str) -> float | None:
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            if s.name == name and s.labels.get("topic") == topic_name:
                return s.value
    return None


def test_three_brokers_replicate_by_default_and_status_shows_a_lost_replica(proj):
    r = proj.up()
    assert r.returncode == 0, r.stderr + proj.diagnostics()
    r = proj.cli("topics", "create", "made", "--partitions", "3")
    assert r.returncode == 0, r.stderr
    with KafkaClient(proj.bootstrap, timeout=5.0) as c:
        c.partitions("auto", auto_create=True)   # auto.create.topics.enable: replication_factor -1
        c.create_topic("solo", assignments=[[3]])   # one replica, on broker 3: goes offline with it
        md, _ = c.metadata()
        for name in ("declared", "made", "auto"):
            parts = md.topics[name].partitions
            assert parts and all(sorted(p.replicas) == [1, 2, 3] and sorted(p.isr) == [1, 2, 3]
                                 for p in parts), (name, parts)
            assert c.describe_configs(name)["min.insync.replicas"][0] == "2", name
        assert [len(p.replicas) for p in md.topics["one"].partitions] == [1]   # the file said 1
        assert c.describe_configs("one")["min.insync.replicas"][0] == "1"
    described = proj.cli("topics", "describe", "made").stdout
    assert "min.insync.replicas=2" in described and described.count("replicas [") == 3, described

    code, st = wait_status(proj, lambda c, s: c == 0 and topic(s, "auto"), 30, "a healthy stack listing every topic")
    for name in ("declared", "made", "auto"):
        t = topic(st, name)
        assert (t["replication"], t["min_insync_replicas"], t["under_replicated_partitions"],
                t["under_min_isr_partitions"], t["offline_partitions"]) == (3, 2, 0, 0, 0), t

    # broker 3 freezes: status still lists every topic (it used to print topics: [])
    pid = service(st, "broker-3")["pid"]
    os.kill(pid, signal.SIGSTOP)
    try:
        code, st = proj.status()
        assert service(st, "broker-3")["state"] == "paused" and code == 1
        assert {t["name"] for t in st["topics"]} >= {"declared", "made", "auto", "one"}, st["topics"]

        # the coordinator fences it after its session timeout (9 s): broker 3 leaves every ISR,
        # its leaderships move; nothing is offline and 2 in sync still satisfy min.insync.replicas
        def lost_a_replica(_c, s):
            t = topic(s, "made")
            return t and t["under_replicated_partitions"] == 3
        code, st = wait_status(proj, lost_a_replica, 40, "partitions of `made` under-replicated")
        for name, parts in (("declared", 2), ("made", 3), ("auto", 1)):
            t = topic(st, name)
            assert (t["under_replicated_partitions"], t["under_min_isr_partitions"], t["offline_partitions"]) \
                == (parts, 0, 0), t
            assert all(p["offline_replicas"] == [3] and 3 not in p["isr"] and p["leader"] in (1, 2)
                       for p in t["replica_problems"]), t
        assert topic(st, "one")["under_replicated_partitions"] == 0
        # Metadata itself names them, as Kafka's metadata cache does for a fenced broker's replicas
        # (it listed only replicas whose log cannot be opened; status made up the difference)
        with KafkaClient(proj.bootstrap, timeout=5.0) as c:
            made = c.metadata(["made"])[0].topics["made"]
        assert [p.offline_replicas for p in made.partitions] == [[3]] * 3, made
        solo = topic(st, "solo")   # its only replica is gone: offline (no leader), and a problem
        assert (solo["offline_partitions"], solo["leaderless_partitions"], solo["under_replicated_partitions"]) == (1, 1, 0)
        assert solo["replica_problems"] == [{"partition": 0, "leader": -1, "replicas": [3], "isr": [3],
                                             "offline_replicas": [3]}]
        assert code == 1 and not st["healthy"]
        assert "topic solo has 1 partitions without a leader" in st["problems"], st["problems"]
        assert not any(p.startswith(("topic declared", "topic made", "topic auto")) for p in st["problems"])

        code, st = wait_status(proj, lambda _c, s: events(s, kind="isr-shrink"), 15, "an isr-shrink event")
        shrinks = events(st, kind="isr-shrink")
        assert any("topic made" in e["detail"] and "broker(s) 3 left the ISR" in e["detail"] for e in shrinks), shrinks
        assert all(e["service"] == "broker-3" for e in shrinks)

        with urllib.request.urlopen(f"http://127.0.0.1:{proj.http_port}/metrics", timeout=30) as resp:
            text = resp.read().decode()
        assert metric(text, "sandbox_under_replicated_partitions", "made") == 3
        assert metric(text, "sandbox_under_min_isr_partitions", "made") == 0
        assert metric(text, "sandbox_offline_partitions", "made") == 0
        assert metric(text, "sandbox_offline_partitions", "solo") == 1
    finally:
        os.kill(pid, signal.SIGCONT)
    # broker 3 is back: "solo" has its leader again (the coordinator's clean election of a returning
    # in-sync replica); the other topics' ISR growing back needs real follower fetching (issue 11)
    wait_status(proj, lambda _c, s: (t := topic(s, "solo")) and t["offline_partitions"] == 0, 40,
                "solo back online")


def test_a_factor_above_the_broker_count_is_refused(proj):
    r = proj.up()
    assert r.returncode == 0, r.stderr + proj.diagnostics()
    r = proj.cli("topics", "create", "big", "--replication-factor", "4")
    assert r.returncode != 0
    assert "INVALID_REPLICATION_FACTOR" in r.stderr and "only 3 broker(s)" in r.stderr, r.stderr


def test_status_with_a_frozen_broker_still_lists_the_groups_the_others_coordinate(proj):
    """A broker that does not answer is not asked (each request would wait out a timeout, and
    one failure used to hide every group: "groups unavailable"): the groups and transactions the
    other brokers coordinate are listed, with their lag, and the problems say what is left out."""
    r = proj.up()
    assert r.returncode == 0, r.stderr + proj.diagnostics()
    r = proj.cli("topics", "create", "lagged", "--partitions", "3")
    assert r.returncode == 0, r.stderr
    with KafkaClient(proj.bootstrap, timeout=5.0) as c:
        md, _ = c.metadata(["lagged"])
        parts = [p.index for p in md.topics["lagged"].partitions if p.leader != 3]
        assert parts, md.topics["lagged"]
        for p in parts:
            c.produce("lagged", p, [(None, b"x")] * 5)
        groups = [f"g{i}" for i in range(16)]
        for g in groups:
            c.commit_offsets(g, {("lagged", p): 1 for p in parts})
        port_of = {g: c._coordinator(g)[1] for g in groups}
    code, st = wait_status(proj, lambda c, s: c == 0 and len(s["groups"]) == len(groups), 30,
                           "a healthy stack listing every group")
    frozen = service(st, "broker-3")
    others = {g for g in groups if port_of[g] != frozen["port"]}
    assert others and others != set(groups), port_of   # 16 groups over 3 coordinators
    # one listed group also committed on a partition broker 3 leads: its lag cannot be known
    some = sorted(others)[0]
    led_by_3 = [p.index for p in md.topics["lagged"].partitions if p.leader == 3]
    assert led_by_3, md.topics["lagged"]   # 3 partitions are placed on all 3 brokers
    with KafkaClient(proj.bootstrap, timeout=5.0) as c:
        c.commit_offsets(some, {("lagged", led_by_3[0]): 0})

    os.kill(frozen["pid"], signal.SIGSTOP)
    try:
        code, st = proj.status()
        assert service(st, "broker-3")["state"] == "paused" and code == 1
        listed = {g["group"]: g for g in st["groups"]}
        assert set(listed) == others, (sorted(listed), st["problems"])
        assert all(listed[g]["lag"] == 4 * len(parts) for g in others - {some}), listed
        assert listed[some]["lag"] is None, listed[some]
        assert "groups and transactions coordinated by broker(s) [3] are not shown: not healthy" in st["problems"]
        assert not any("did not answer" in p for p in st["problems"]), st["problems"]
        assert topic(st, "lagged"), st["topics"]

        # `groups describe` asks the group's coordinator alone; `groups list` does not ask the
        # broker the supervisor finds unhealthy, lists the rest and says what it left out (exit 1);
        # the log end offsets the frozen broker would give are not asked either: "-", said on
        # stderr, exit 1
        r = proj.cli("groups", "describe", some)
        assert r.stdout.count("lagged") == len(parts) + 1, r.stdout + r.stderr
        row = next(line.split() for line in r.stdout.splitlines() if line.startswith("lagged")
                   and line.split()[1] == str(led_by_3[0]))
        assert row[2:5] == ["0", "-", "-"], r.stdout
        assert r.returncode == 1 and "broker(s) [3] lead are not shown: not healthy" in r.stderr, r.stderr
        r = proj.cli("groups", "list")
        assert r.returncode == 1, r.stdout + r.stderr
        listed_rows = {line.split()[0]: line.split() for line in r.stdout.splitlines()[1:] if line.strip()}
        assert set(listed_rows) == others, r.stdout
        assert listed_rows[some][-1] == "-", r.stdout   # a lag that cannot be known
        assert "the groups broker(s) [3] coordinate are not listed: not healthy" in r.stderr, r.stderr
    finally:
        os.kill(frozen["pid"], signal.SIGCONT)


def test_a_stack_that_slept_keeps_its_leaders(proj):
    """A laptop's sleep, as every process sees it: the whole stack (supervisor too) frozen for
    longer than a broker's 9 s session, then resumed. The coordinator used to fence every broker
    on waking (each looked silent for the whole sleep): every partition offline for a moment,
    leadership moved to whichever broker heartbeated first. Now it sees that it stood still
    itself, and the brokers' sessions start again: same leaders, same leader epochs."""
    import time

    r = proj.up()
    assert r.returncode == 0, r.stderr + proj.diagnostics()
    r = proj.cli("topics", "create", "kept", "--partitions", "3")
    assert r.returncode == 0, r.stderr
    code, st = wait_status(proj, lambda c, s: c == 0 and topic(s, "kept"), 30, "a healthy stack")
    with KafkaClient(proj.bootstrap, timeout=5.0) as c:
        md, _ = c.metadata(["kept"])
    before = [(p.index, p.leader, p.leader_epoch, sorted(p.isr)) for p in md.topics["kept"].partitions]
    assert all(len(isr) == 3 for *_x, isr in before), before
    pids = [s["pid"] for s in st["services"]] + [proj.supervisor_pid()]
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        time.sleep(12)
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGCONT)
    code, st = wait_status(proj, lambda c, s: c == 0, 30, "healthy after the sleep")
    time.sleep(2)   # a fencing would show within the next ticks
    with KafkaClient(proj.bootstrap, timeout=5.0) as c:
        md, _ = c.metadata(["kept"])
    after = [(p.index, p.leader, p.leader_epoch, sorted(p.isr)) for p in md.topics["kept"].partitions]
    assert after == before
    code, st = proj.status()
    assert not events(st, kind="leader-change") and not events(st, kind="isr-shrink"), st["events"][-10:]
    assert "did not run for longer than a session" in proj.log_text("coordinator")
