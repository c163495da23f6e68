"""Tests for sandbox.broker.groups: the classic group protocol with a fake clock and asyncio.run."""
from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sandbox.broker import groups as G
from sandbox.protocol import errors as E
from sandbox.broker.groups import GroupCoordinator
from sandbox.broker.offsets import OffsetStore


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


def make(tmp_path, **kw):
    clock = Clock()
    gc = GroupCoordinator(OffsetStore(tmp_path, fsync=False), clock=clock, **kw)
    return gc, clock


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def join(gc, member="", group="g", protocols=(("range", b"meta"),), instance=None, session=10000,
         rebalance=30000, client="c", require=False, ptype="consumer"):
    return gc.join_group(group, member, instance, ptype, list(protocols), session, rebalance, client,
                         "/127.0.0.1", require)


def sync(gc, gen, member, assignments=None, group="g", instance=None):
    return gc.sync_group(group, gen, member, instance, "consumer", None, assignments or {})


async def stable_pair(gc, clock):
    """Two members with initial delay: both in generation 1; returns (leader, follower) JoinResults."""
    t1 = asyncio.create_task(join(gc, protocols=[("range", b"A")], client="a"))
    t2 = asyncio.create_task(join(gc, protocols=[("range", b"B")], client="b"))
    await settle()
    assert not t1.done() and not t2.done()
    clock.advance(0.2)
    assert gc.expire() == []
    r1, r2 = await asyncio.gather(t1, t2)
    s2 = asyncio.create_task(sync(gc, 1, r2.member_id))
    await settle()
    assert not s2.done()
    s1 = await sync(gc, 1, r1.member_id, {r1.member_id: b"p0", r2.member_id: b"p1"})
    assert s1.error_code == 0 and s1.assignment == b"p0"
    assert (await s2).assignment == b"p1"
    return r1, r2


def test_two_members_join_and_sync(tmp_path):
    gc, clock = make(tmp_path, initial_rebalance_delay_ms=100)

    async def main():
        r1, r2 = await stable_pair(gc, clock)
        assert (r1.error_code, r2.error_code) == (0, 0)
        assert r1.generation_id == r2.generation_id == 1
        assert r1.leader == r2.leader == r1.member_id
        assert r1.member_id.startswith("a-") and r2.member_id.startswith("b-")
        assert r1.members == [(r1.member_id, None, b"A"), (r2.member_id, None, b"B")]
        assert r2.members == [] and r1.protocol_name == "range" and r1.protocol_type == "consumer"
        d = gc.describe_group("g")
        assert d.state == "Stable" and d.protocol == "range"
        assert [(m[0], m[4], m[5]) for m in d.members] == [(r1.member_id, b"A", b"p0"), (r2.member_id, b"B", b"p1")]
        assert gc.heartbeat("g", 1, r2.member_id, None) == 0
        # a follower rejoining with unchanged metadata gets the current generation at once
        again = await join(gc, r2.member_id, protocols=[("range", b"B")])
        assert again.generation_id == 1 and again.members == [] and gc.describe_group("g").state == "Stable"
        # a late sync in Stable returns the member's assignment
        assert (await sync(gc, 1, r2.member_id)).assignment == b"p1"

    asyncio.run(main())


def test_first_member_without_delay_completes_immediately(tmp_path):
    gc, _ = make(tmp_path)

    async def main():
        r = await join(gc)
        assert r.error_code == 0 and r.generation_id == 1 and r.leader == r.member_id
        assert gc.describe_group("g").state == "CompletingRebalance"
        assert gc.heartbeat("g", 1, r.member_id, None) == 0  # heartbeats are fine before SyncGroup
        assert (await sync(gc, 1, r.member_id, {r.member_id: b"x"})).assignment == b"x"

    asyncio.run(main())


def test_third_member_triggers_rebalance(tmp_path):
    gc, clock = make(tmp_path, initial_rebalance_delay_ms=100)

    async def main():
        r1, r2 = await stable_pair(gc, clock)
        t3 = asyncio.create_task(join(gc, protocols=[("range", b"C")], client="z"))
        await settle()
        assert not t3.done() and gc.describe_group("g").state == "PreparingRebalance"
        assert gc.heartbeat("g", 1, r1.member_id, None) == E.REBALANCE_IN_PROGRESS
        assert gc.heartbeat("g", 1, r2.member_id, None) == E.REBALANCE_IN_PROGRESS
        assert (await sync(gc, 1, r1.member_id)).error_code == E.REBALANCE_IN_PROGRESS
        t1 = asyncio.create_task(join(gc, r1.member_id, protocols=[("range", b"A")]))
        await settle()
        assert not t1.done()
        n1, n2, n3 = await asyncio.gather(t1, join(gc, r2.member_id, protocols=[("range", b"B2")]), t3)
        assert n1.generation_id == n2.generation_id == n3.generation_id == 2
        assert n1.leader == r1.member_id and len(n1.members) == 3 and n2.members == n3.members == []
        assert (r2.member_id, None, b"B2") in n1.members
        assert gc.heartbeat("g", 1, r1.member_id, None) == E.ILLEGAL_GENERATION

    asyncio.run(main())


