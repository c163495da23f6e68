"""The KIP-848 consumer group machine on a fake clock: epochs, server-side assignors, revocation
before reassignment, leaving, timeouts, regex subscriptions, metadata changes; and a property
test with simulated clients that no partition is ever owned twice and that every live member
reaches its target assignment within a bounded number of heartbeats."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from sandbox.broker.consumer_assignors import range_assignor, uniform
from sandbox.broker.consumer_group_machine import ConsumerGroupMachine
from sandbox.protocol.errors import (
    FENCED_MEMBER_EPOCH, GROUP_MAX_SIZE_REACHED, INVALID_REGULAR_EXPRESSION, INVALID_REQUEST, STALE_MEMBER_EPOCH, UNKNOWN_MEMBER_ID,
    UNRELEASED_INSTANCE_ID, UNSUPPORTED_ASSIGNOR, UNSUPPORTED_VERSION,
)

SESSION_MS, INTERVAL_MS = 10_000, 1000


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def machine(clock: Clock | None = None) -> ConsumerGroupMachine:
    return ConsumerGroupMachine(clock or Clock(), heartbeat_interval_ms=INTERVAL_MS, session_timeout_ms=SESSION_MS)


class Client:
    """What a consumer does: joins with epoch 0, applies each assignment it gets, and reports what
    it owns in its next heartbeat. A `lazy` one applies an assignment only when it next heartbeats
    (it goes on consuming revoked partitions meanwhile, as a real client in its callbacks)."""

    def __init__(self, m: ConsumerGroupMachine, member_id: str, topics=None, regex=None, assignor=None,
                 group: str = "g", instance_id: str | None = None, lazy: bool = False) -> None:
        self.lazy, self.pending = lazy, None
        self.m, self.member_id, self.group = m, member_id, group
        self.topics, self.regex, self.assignor, self.instance_id = topics, regex, assignor, instance_id
        self.epoch = 0
        self.owned: set[tuple[str, int]] = set()

    def beat(self, catalog, full: bool = False):
        if self.pending is not None:
            self.owned, self.pending = self.pending, None
        join = self.epoch == 0
        res = self.m.heartbeat(
            self.group, self.member_id, self.epoch, instance_id=self.instance_id,
            rebalance_timeout_ms=30_000 if join or full else -1,
            topic_names=(self.topics if self.topics is not None or self.regex is None else None) if join or full else None,
            topic_regex=(self.regex or "") if join or full else None,  # "" drops a regex
            assignor=self.assignor if join else None,
            owned=sorted(self.owned), catalog=catalog)
        if res.error_code in (UNKNOWN_MEMBER_ID, FENCED_MEMBER_EPOCH):
            self.epoch, self.owned, self.pending = 0, set(), None  # give up everything, rejoin
        elif res.error_code == 0:
            self.epoch = res.member_epoch
            if res.assignment is not None:
                got = {(t, p) for t, ps in res.assignment.items() for p in ps}
                if self.lazy:
                    self.pending = got
                else:
                    self.owned = got
        return res


CAT = {"t": ("id-t", 6), "u": ("id-u", 3)}


def target_of(m, member_id, group="g"):
    v = m.describe(group)
    mv = next(x for x in v.members if x.member_id == member_id)
    return {(t, p) for t, ps in mv.target.items() for p in ps}


def test_two_members_split_a_topic_and_a_third_gets_revoked_partitions_only_after_they_are_released():
    m = machine()
    a, b = Client(m, "a", ["t"]), Client(m, "b", ["t"])
    r = a.beat(CAT)
    assert (r.member_epoch, r.heartbeat_interval_ms, len(a.owned)) == (1, INTERVAL_MS, 6)
    b.beat(CAT)  # epoch 2: target 3 + 3, but a still holds all six
    assert b.owned == set() and m.describe("g").state == "Reconciling"
    a.beat(CAT)  # a is asked to revoke 3 (keeps its epoch 1 until it does)
    assert len(a.owned) == 3 and a.epoch == 1
    b.beat(CAT)
    assert b.owned == set()  # not yet: a has not acknowledged
    a.beat(CAT)  # a heartbeats without them: revoked, a moves to epoch 2
    assert a.epoch == 2
    b.beat(CAT)
    assert len(b.owned) == 3 and not (a.owned & b.owned) and b.epoch == 2
    assert m.describe("g").state == "Stable"
    c = Client(m, "c", ["t"])
    c.beat(CAT)
    for _ in range(3):
        for x in (a, b, c):
            x.beat(CAT)
    assert [len(x.owned) for x in (a, b, c)] == [2, 2, 2]
    assert set().union(a.owned, b.owned, c.owned) == {("t", p) for p in range(6)}


def test_leave_with_epoch_minus_one_frees_partitions_at_once():
    m = machine()
    a, b = Client(m, "a", ["t"]), Client(m, "b", ["t"])
    for _ in range(3):
        a.beat(CAT), b.beat(CAT)
    r = m.heartbeat("g", "a", -1)
    assert (r.error_code, r.member_epoch) == (0, -1)
    b.beat(CAT)
    assert len(b.owned) == 6
    assert m.heartbeat("g", "a", 5).error_code == UNKNOWN_MEMBER_ID


def test_session_timeout_removes_a_silent_member():
    clock = Clock()
    m = machine(clock)
    a, b = Client(m, "a", ["t"]), Client(m, "b", ["t"])
    for _ in range(3):
        a.beat(CAT), b.beat(CAT)
    clock.now += SESSION_MS / 1000 - 1
    b.beat(CAT)
    assert m.tick() == []
    clock.now += 2
    assert m.tick() == ["a"]
    b.beat(CAT)
    assert len(b.owned) == 6


def test_group_configs_set_the_session_timeout_and_heartbeat_interval():
    """consumer.session.timeout.ms / consumer.heartbeat.interval.ms set on the group (KIP-848 group
    configs, passed as `settings`) replace the broker's for that group's members."""
    clock = Clock()
    m = machine(clock)
    res = m.heartbeat("g", "a", 0, topic_names=["t"], rebalance_timeout_ms=30000, owned=[], catalog=CAT,
                      settings=(3000, 2 * SESSION_MS))
    assert res.heartbeat_interval_ms == 3000
    other = m.heartbeat("h", "b", 0, topic_names=["t"], rebalance_timeout_ms=30000, owned=[], catalog=CAT)
    assert other.heartbeat_interval_ms == INTERVAL_MS
    clock.now += SESSION_MS / 1000 + 1
    assert m.tick() == ["b"]          # the broker's session timeout
    clock.now += SESSION_MS / 1000
    assert m.tick() == ["a"]          # the group's, twice as long


def test_a_member_that_keeps_revoked_partitions_is_fenced_after_its_rebalance_timeout():
    clock = Clock()
    m = machine(clock)
    a = Client(m, "a", ["t"])
    a.beat(CAT)
    b = Client(m, "b", ["t"])
    b.beat(CAT)
    m.heartbeat("g", "a", a.epoch, owned=sorted(("t", p) for p in range(6)))  # asked to revoke, refuses
    for _ in range(29):
        clock.now += 1
        m.heartbeat("g", "a", a.epoch, owned=sorted(("t", p) for p in range(6)))
        b.beat(CAT)
        assert b.owned == set()
    clock.now += 2
    assert m.tick() == ["a"]
    b.beat(CAT)
    assert len(b.owned) == 6


def test_epochs_fenced_and_stale_and_lost_response_accepted():
    m = machine()
    a, b = Client(m, "a", ["t"]), Client(m, "b", ["t"])
    for _ in range(3):
        a.beat(CAT), b.beat(CAT)
    e = a.epoch
    assert m.heartbeat("g", "a", e + 1).error_code == FENCED_MEMBER_EPOCH
    # the previous epoch with a subset of the assignment: the response that bumped it was lost
    assert m.heartbeat("g", "a", e - 1, owned=sorted(a.owned)).error_code == 0
    assert m.heartbeat("g", "a", e - 1, owned=[("t", 0), ("t", 1), ("t", 2), ("t", 3)]).error_code == FENCED_MEMBER_EPOCH
    assert m.commit_check("g", "a", e, 9) == 0
    assert m.commit_check("g", "a", e - 1, 9) == STALE_MEMBER_EPOCH
    assert m.commit_check("g", "nobody", e, 9) == UNKNOWN_MEMBER_ID
    assert m.commit_check("g", "a", e, 8) == UNSUPPORTED_VERSION
    assert m.commit_check("g", "", -1, 9) == UNKNOWN_MEMBER_ID  # a simple commit needs an empty group
    assert m.fetch_check("g", "a", e) == 0 and m.fetch_check("g", "a", e - 1) == STALE_MEMBER_EPOCH
    assert m.fetch_check("g", None, -1) == 0


def test_request_validation_as_kafka():
    m = machine()
    assert m.heartbeat("g", "", 0, rebalance_timeout_ms=1, topic_names=["t"], owned=[]).error_code == INVALID_REQUEST
    assert m.heartbeat("g", "a", 0, topic_names=["t"], owned=[]).error_code == INVALID_REQUEST
    assert m.heartbeat("g", "a", 0, rebalance_timeout_ms=1, owned=[]).error_code == INVALID_REQUEST
    assert m.heartbeat("g", "a", 0, rebalance_timeout_ms=1, topic_names=["t"]).error_code == INVALID_REQUEST
    assert m.heartbeat("g", "a", -3).error_code == INVALID_REQUEST
    assert m.heartbeat("g", "a", 0, rebalance_timeout_ms=1, topic_names=["t"], owned=[],
                       assignor="sticky").error_code == UNSUPPORTED_ASSIGNOR
    assert m.heartbeat("g", "a", 0, rebalance_timeout_ms=1, topic_regex="(", owned=[]).error_code == INVALID_REGULAR_EXPRESSION
    # v0: the coordinator makes the member id
    r = m.heartbeat("g", "", 0, rebalance_timeout_ms=1, topic_names=["t"], owned=[], api_version=0, catalog=CAT)
    assert r.error_code == 0 and r.member_id


def test_regex_subscription_and_new_topics_and_partitions_are_picked_up():
    m = machine()
    a = Client(m, "a", regex="t.*")
    a.beat({"t": ("id-t", 2), "u": ("id-u", 3), "__consumer_offsets": ("x", 50)})
    assert a.owned == {("t", 0), ("t", 1)}
    cat = {"t": ("id-t", 4), "u": ("id-u", 3), "tt": ("id-tt", 1)}
    a.beat(cat)
    assert a.owned == {("t", p) for p in range(4)} | {("tt", 0)}
    # a deleted and re-created topic (new id) is a change too
    e = m.describe("g").group_epoch
    a.beat({"t": ("id-t2", 4), "tt": ("id-tt", 1)})
    assert m.describe("g").group_epoch == e + 1


def test_range_assignor_and_the_group_assignor_is_what_members_ask_for():
    m = machine()
    a, b = Client(m, "a", ["t", "u"], assignor="range"), Client(m, "b", ["t", "u"], assignor="range")
    for _ in range(4):
        a.beat(CAT), b.beat(CAT)
    assert m.describe("g").assignor == "range"
    assert a.owned == {("t", 0), ("t", 1), ("t", 2), ("u", 0), ("u", 1)}
    assert b.owned == {("t", 3), ("t", 4), ("t", 5), ("u", 2)}


def test_static_member_leaving_with_minus_two_keeps_its_partitions_for_its_successor():
    m = machine()
    a, b = Client(m, "a", ["t"], instance_id="i-a"), Client(m, "b", ["t"])
    for _ in range(4):
        a.beat(CAT), b.beat(CAT)
    held = set(a.owned)
    r = m.heartbeat("g", "a", a.epoch, instance_id="i-a")
    r = m.heartbeat("g", "a", -2, instance_id="i-a")
    assert (r.error_code, r.member_epoch) == (0, -2)
    b.beat(CAT)
    assert not (b.owned & held)  # not handed to b
    a2 = Client(m, "a2", ["t"], instance_id="i-a")
    a2.beat(CAT)
    assert a2.owned == held
    assert Client(m, "x", ["t"], instance_id="i-b").beat(CAT).error_code == 0
    assert Client(m, "a3", ["t"], instance_id="i-a").beat(CAT).error_code == UNRELEASED_INSTANCE_ID


def test_assignors_balance_and_stick():
    subs = {"a": frozenset({"t"}), "b": frozenset({"t"})}
    first = uniform(subs, {"t": 6}, {})
    assert sorted(len(v) for v in first.values()) == [3, 3]
    subs["c"] = frozenset({"t"})
    second = uniform(subs, {"t": 6}, first)
    assert sorted(len(v) for v in second.values()) == [2, 2, 2]
    assert second["a"] <= first["a"] and second["b"] <= first["b"]  # only moves to the newcomer
    het = uniform({"a": frozenset({"t", "u"}), "b": frozenset({"u"})}, {"t": 4, "u": 4}, {})
    assert len(het["a"]) == 4 and len(het["b"]) == 4 and all(t == "u" for t, _ in het["b"])
    assert range_assignor({"a": frozenset({"t"}), "b": frozenset({"t"})}, {"t": 5}, {}) == {
        "a": frozenset({("t", 0), ("t", 1), ("t", 2)}), "b": frozenset({("t", 3), ("t", 4)})}


# ---------------------------------------------------------------------------------------------
# property: random clients (join, heartbeat, leave, die silently, resubscribe, topics growing)

OPS = st.lists(st.tuples(st.sampled_from(["join", "join", "beat", "beat", "beat", "beat", "leave", "die", "grow", "wait",
                                          "resubscribe"]),
                         st.integers(0, 7)), min_size=1, max_size=40)


@settings(max_examples=1000, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(OPS, st.sampled_from(["uniform", "range"]))
def test_property_no_partition_owned_twice_and_every_live_member_converges(ops, assignor):
    clock = Clock()
    m = machine(clock)
    cat = {"t": ("id-t", 4), "u": ("id-u", 2)}
    live: dict[str, Client] = {}
    dead: list[Client] = []
    n = 0

    def check_disjoint():
        seen: dict = {}
        for c in live.values():
            for tp in c.owned:
                assert tp not in seen, f"{tp} owned by {seen[tp]} and {c.member_id}"
                seen[tp] = c.member_id
        g = m.groups.get("g")
        if g is not None:
            held = [tp for mm in g.members.values() for tp in mm.holds()]
            assert len(held) == len(set(held)), "the coordinator handed a partition to two members"

    for op, i in ops:
        ids = sorted(live)
        pick = live[ids[i % len(ids)]] if ids else None
        if op == "join" and len(live) < 5:
            n += 1
            c = Client(m, f"m{n}", ["t"] if n % 3 else None, regex="u" if n % 3 == 0 else None, assignor=assignor,
                       lazy=True)
            live[c.member_id] = c
            c.beat(cat)
        elif op == "beat" and pick:
            pick.beat(cat)
        elif op == "leave" and pick:
            m.heartbeat("g", pick.member_id, -1)
            del live[pick.member_id]
        elif op == "die" and pick:
            del live[pick.member_id]
            dead.append(pick)
        elif op == "grow":
            cat = dict(cat, t=("id-t", min(cat["t"][1] + 1, 8)))
        elif op == "resubscribe" and pick:
            pick.topics = ["t", "u"] if pick.topics == ["t"] else ["t"]
            pick.regex = None
            pick.beat(cat, full=True)
        elif op == "wait":
            clock.now += 0.5 + i
            for c in live.values():
                c.beat(cat)
            m.tick()
        check_disjoint()

    # settle: live clients heartbeat every interval; the silent ones' sessions run out
    clock.now += SESSION_MS / 1000 + 1
    for c in live.values():
        c.beat(cat)
    m.tick()
    for _ in range(5):  # bounded: apply, revoke, release, assign, acknowledge
        clock.now += INTERVAL_MS / 1000
        for c in live.values():
            c.beat(cat)
        m.tick()
        check_disjoint()
    if not live:
        return
    view = m.describe("g")
    assert view.state == "Stable", view
    assert {mv.member_id for mv in view.members} == set(live)
    for c in live.values():
        assert c.owned == target_of(m, c.member_id), c.member_id
        assert c.epoch == view.assignment_epoch
    wanted = {("t", p) for p in range(cat["t"][1])} if any(c.topics for c in live.values()) else set()
    if any(c.regex or (c.topics and "u" in c.topics) for c in live.values()):
        wanted |= {("u", p) for p in range(cat["u"][1])}
    assert set().union(*(c.owned for c in live.values())) == wanted


def test_group_consumer_max_size_refuses_a_new_member_of_a_full_group():
    """group.consumer.max.size: Kafka's GROUP_MAX_SIZE_REACHED for a member that would make the group
    larger; members already in it (and one rejoining after a fencing) are not refused."""
    m = ConsumerGroupMachine(Clock(), heartbeat_interval_ms=INTERVAL_MS, session_timeout_ms=SESSION_MS, max_size=2)
    a, b, c = Client(m, "a", topics=["t"]), Client(m, "b", topics=["t"]), Client(m, "c", topics=["t"])
    assert a.beat(CAT).error_code == 0 and b.beat(CAT).error_code == 0
    refused = c.beat(CAT)
    assert refused.error_code == GROUP_MAX_SIZE_REACHED
    assert refused.error_message == "The consumer group has reached its maximum capacity of 2 members."
    assert set(m.groups["g"].members) == {"a", "b"}
    assert a.beat(CAT).error_code == 0            # a member already in keeps beating
    a.epoch, a.owned = 0, set()                   # ... and may rejoin (it is no new member)
    assert a.beat(CAT).error_code == 0
    assert m.heartbeat("g", "b", -1).error_code == 0   # b leaves: there is room again
    assert c.beat(CAT).error_code == 0 and set(m.groups["g"].members) == {"a", "c"}


def test_a_full_consumer_group_refuses_a_static_replacement_and_is_not_upgraded_or_downgraded_past_a_limit():
    m = ConsumerGroupMachine(Clock(), heartbeat_interval_ms=INTERVAL_MS, session_timeout_ms=SESSION_MS, max_size=1)
    a = Client(m, "a", topics=["t"], instance_id="i-a")
    assert a.beat(CAT).error_code == 0
    assert m.heartbeat("g", "a", -2, instance_id="i-a").error_code == 0   # a static member steps out...
    b = Client(m, "b", topics=["t"], instance_id="i-a")   # ...and comes back under a new member id
    assert b.beat(CAT).error_code == GROUP_MAX_SIZE_REACHED   # Kafka checks the size first
    # a classic group of 2 members is not upgraded into a consumer group limited to 1
    from sandbox.broker.consumer_group_classic import MigrationRefused
    with pytest.raises(MigrationRefused, match="exceeds the consumer group maximum size"):
        m.adopt_classic("h", 1, "consumer", "range", [object(), object()], CAT)


def test_a_regex_member_resending_a_full_heartbeat_after_a_lost_answer_gets_its_assignment_again():
    """Kafka's isFullRequest: rebalance timeout, topic names *or regex*, and owned partitions set.
    A regex subscriber that lost the answer carrying its new partitions sends a full heartbeat
    (the Java consumer does after an error); it must be told its assignment again."""
    m = machine()
    a, b = Client(m, "a", regex="t"), Client(m, "b", regex="t")
    for _ in range(4):
        a.beat(CAT), b.beat(CAT)
    assert len(a.owned) == 3 and len(b.owned) == 3
    assert m.heartbeat("g", "b", -1).error_code == 0   # b leaves: a's target is all of t
    lost = m.heartbeat("g", "a", a.epoch, owned=sorted(a.owned), catalog=CAT)
    assert lost.assignment == {"t": [0, 1, 2, 3, 4, 5]}   # ...and this answer never arrives
    full = m.heartbeat("g", "a", a.epoch, rebalance_timeout_ms=30_000, topic_regex="t",
                       owned=sorted(a.owned), catalog=CAT)
    assert full.error_code == 0 and full.assignment == {"t": [0, 1, 2, 3, 4, 5]}


def test_a_static_member_leaving_with_minus_two_releases_what_it_was_revoking():
    """Kafka's consumerGroupStaticMemberGroupLeave empties partitionsPendingRevocation: partitions
    the leaving static member was giving up go at once to the member waiting for them (it keeps
    only its assigned partitions for its successor), and no rebalance timeout fences it later."""
    clock = Clock()
    m = machine(clock)
    a = Client(m, "a", ["t"], instance_id="i-a")
    a.beat(CAT), a.beat(CAT)
    assert len(a.owned) == 6
    b = Client(m, "b", ["t"])
    b.beat(CAT)
    m.heartbeat("g", "a", a.epoch, instance_id="i-a", owned=sorted(a.owned), catalog=CAT)
    member = m.groups["g"].members["a"]
    revoking = set(member.revoking)
    assert len(revoking) == 3 and len(member.assigned) == 3
    assert m.heartbeat("g", "a", -2, instance_id="i-a").member_epoch == -2
    assert member.revoking == frozenset() and member.revoke_deadline is None
    clock.now += 1
    b.beat(CAT)
    assert b.owned == revoking   # not after a's session timeout: now
    kept = set(member.assigned)
    a2 = Client(m, "a2", ["t"], instance_id="i-a")
    a2.beat(CAT)
    assert a2.owned == kept