def test_member_leaves_and_rest_rebalances(tmp_path):
    gc, clock = make(tmp_path, initial_rebalance_delay_ms=100)

    async def main():
        r1, r2 = await stable_pair(gc, clock)
        assert gc.leave_group("g", [(r2.member_id, None), ("ghost", None)]) == (
            0, [(r2.member_id, None, 0), ("ghost", None, E.UNKNOWN_MEMBER_ID)])
        assert gc.heartbeat("g", 1, r1.member_id, None) == E.REBALANCE_IN_PROGRESS
        assert gc.heartbeat("g", 1, r2.member_id, None) == E.UNKNOWN_MEMBER_ID
        n1 = await join(gc, r1.member_id, protocols=[("range", b"A")])
        assert n1.generation_id == 2 and n1.members == [(r1.member_id, None, b"A")]
        assert gc.leave_group("nope", [("x", None)]) == (0, [("x", None, E.UNKNOWN_MEMBER_ID)])

    asyncio.run(main())


def test_leave_completes_pending_join_without_leaver(tmp_path):
    gc, clock = make(tmp_path, initial_rebalance_delay_ms=100)

    async def main():
        r1, r2 = await stable_pair(gc, clock)
        t1 = asyncio.create_task(join(gc, r1.member_id, protocols=[("range", b"A")]))  # leader: rebalance
        await settle()
        assert not t1.done()
        gc.leave_group("g", [(r2.member_id, None)])
        n1 = await t1
        assert n1.generation_id == 2 and [m[0] for m in n1.members] == [r1.member_id]

    asyncio.run(main())


def test_last_member_leaving_empties_group(tmp_path):
    gc, _ = make(tmp_path)

    async def main():
        r = await join(gc)
        await sync(gc, 1, r.member_id, {})
        gc.leave_group("g", [(r.member_id, None)])
        d = gc.describe_group("g")
        assert d.state == "Empty" and d.members == [] and d.protocol_type == "consumer"
        r2 = await join(gc)  # the group starts over: a new generation
        assert r2.generation_id == 3 and r2.leader == r2.member_id

    asyncio.run(main())


def test_session_expiry_removes_member(tmp_path):
    gc, clock = make(tmp_path, initial_rebalance_delay_ms=100)

    async def main():
        r1, r2 = await stable_pair(gc, clock)
        clock.advance(6)
        assert gc.heartbeat("g", 1, r1.member_id, None) == 0
        assert gc.expire() == []
        clock.advance(5)  # r2 last heard 11 s ago, session 10 s
        assert gc.expire() == [r2.member_id]
        assert gc.heartbeat("g", 1, r1.member_id, None) == E.REBALANCE_IN_PROGRESS
        n1 = await join(gc, r1.member_id, protocols=[("range", b"A")])
        assert n1.generation_id == 2 and len(n1.members) == 1

    asyncio.run(main())


def test_rebalance_timeout_drops_members_that_do_not_rejoin(tmp_path):
    gc, clock = make(tmp_path, initial_rebalance_delay_ms=100)

    async def main():
        r1, r2 = await stable_pair(gc, clock)
        t1 = asyncio.create_task(join(gc, r1.member_id, protocols=[("range", b"A")], rebalance=20000))
        await settle()
        for _ in range(4):  # r2 keeps heartbeating but never rejoins
            clock.advance(5)
            assert gc.heartbeat("g", 1, r2.member_id, None) == E.REBALANCE_IN_PROGRESS
            gc.expire()
        assert not t1.done()
        clock.advance(11)  # past the 30 s rebalance timeout (the longest of the members')
        assert gc.expire() == [r2.member_id]
        n1 = await t1
        assert n1.generation_id == 2 and [m[0] for m in n1.members] == [r1.member_id]

    asyncio.run(main())


def test_leader_that_never_syncs_is_removed(tmp_path):
    gc, clock = make(tmp_path, initial_rebalance_delay_ms=100)

    async def main():
        t1 = asyncio.create_task(join(gc, client="a"))
        t2 = asyncio.create_task(join(gc, client="b"))
        await settle()
        clock.advance(1)
        gc.expire()
        r1, r2 = await asyncio.gather(t1, t2)
        s2 = asyncio.create_task(sync(gc, 1, r2.member_id))
        await settle()
        for _ in range(9):  # the leader heartbeats but never sends SyncGroup
            clock.advance(3)
            assert gc.heartbeat("g", 1, r1.member_id, None) == 0
            assert gc.expire() == []   # 27 s: past its session timeout (10 s), within the rebalance timeout
        clock.advance(3.5)  # heartbeats do not extend the SyncGroup deadline: the rebalance timeout (30 s), as
        assert gc.heartbeat("g", 1, r1.member_id, None) == 0   # Kafka's pending-sync timer (found by review:
        assert gc.expire() == [r1.member_id]                   # it was the session timeout)
        assert (await s2).error_code == E.REBALANCE_IN_PROGRESS
        assert gc.heartbeat("g", 1, r1.member_id, None) == E.UNKNOWN_MEMBER_ID
        n2 = await join(gc, r2.member_id)
        assert n2.generation_id == 2 and n2.leader == r2.member_id

    asyncio.run(main())


def test_the_syncgroup_deadline_is_the_rebalance_timeout_even_when_the_session_is_longer(tmp_path):
    """Kafka's schedulePendingSync waits the group's rebalance timeout, whatever the session
    timeout: a member that heartbeats but never sends SyncGroup is removed after it."""
    gc, clock = make(tmp_path)

    async def main():
        r = await join(gc, session=10000, rebalance=2000)
        assert r.error_code == 0 and gc.describe_group("g").state == "CompletingRebalance"
        clock.advance(1.5)
        assert gc.heartbeat("g", 1, r.member_id, None) == 0
        assert gc.expire() == []
        clock.advance(0.5)
        assert gc.expire() == [r.member_id]
        assert gc.describe_group("g").state == "Empty"

    asyncio.run(main())


def test_member_id_required_flow(tmp_path):
    gc, _ = make(tmp_path)

    async def main():
        r = await join(gc, require=True, client="cli")
        assert r.error_code == E.MEMBER_ID_REQUIRED and r.member_id.startswith("cli-") and r.generation_id == -1
        assert (await join(gc, "cli-bogus", require=True)).error_code == E.UNKNOWN_MEMBER_ID
        assert (await join(gc, "x", group="other", require=True)).error_code == E.UNKNOWN_MEMBER_ID
        ok = await join(gc, r.member_id, require=True)
        assert ok.error_code == 0 and ok.member_id == r.member_id and ok.generation_id == 1
        await sync(gc, 1, ok.member_id, {ok.member_id: b"a"})
        # a pending (MEMBER_ID_REQUIRED) member does not disturb the stable group...
        p = await join(gc, require=True)
        assert gc.heartbeat("g", 1, ok.member_id, None) == 0
        # ...and is forgotten after its session timeout
        assert gc.leave_group("g", [(p.member_id, None)])[1] == [(p.member_id, None, 0)]
        assert (await join(gc, p.member_id, require=True)).error_code == E.UNKNOWN_MEMBER_ID

    asyncio.run(main())


def test_pending_member_expires(tmp_path):
    gc, clock = make(tmp_path)

    async def main():
        p = await join(gc, require=True)
        clock.advance(11)
        gc.expire()
        assert (await join(gc, p.member_id, require=True)).error_code == E.UNKNOWN_MEMBER_ID

    asyncio.run(main())


def test_error_paths(tmp_path):
    gc, _ = make(tmp_path)

    async def main():
        assert (await join(gc, group="")).error_code == E.INVALID_GROUP_ID
        assert (await join(gc, session=500)).error_code == E.INVALID_SESSION_TIMEOUT
        assert (await join(gc, session=2_000_000)).error_code == E.INVALID_SESSION_TIMEOUT
        r = await join(gc)
        m = r.member_id
        assert gc.heartbeat("g", 7, m, None) == E.ILLEGAL_GENERATION
        assert gc.heartbeat("g", 1, "who", None) == E.UNKNOWN_MEMBER_ID
        assert gc.heartbeat("nope", 1, m, None) == E.UNKNOWN_MEMBER_ID
        assert gc.heartbeat("", 1, m, None) == E.INVALID_GROUP_ID
        assert (await sync(gc, 7, m)).error_code == E.ILLEGAL_GENERATION
        assert (await sync(gc, 1, "who")).error_code == E.UNKNOWN_MEMBER_ID
        assert (await sync(gc, 1, m, group="nope")).error_code == E.UNKNOWN_MEMBER_ID
        bad = await gc.sync_group("g", 1, m, None, "connect", None, {})
        assert bad.error_code == E.INCONSISTENT_GROUP_PROTOCOL
        assert (await gc.sync_group("g", 1, m, None, "consumer", "range", {m: b"x"})).assignment == b"x"

    asyncio.run(main())


def test_inconsistent_protocols(tmp_path):
    gc, _ = make(tmp_path)

    async def main():
        r = await join(gc, protocols=[("range", b""), ("roundrobin", b"")])
        assert (await join(gc, protocols=[("sticky", b"")])).error_code == E.INCONSISTENT_GROUP_PROTOCOL
        assert (await join(gc, ptype="connect")).error_code == E.INCONSISTENT_GROUP_PROTOCOL
        assert (await join(gc, protocols=[])).error_code == E.INCONSISTENT_GROUP_PROTOCOL
        assert (await join(gc, group="fresh", ptype="")).error_code == E.INCONSISTENT_GROUP_PROTOCOL
        assert "fresh" not in [g for g, _, _ in gc.list_groups()]
        # a compatible member joins: the common protocol wins the vote
        t1 = asyncio.create_task(join(gc, r.member_id, protocols=[("range", b""), ("roundrobin", b"")]))
        r2 = await join(gc, protocols=[("roundrobin", b"2")])
        n1 = await t1
        assert n1.protocol_name == r2.protocol_name == "roundrobin" and n1.generation_id == 2

    asyncio.run(main())


def test_a_member_rejoining_with_protocols_the_group_cannot_take_is_refused(tmp_path):
    """Kafka's ClassicGroup.supportsProtocols counts every member, the joiner's current protocols
    included (supportedProtocols[name] == numMembers), and wants the group's protocol type unless
    the group is Empty: a lone member cannot switch protocol or protocol type by rejoining."""
    gc, _ = make(tmp_path)

    async def main():
        r = await join(gc, protocols=[("range", b"")])
        assert (await sync(gc, 1, r.member_id, {r.member_id: b"a"})).error_code == 0
        swap = await join(gc, r.member_id, protocols=[("sticky", b"")])
        assert swap.error_code == E.INCONSISTENT_GROUP_PROTOCOL
        other = await join(gc, r.member_id, protocols=[("range", b"")], ptype="connect")
        assert other.error_code == E.INCONSISTENT_GROUP_PROTOCOL
        assert gc.describe_group("g").state == "Stable"
        assert gc.describe_group("g").protocol == "range"

    asyncio.run(main())


def test_protocol_vote(tmp_path):
    gc, clock = make(tmp_path, initial_rebalance_delay_ms=100)

    async def main():
        tasks = [asyncio.create_task(join(gc, protocols=p)) for p in (
            [("range", b""), ("rr", b"")], [("rr", b""), ("range", b"")], [("rr", b""), ("range", b"")])]
        await settle()
        clock.advance(1)
        gc.expire()
        results = await asyncio.gather(*tasks)
        assert {r.protocol_name for r in results} == {"rr"}

    asyncio.run(main())


def test_static_membership_replaces_member_id(tmp_path):
    gc, _ = make(tmp_path)

    async def main():
        r = await join(gc, instance="host-1", require=True)  # static members skip MEMBER_ID_REQUIRED
        assert r.error_code == 0 and r.generation_id == 1
        await sync(gc, 1, r.member_id, {r.member_id: b"asg"}, instance="host-1")
        r2 = await join(gc, instance="host-1", require=True)  # restart with the same instance id
        assert r2.error_code == 0 and r2.member_id != r.member_id and r2.generation_id == 1
        assert r2.leader == r2.member_id and r2.skip_assignment
        assert gc.heartbeat("g", 1, r.member_id, "host-1") == E.FENCED_INSTANCE_ID
        assert (await join(gc, r.member_id, instance="host-1")).error_code == E.FENCED_INSTANCE_ID
        assert (await sync(gc, 1, r2.member_id, instance="host-1")).assignment == b"asg"
        assert gc.describe_group("g").members[0][:2] == (r2.member_id, "host-1")
        # each member is answered with the member id the request gave: "" when it named the instance
        # only (Kafka's classicGroupLeaveToClassicGroup; the Java Admin matches the answers that way)
        assert gc.leave_group("g", [("", "host-1")])[1] == [("", "host-1", 0)]
        assert gc.describe_group("g").state == "Empty"

    asyncio.run(main())


def test_leave_group_by_instance_id_answers_with_the_request_member_id(tmp_path):
    """Kafka's classicGroupLeaveToClassicGroup: a member named by instance id only is answered with
    member id ""; an unknown instance id is UNKNOWN_MEMBER_ID even beside a known member id; a
    member id the instance id does not map to is FENCED_INSTANCE_ID."""
    gc, _ = make(tmp_path)

    async def main():
        a = await join(gc, instance="i-a")
        await sync(gc, 1, a.member_id, {a.member_id: b"x"}, instance="i-a")
        b = asyncio.create_task(join(gc, instance="i-b"))
        c = asyncio.create_task(join(gc, a.member_id, instance="i-a"))
        b, c = await asyncio.gather(b, c)
        _, results = gc.leave_group("g", [(a.member_id, "i-zz"), ("", "i-zz"), ("wrong", "i-b"), ("", "i-b")])
        assert results == [(a.member_id, "i-zz", E.UNKNOWN_MEMBER_ID), ("", "i-zz", E.UNKNOWN_MEMBER_ID),
                           ("wrong", "i-b", E.FENCED_INSTANCE_ID), ("", "i-b", 0)]
        assert [m[0] for m in gc.describe_group("g").members] == [a.member_id]

    asyncio.run(main())


def test_commit_and_fetch_offsets(tmp_path):
    gc, _ = make(tmp_path, partition_exists=lambda t, p: t != "gone")

    async def main():
        r = await join(gc)
        m = r.member_id
        offs = [("t", 0, 5, 2, "meta"), ("t", 1, 7, -1, None)]
        assert gc.commit_offsets("g", 1, m, None, offs) == [("t", 0, E.REBALANCE_IN_PROGRESS),
                                                             ("t", 1, E.REBALANCE_IN_PROGRESS)]
        await sync(gc, 1, m, {})
        assert gc.commit_offsets("g", 1, m, None, offs) == [("t", 0, 0), ("t", 1, 0)]
        assert gc.commit_offsets("g", 2, m, None, offs)[0][2] == E.ILLEGAL_GENERATION
        assert gc.commit_offsets("g", 1, "who", None, offs)[0][2] == E.UNKNOWN_MEMBER_ID
        assert gc.commit_offsets("g", -1, "", None, offs)[0][2] == E.UNKNOWN_MEMBER_ID  # group not empty
        res = gc.commit_offsets("g", 1, m, None, [("t", 2, 1, -1, "x" * 4097), ("gone", 0, 1, -1, ""),
                                                  ("t", 3, 1, -1, "y" * 4096)])
        assert res == [("t", 2, E.OFFSET_METADATA_TOO_LARGE), ("gone", 0, E.UNKNOWN_TOPIC_OR_PARTITION),
                       ("t", 3, 0)]
        assert gc.fetch_offsets("g", [("t", 0), ("t", 1), ("t", 2), ("u", 0)]) == {
            ("t", 0): (5, 2, "meta"), ("t", 1): (7, -1, ""), ("t", 2): (-1, -1, ""), ("u", 0): (-1, -1, "")}
        assert set(gc.fetch_offsets("g", None)) == {("t", 0), ("t", 1), ("t", 3)}
        assert gc.fetch_offsets("unknown", [("t", 0)]) == {("t", 0): (-1, -1, "")}
        assert gc.fetch_offsets("unknown", None) == {}
        # a commit for an unknown group from a "member" is from a stale generation
        assert gc.commit_offsets("other", 3, "m", None, offs)[0][2] == E.ILLEGAL_GENERATION

    asyncio.run(main())
    gc.offsets.close()
    gc2 = GroupCoordinator(OffsetStore(tmp_path), clock=Clock())  # offsets survive a restart
    assert gc2.fetch_offsets("g", [("t", 0)]) == {("t", 0): (5, 2, "meta")}
    assert gc2.committed_by_group() == {"g": {("t", 0): 5, ("t", 1): 7, ("t", 3): 1}}


def test_simple_commits(tmp_path):
    gc, _ = make(tmp_path)

    async def main():
        assert gc.commit_offsets("solo", -1, "", None, [("t", 0, 3, -1, "")]) == [("t", 0, 0)]
        assert gc.fetch_offsets("solo", None) == {("t", 0): (3, -1, "")}
        r = await join(gc, group="was")
        gc.leave_group("was", [(r.member_id, None)])
        assert gc.commit_offsets("was", -1, "", None, [("t", 0, 4, -1, "")]) == [("t", 0, 0)]
        assert ("solo", "", "Empty") in gc.list_groups()

    asyncio.run(main())


def test_delete_groups(tmp_path):
    gc, _ = make(tmp_path)

    async def main():
        r = await join(gc)
        gc.commit_offsets("g", -1, "", None, [])
        await sync(gc, 1, r.member_id, {})
        assert gc.commit_offsets("g", 1, r.member_id, None, [("t", 0, 1, -1, "")]) == [("t", 0, 0)]
        gc.commit_offsets("solo", -1, "", None, [("t", 0, 1, -1, "")])
        assert gc.delete_groups(["g", "nope", "", "solo"]) == [
            ("g", E.NON_EMPTY_GROUP), ("nope", E.GROUP_ID_NOT_FOUND), ("", E.INVALID_GROUP_ID), ("solo", 0)]
        gc.leave_group("g", [(r.member_id, None)])
        assert gc.delete_groups(["g"]) == [("g", 0)]
        assert gc.fetch_offsets("g", [("t", 0)]) == {("t", 0): (-1, -1, "")}
        assert gc.describe_group("g").state == "Dead" and gc.list_groups() == []
        assert gc.delete_groups(["g"]) == [("g", E.GROUP_ID_NOT_FOUND)]

    asyncio.run(main())


def test_describe_and_list(tmp_path):
    gc, clock = make(tmp_path, initial_rebalance_delay_ms=100)

    async def main():
        await stable_pair(gc, clock)
        t = asyncio.create_task(join(gc, group="h"))
        await settle()
        gc.commit_offsets("solo", -1, "", None, [("t", 0, 1, -1, "")])
        assert sorted(gc.list_groups()) == [("g", "consumer", "Stable"), ("h", "consumer", "PreparingRebalance"),
                                            ("solo", "", "Empty")]
        assert sorted(gc.list_groups(["stable", "Empty"])) == [("g", "consumer", "Stable"), ("solo", "", "Empty")]
        d = gc.describe_group("h")  # not stable: no metadata, no assignment, no protocol
        assert d.state == "PreparingRebalance" and d.protocol == "" and d.members[0][4:] == (b"", b"")
        assert d.members[0][2:4] == ("c", "/127.0.0.1")
        assert gc.describe_group("unknown") == G.GroupDescription(0, "unknown", "Dead", "", "", [])
        assert gc.describe_group("solo").state == "Empty"
        assert gc.describe_group("").error_code == E.INVALID_GROUP_ID
        clock.advance(1)
        gc.expire()
        await t

    asyncio.run(main())


def test_delete_offsets_for_topic(tmp_path):
    gc, _ = make(tmp_path)
    gc.commit_offsets("a", -1, "", None, [("t", 0, 1, -1, ""), ("u", 0, 2, -1, "")])
    gc.commit_offsets("b", -1, "", None, [("t", 1, 3, -1, "")])
    assert gc.delete_offsets_for_topic("t") == 2
    assert gc.committed_by_group() == {"a": {("u", 0): 2}}


def test_shutdown_answers_waiters_and_run_drives_timers(tmp_path):
    gc, clock = make(tmp_path, initial_rebalance_delay_ms=100)

    async def main():
        t = asyncio.create_task(join(gc))
        await settle()
        gc.shutdown()
        assert (await t).error_code == E.COORDINATOR_NOT_AVAILABLE
        gc2 = GroupCoordinator(gc.offsets, initial_rebalance_delay_ms=50)  # real clock
        runner = asyncio.create_task(gc2.run(interval_s=0.01))
        r = await asyncio.wait_for(join(gc2), 5)
        assert r.generation_id == 1
        runner.cancel()
        with pytest.raises(asyncio.CancelledError):
            await runner

    asyncio.run(main())


def test_cancelled_join_is_abandoned(tmp_path):
    """A parked JoinGroup whose connection went away is dropped with its member: the rebalance
    waits only for members whose clients are still there."""
    gc, clock = make(tmp_path, initial_rebalance_delay_ms=100)

    async def main():
        t1 = asyncio.create_task(join(gc, client="a"))
        t2 = asyncio.create_task(join(gc, client="b"))
        await settle()
        t2.cancel()  # the client's connection went away
        await settle()
        clock.advance(1)
        gc.expire()
        r1 = await t1
        assert r1.generation_id == 1 and [m[0] for m in r1.members] == [r1.member_id]
        await sync(gc, 1, r1.member_id, {r1.member_id: b"all"})
        t2 = asyncio.create_task(join(gc, client="b"))
        await settle()
        n1, r2 = await asyncio.gather(join(gc, r1.member_id), t2)
        assert n1.generation_id == r2.generation_id == 2
        await asyncio.gather(sync(gc, 2, r2.member_id), sync(gc, 2, r1.member_id, {}))
        t2 = asyncio.create_task(join(gc, r2.member_id, protocols=[("range", b"new")]))  # a rebalance
        await settle()
        assert not t2.done() and gc.describe_group("g").state == "PreparingRebalance"
        t2.cancel()  # r2's client is gone before r1 rejoined: r1 alone makes generation 3
        await settle()
        n1 = await join(gc, r1.member_id)
        assert n1.generation_id == 3 and [m[0] for m in n1.members] == [r1.member_id]
        assert t2.cancelled()

    asyncio.run(main())


def test_vanished_member_that_never_syncs_is_removed_after_its_session(tmp_path):
    gc, clock = make(tmp_path, initial_rebalance_delay_ms=100)

    async def main():
        t1 = asyncio.create_task(join(gc, client="a"))
        t2 = asyncio.create_task(join(gc, client="b", session=6000))
        await settle()
        clock.advance(1)
        gc.expire()
        r1, r2 = await asyncio.gather(t1, t2)  # r2's client got its answer, then vanished
        s1 = await sync(gc, 1, r1.member_id, {r1.member_id: b"x", r2.member_id: b"y"})
        assert s1.assignment == b"x" and gc.describe_group("g").state == "Stable"
        clock.advance(5.9)
        assert gc.heartbeat("g", 1, r1.member_id, None) == 0 and gc.expire() == []
        clock.advance(0.2)  # r2 never synced within its 6 s session: removed, even in Stable
        assert gc.expire() == [r2.member_id]
        assert gc.heartbeat("g", 1, r1.member_id, None) == E.REBALANCE_IN_PROGRESS

    asyncio.run(main())


def test_parked_requests_of_a_closed_connection_are_abandoned(tmp_path):
    """The broker cannot cancel a parked request when its connection closes, so the coordinator
    asks which peers are still connected (psutil in the broker; a fake here)."""
    connected = {"127.0.0.1:1111", "127.0.0.1:2222"}
    clock = Clock()
    gc = GroupCoordinator(OffsetStore(tmp_path, fsync=False), clock=clock, initial_rebalance_delay_ms=100,
                          peers=lambda: set(connected))

    async def main():
        t1 = asyncio.create_task(gc.join_group("g", "", None, "consumer", [("range", b"")], 10000, 30000,
                                               "a", "127.0.0.1", False, peer="127.0.0.1:1111"))
        t2 = asyncio.create_task(gc.join_group("g", "", None, "consumer", [("range", b"")], 10000, 30000,
                                               "b", "127.0.0.1", False, peer="127.0.0.1:2222"))
        await settle()
        connected.discard("127.0.0.1:2222")  # b's client exits with its JoinGroup parked
        clock.advance(0.05)
        gc.expire()
        await settle()
        assert not t2.done()  # checked only once a request has been parked for a while
        clock.advance(1)
        gc.expire()  # b is abandoned (and dropped), then the initial delay ends
        await settle()
        r1 = await t1
        assert (await t2).error_code == E.UNKNOWN_MEMBER_ID
        assert [m[0] for m in r1.members] == [r1.member_id]
        # a follower parked in SyncGroup whose client goes away must sync again by its deadline
        r3 = asyncio.create_task(gc.join_group("g", "", None, "consumer", [("range", b"")], 10000, 30000,
                                               "c", "127.0.0.1", False, peer="127.0.0.1:3333"))
        connected.add("127.0.0.1:3333")
        await settle()
        n1 = await gc.join_group("g", r1.member_id, None, "consumer", [("range", b"")], 10000, 30000,
                                 "a", "127.0.0.1", False, peer="127.0.0.1:1111")
        n3 = await r3
        s3 = asyncio.create_task(gc.sync_group("g", n3.generation_id, n3.member_id, None, "consumer", None, {},
                                               peer="127.0.0.1:3333"))
        await settle()
        connected.discard("127.0.0.1:3333")
        clock.advance(2)
        gc.expire()
        await settle()
        assert (await s3).error_code == E.REBALANCE_IN_PROGRESS  # answered, though nobody reads it
        assert gc.machine.parked == {}
        await gc.sync_group("g", n1.generation_id, n1.member_id, None, "consumer", None, {n3.member_id: b"c"})
        assert gc.describe_group("g").state == "Stable"
        clock.advance(8.5)  # c never synced again within its session: removed
        assert gc.expire() == [n3.member_id]

    asyncio.run(main())


# ---------------------------------------------------------------- property test: random protocol traffic
actions = st.lists(st.tuples(st.sampled_from(["join", "rejoin", "hb", "sync", "leave", "tick", "commit"]),
                             st.integers(0, 4), st.sampled_from([0.5, 3.0, 12.0, 40.0])), max_size=60)


@settings(max_examples=60, deadline=None)
@given(actions, st.sampled_from([0, 100]))
def test_invariants_under_random_traffic(tmp_path_factory, steps, delay):
    gc, clock = make(tmp_path_factory.mktemp("g"), initial_rebalance_delay_ms=delay)
    valid = {"Empty", "PreparingRebalance", "CompletingRebalance", "Stable"}

    async def main():
        tasks, known, last_gen = [], [], 0
        for action, i, dt in steps:
            group = gc.machine.groups.get("g")
            gen = group.generation if group else 0
            mid = known[i % len(known)] if known else ""
            if action == "join" or not known:
                tasks.append(asyncio.create_task(join(gc, require=bool(i % 2), client=f"c{i}")))
            elif action == "rejoin":
                tasks.append(asyncio.create_task(join(gc, mid, protocols=[("range", bytes([i]))])))
            elif action == "hb":
                assert gc.heartbeat("g", gen, mid, None) in (0, 22, 25, 27)
            elif action == "sync":
                tasks.append(asyncio.create_task(sync(gc, gen, mid, {m: b"a" for m in known})))
            elif action == "leave":
                gc.leave_group("g", [(mid, None)])
            elif action == "commit":
                assert all(c in (0, 22, 25, 27) for *_, c in gc.commit_offsets("g", gen, mid, None,
                                                                                [("t", 0, i, -1, "")]))
            else:
                clock.advance(dt)
                gc.expire()
            await settle()
            for t in tasks:
                new = getattr(t.result(), "member_id", "") if t.done() else ""
                if new and new not in known:
                    known.append(new)
            group = gc.machine.groups.get("g")
            if group is None:
                continue
            assert group.state in valid and group.generation >= last_gen
            last_gen = group.generation
            assert (group.state == "Empty") == (not group.members)
            if group.members:
                assert group.leader in group.members
            for m in group.members.values():
                if group.state != "PreparingRebalance":
                    assert m.join is None
                if group.state != "CompletingRebalance":
                    assert m.sync is None
            assert set(group.static.values()) <= set(group.members)
        gc.shutdown()
        done = await asyncio.wait_for(asyncio.gather(*tasks), 5)
        assert all(r.error_code in (0, 15, 22, 25, 27, 79) for r in done)

    asyncio.run(main())


def test_retried_join_supersedes_and_leave_in_completing_resets_syncs(tmp_path):
    gc, clock = make(tmp_path, initial_rebalance_delay_ms=100)

    async def main():
        r1, r2 = await stable_pair(gc, clock)
        old = asyncio.create_task(join(gc, r1.member_id, protocols=[("range", b"A")]))
        await settle()
        new = asyncio.create_task(join(gc, r1.member_id, protocols=[("range", b"A")]))  # client retried
        await settle()
        assert (await old).error_code == E.REBALANCE_IN_PROGRESS and not new.done()
        n2 = await join(gc, r2.member_id, protocols=[("range", b"B")])
        n1 = await new
        assert n1.generation_id == n2.generation_id == 2
        s2 = asyncio.create_task(sync(gc, 2, r2.member_id))
        await settle()
        gc.leave_group("g", [(r1.member_id, None)])  # the leader leaves before assigning
        assert (await s2).error_code == E.REBALANCE_IN_PROGRESS
        n2b = await join(gc, r2.member_id, protocols=[("range", b"B")])
        assert n2b.generation_id == 3 and n2b.leader == r2.member_id

    asyncio.run(main())


def subscription(*topics: str) -> bytes:
    """A ConsumerProtocolSubscription v1 (topics, no user data, no owned partitions)."""
    body = b"".join(len(t).to_bytes(2, "big") + t.encode() for t in topics)
    return b"\x00\x01" + len(topics).to_bytes(4, "big") + body + b"\xff\xff\xff\xff" + b"\x00\x00\x00\x00"


def test_delete_offsets(tmp_path):
    """OffsetDelete as Kafka answers it."""
    gc, _ = make(tmp_path)

    async def main():
        assert gc.delete_offsets("", [("t", 0)]) == (E.INVALID_GROUP_ID, [])
        assert gc.delete_offsets("nope", [("t", 0)]) == (E.GROUP_ID_NOT_FOUND, [])
        # a group that only stores offsets: they go, the others stay, and durably so
        gc.commit_offsets("solo", -1, "", None, [("t", 0, 5, -1, "a"), ("t", 1, 6, -1, ""), ("u", 0, 7, 3, "m")])
        assert gc.delete_offsets("solo", [("t", 0), ("t", 9)]) == (0, [("t", 0, 0), ("t", 9, 0)])
        assert gc.fetch_offsets("solo", None) == {("t", 1): (6, -1, ""), ("u", 0): (7, 3, "m")}
        # a consumer group with a member subscribed to t: t's offsets stay, u's go
        r = await join(gc, group="live", protocols=[("range", subscription("t"))])
        await sync(gc, 1, r.member_id, {}, group="live")
        assert gc.commit_offsets("live", 1, r.member_id, None, [("t", 0, 1, -1, ""), ("u", 0, 2, -1, "")])[0][2] == 0
        assert gc.delete_offsets("live", [("t", 0), ("u", 0)]) == (0, [("t", 0, E.GROUP_SUBSCRIBED_TO_TOPIC),
                                                                        ("u", 0, 0)])
        assert gc.fetch_offsets("live", None) == {("t", 0): (1, -1, "")}
        # unreadable subscriptions: every topic counts as subscribed
        r2 = await join(gc, group="odd", protocols=[("range", b"\x00")])
        await sync(gc, 1, r2.member_id, {}, group="odd")
        assert gc.delete_offsets("odd", [("u", 0)]) == (0, [("u", 0, E.GROUP_SUBSCRIBED_TO_TOPIC)])
        # a non-consumer group with members: the whole request fails
        r3 = await join(gc, group="conn", ptype="connect")
        assert gc.delete_offsets("conn", [("u", 0)]) == (E.NON_EMPTY_GROUP, [])
        # once the member leaves, the group is empty and its offsets can go; then the group is gone
        gc.leave_group("live", [(r.member_id, None)])
        assert gc.delete_offsets("live", [("t", 0)]) == (0, [("t", 0, 0)])
        assert gc.describe_group("live").state == "Dead" and "live" not in [g for g, _, _ in gc.list_groups()]
        assert r3.error_code == 0

    asyncio.run(main())
    gc.offsets.close()
    again = GroupCoordinator(OffsetStore(tmp_path), clock=Clock())
    assert again.fetch_offsets("solo", None) == {("t", 1): (6, -1, ""), ("u", 0): (7, 3, "m")}
    assert again.fetch_offsets("live", None) == {}


def test_a_session_that_ended_is_over_for_admin_requests_before_the_next_tick(tmp_path):
    """A static member that closed without leaving (KIP-345) is gone the moment its session ends,
    for ListGroups, DescribeGroups, DeleteGroups and OffsetDelete, whether or not the 0.1 s timer
    ran since (librdkafka's suite deletes such a group as soon as its session is over)."""
    gc, clock = make(tmp_path)

    async def main():
        r = await join(gc, instance="host-1", session=6000)
        await sync(gc, 1, r.member_id, {r.member_id: b"asg"}, instance="host-1")
        assert gc.commit_offsets("g", 1, r.member_id, "host-1", [("t", 0, 5, -1, None), ("t", 1, 7, -1, None)])[0][2] == E.NONE
        clock.advance(5.99)
        assert gc.delete_groups(["g"]) == [("g", E.NON_EMPTY_GROUP)]   # still in its session
        assert gc.describe_group("g").state == "Stable"
        clock.advance(0.02)                                             # no expire() between
        assert [row[2] for row in gc.list_groups()] == ["Empty"]
        assert gc.describe_group("g").members == []
        assert gc.delete_offsets("g", [("t", 0)])[0] == E.NONE
        assert gc.delete_groups(["g"]) == [("g", E.NONE)]

    asyncio.run(main())


def test_a_group_the_broker_cannot_vouch_for_keeps_its_members_through_the_outage(tmp_path):
    """While the broker's coordinator session may have lapsed it refuses the group's heartbeats
    (NOT_COORDINATOR), so the group's timers stand still: a 30 s outage does not expire members
    with a 10 s session, and once it is over the session runs on from where it stood."""
    lapsed = {"g": False}
    gc, clock = make(tmp_path, initial_rebalance_delay_ms=100, lapsed=lambda g: lapsed.get(g, False))

    async def main():
        r1, r2 = await stable_pair(gc, clock)
        clock.advance(4)
        assert gc.expire() == []
        lapsed["g"] = True
        for _ in range(300):          # 30 s in 0.1 s ticks, as the broker's timer task runs them
            clock.advance(0.1)
            assert gc.expire() == []
        lapsed["g"] = False
        clock.advance(5.9)             # 4 + 5.9 s of the 10 s session, not counting the outage
        assert gc.expire() == []
        assert gc.heartbeat("g", 1, r1.member_id, None) == 0
        clock.advance(0.2)             # r2 never heartbeat again: its session is over now
        assert gc.expire() == [r2.member_id]

    asyncio.run(main())


def test_a_group_led_without_a_lapse_expires_members_as_before(tmp_path):
    gc, clock = make(tmp_path, initial_rebalance_delay_ms=100, lapsed=lambda g: False)

    async def main():
        r1, r2 = await stable_pair(gc, clock)
        for _ in range(101):
            clock.advance(0.1)
            gc.expire()
        assert gc.describe_group("g").state == "Empty"   # both sessions ended

    asyncio.run(main())
