"""Online migration between a classic group and a KIP-848 consumer group (Kafka 4.0's default
group.consumer.migration.policy=bidirectional), on the group coordinator with a fake clock:
a `consumer`-protocol member joining a classic group with members turns it into a consumer group
whose classic members keep their partitions and are told to rejoin; the coordinator then assigns
every member, classic ones through JoinGroup/SyncGroup; when the last `consumer`-protocol member
leaves, the group goes back to the classic protocol and its members rebalance as before."""
from __future__ import annotations

import asyncio
import struct

from hypothesis import HealthCheck, given, settings, strategies as st

from sandbox.broker.groups import GroupCoordinator
from sandbox.broker.handlers.k28_txn_offset_commit import member_check as txn_member_check
from sandbox.broker.offsets import OffsetStore
from sandbox.coordinator.model import TopicInfo
from sandbox.protocol import errors as E
from sandbox.protocol.consumer_protocol import decode_assignment, decode_subscription, encode_assignment

TOPIC, PARTS = "t", 4


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


def topics() -> list:
    import uuid
    return [TopicInfo(TOPIC, uuid.UUID(int=7), {p: None for p in range(PARTS)})]


def subscription(owned=(), version: int = 1, user_data: bytes | None = None) -> bytes:
    out = struct.pack(">hih", version, 1, len(TOPIC)) + TOPIC.encode()
    out += struct.pack(">i", -1) if user_data is None else struct.pack(">i", len(user_data)) + user_data
    if version >= 1:
        parts = sorted(p for _, p in owned)
        out += struct.pack(">i", 1 if parts else 0)
        if parts:
            out += struct.pack(">h", len(TOPIC)) + TOPIC.encode() + struct.pack(f">i{len(parts)}i", len(parts), *parts)
    return out


def make(tmp_path, **kw):
    clock = Clock()
    return GroupCoordinator(OffsetStore(tmp_path, fsync=False), clock=clock, peers=lambda: None,
                            initial_rebalance_delay_ms=50, **kw), clock


def run(coro) -> None:
    asyncio.run(asyncio.wait_for(coro, 20))   # a request parked for ever fails the test, not the suite


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


class Classic:
    """A classic consumer: rejoins when told, syncs, heartbeats; eager ones give up every
    partition when they rejoin, cooperative ones say what they own."""

    def __init__(self, gc: GroupCoordinator, name: str, protocol: str = "roundrobin", eager: bool = True) -> None:
        self.gc, self.name, self.protocol, self.eager = gc, name, protocol, eager
        self.member_id, self.generation, self.owned = "", -1, set()

    async def join(self):
        owned = () if self.eager else sorted(self.owned)
        if self.eager:
            self.owned = set()
        res = await self.gc.join_group("g", self.member_id, None, "consumer",
                                       [(self.protocol, subscription(owned))], 10_000, 30_000, self.name,
                                       "/127.0.0.1", True, topics=topics)
        if res.error_code == E.MEMBER_ID_REQUIRED:
            self.member_id = res.member_id
            return await self.join()
        assert res.error_code == 0, res
        self.member_id, self.generation = res.member_id, res.generation_id
        return res

    async def sync(self, assignments=None):
        res = await self.gc.sync_group("g", self.generation, self.member_id, None, "consumer", self.protocol,
                                       assignments or {})
        if res.error_code == 0:
            parts, _ = decode_assignment(res.assignment)
            self.owned = {(t, p) for t, ps in parts.items() for p in ps}
        return res

    def heartbeat(self) -> int:
        return self.gc.heartbeat("g", self.generation, self.member_id, None)


def consumer_beat(gc, member_id: str, epoch: int, owned=None, leave: bool = False):
    ids = {TOPIC: str(topics()[0].topic_id)}
    return gc.consumer_heartbeat(
        "g", member_id, -1 if leave else epoch, topics=topics(),
        owned_by_id=[] if epoch == 0 else None if owned is None else ([(ids[TOPIC], sorted(p for _, p in owned))] if owned else []),
        rebalance_timeout_ms=30_000 if epoch == 0 else -1, topic_names=[TOPIC] if epoch == 0 else None,
        api_version=1)


async def classic_pair(gc, clock, leader_user_data: bytes | None = None, **kw) -> tuple[Classic, Classic]:
    """Two classic members in a stable generation 1; the leader gave each two partitions (its own
    assignment with `leader_user_data`, as a custom assignor may add)."""
    a, b = Classic(gc, "a", **kw), Classic(gc, "b", **kw)
    ta, tb = asyncio.create_task(a.join()), asyncio.create_task(b.join())
    await settle()
    clock.advance(0.1)
    gc.expire()
    ra, rb = await asyncio.gather(ta, tb)
    leader, follower = (a, b) if ra.leader == a.member_id else (b, a)
    plan = {leader.member_id: encode_assignment({TOPIC: [0, 1]}, user_data=leader_user_data),
            follower.member_id: encode_assignment({TOPIC: [2, 3]})}
    tf = asyncio.create_task(follower.sync())
    await settle()
    assert (await leader.sync(plan)).error_code == 0 and (await tf).error_code == 0
    assert a.owned | b.owned == {(TOPIC, p) for p in range(PARTS)}
    return a, b


def test_subscription_and_assignment_bytes_round_trip():
    sub = decode_subscription(subscription([(TOPIC, 3), (TOPIC, 1)], version=1))
    assert sub.topics == [TOPIC] and sorted(sub.owned) == [(TOPIC, 1), (TOPIC, 3)] and sub.version == 1
    assert decode_subscription(b"\x00\x01\x00\x00\x00\x05\x00\x01a") is None
    data = encode_assignment({TOPIC: [2, 0]}, version=3)
    assert decode_assignment(data) == ({TOPIC: [2, 0]}, None) and data[:2] == b"\x00\x03"
    assert decode_assignment(b"") == ({}, None)


def test_upgrade_then_every_member_is_assigned_then_downgrade(tmp_path):
    async def body():
        gc, clock = make(tmp_path)
        a, b = await classic_pair(gc, clock)
        # a consumer-protocol member joins: the classic group becomes a consumer group
        res, _ = consumer_beat(gc, "c1", 0)
        assert res.error_code == 0 and res.member_epoch == 2, res
        assert gc.consumer.is_consumer_group("g") and "g" not in gc.machine.groups
        desc = gc.consumer.describe("g")
        assert sorted(m["member_type"] for m in desc["members"]) == [0, 0, 1]
        # partitions the classic members still hold are withheld from the newcomer
        assert res.assignment in (None, {})
        # the classic members are told to rejoin; eager ones give everything up and get their share
        for m in (a, b):
            assert m.heartbeat() == E.REBALANCE_IN_PROGRESS
            r = await m.join()
            assert r.leader == "" and r.members == [] and r.protocol_name == "roundrobin" and r.generation_id == 2
            assert (await m.sync()).error_code == 0
            assert m.heartbeat() == 0
        res, _ = consumer_beat(gc, "c1", 2, owned=set())
        got = {(TOPIC, p) for p in (res.assignment or {}).get(TOPIC, [])}
        shares = [a.owned, b.owned, got]
        assert set().union(*shares) == {(TOPIC, p) for p in range(PARTS)}
        assert sum(len(s) for s in shares) == PARTS and all(shares), shares
        # offsets: a classic member commits with its generation (any version), a stale one is refused
        assert gc.commit_offsets("g", 2, a.member_id, None, [(TOPIC, 0, 5, -1, None)], api_version=2) == [(TOPIC, 0, 0)]
        assert gc.commit_offsets("g", 1, a.member_id, None, [(TOPIC, 0, 5, -1, None)])[0][2] == E.ILLEGAL_GENERATION
        # ... and inside a transaction (TxnOffsetCommit, KIP-447) the same way, also above its generation
        assert txn_member_check(gc, "g", 2, a.member_id, None) == 0
        assert txn_member_check(gc, "g", 3, a.member_id, None) == E.ILLEGAL_GENERATION
        # the consumer-protocol member leaves: the group goes back to the classic protocol, rebalancing
        res, _ = consumer_beat(gc, "c1", 2, leave=True)
        assert res.error_code == 0 and not gc.consumer.is_consumer_group("g")
        group = gc.machine.groups["g"]
        assert group.state == "PreparingRebalance" and group.protocol_type == "consumer" and group.generation == 2
        assert a.heartbeat() == E.REBALANCE_IN_PROGRESS   # the group epoch is its generation: it rejoins
        ta, tb = asyncio.create_task(a.join()), asyncio.create_task(b.join())
        ra, rb = await asyncio.gather(ta, tb)
        assert ra.generation_id == rb.generation_id == 3
        assert sorted(len(r.members) for r in (ra, rb)) == [0, 2]   # one leader, who assigns
    run(body())


def test_cooperative_members_give_up_partitions_by_rejoining_without_them(tmp_path):
    async def body():
        gc, clock = make(tmp_path)
        a, b = await classic_pair(gc, clock, protocol="cooperative-sticky", eager=False)
        consumer_beat(gc, "c1", 0)
        revoked = []
        for m in (a, b):
            assert m.heartbeat() == E.REBALANCE_IN_PROGRESS
            before = set(m.owned)
            await m.join()                     # says it still owns both of its partitions
            assert (await m.sync()).error_code == 0
            revoked += before - m.owned        # its assignment lacks what it must give up
        assert revoked, "someone had to give up a partition for the newcomer"
        for m in (a, b):
            if m.heartbeat() == E.REBALANCE_IN_PROGRESS:   # still at the old epoch: rejoin without them
                await m.join()
                await m.sync()
            assert m.heartbeat() == 0
        res, _ = consumer_beat(gc, "c1", 2, owned=set())
        got = {(TOPIC, p) for p in (res.assignment or {}).get(TOPIC, [])}
        assert got and not got & (a.owned | b.owned)
        assert a.owned | b.owned | got == {(TOPIC, p) for p in range(PARTS)}
    run(body())


def test_a_partition_a_cooperative_member_gives_up_is_not_handed_on_before_it_rejoins_without_it(tmp_path):
    """Between its JoinGroup (saying it still owns the partition) and its next JoinGroup (saying it
    no longer does) the partition is nobody else's: a consumer-protocol member asking meanwhile
    is not given it."""
    async def body():
        gc, clock = make(tmp_path)
        a, b = await classic_pair(gc, clock, protocol="cooperative-sticky", eager=False)
        first, _ = consumer_beat(gc, "c1", 0)
        epoch = first.member_epoch
        for m in (a, b):
            assert m.heartbeat() == E.REBALANCE_IN_PROGRESS
        before = {m.name: set(m.owned) for m in (a, b)}
        await a.join()
        await b.join()                           # both still own all four partitions
        res, _ = consumer_beat(gc, "c1", epoch, owned=set())
        assert not (res.assignment or {}).get(TOPIC), res   # nothing is free yet
        await a.sync()
        await b.sync()
        given_up = (before["a"] - a.owned) | (before["b"] - b.owned)
        assert given_up
        res, _ = consumer_beat(gc, "c1", epoch, owned=set())
        assert not (res.assignment or {}).get(TOPIC), res   # the clients revoked, the coordinator does not know yet
        for m in (a, b):
            if m.heartbeat() == E.REBALANCE_IN_PROGRESS:
                await m.join()
                await m.sync()
        res, _ = consumer_beat(gc, "c1", epoch, owned=set())
        assert {(TOPIC, p) for p in (res.assignment or {}).get(TOPIC, [])} == given_up
    run(body())


def test_a_classic_member_that_stops_heartbeating_is_fenced_and_the_group_goes_back(tmp_path):
    async def body():
        gc, clock = make(tmp_path)
        a, b = await classic_pair(gc, clock)
        consumer_beat(gc, "c1", 0)
        for _ in range(12):                     # only the consumer member and `a` stay alive
            clock.advance(1.0)
            a.heartbeat()
            consumer_beat(gc, "c1", gc.consumer.describe("g")["members"][-1]["member_epoch"])
            gc.expire()
        members = {m["member_id"] for m in gc.consumer.describe("g")["members"]}
        assert b.member_id not in members and a.member_id in members
        consumer_beat(gc, "c1", 0, leave=True)
        assert gc.machine.groups["g"].state == "PreparingRebalance"
        assert list(gc.machine.groups["g"].members) == [a.member_id]
    run(body())


def test_a_custom_assignor_or_a_disabled_policy_keeps_the_group_classic(tmp_path):
    async def body():
        gc, clock = make(tmp_path)
        await classic_pair(gc, clock, leader_user_data=b"mine")
        res, _ = consumer_beat(gc, "c1", 0)
        assert res.error_code == E.GROUP_ID_NOT_FOUND and "custom assignor" in res.error_message
        assert gc.machine.groups["g"].state == "Stable" and not gc.consumer.is_consumer_group("g")

        gc2, clock2 = make(tmp_path / "off", migration_policy="disabled")
        await classic_pair(gc2, clock2)
        res, _ = consumer_beat(gc2, "c1", 0)
        assert res.error_code == E.GROUP_ID_NOT_FOUND and "disabled" in res.error_message
    run(body())


def test_a_classic_member_joining_a_consumer_group_gets_partitions_from_the_coordinator(tmp_path):
    async def body():
        gc, _ = make(tmp_path)
        first, _ = consumer_beat(gc, "c1", 0)
        assert first.assignment == {TOPIC: [0, 1, 2, 3]}
        consumer_beat(gc, "c1", first.member_epoch, owned={(TOPIC, p) for p in range(PARTS)})
        a = Classic(gc, "a")
        r = await a.join()
        assert r.error_code == 0 and r.leader == "" and r.members == []
        await a.sync()
        assert a.owned == set()                 # c1 still holds them: nothing until it lets go
        res, _ = consumer_beat(gc, "c1", first.member_epoch, owned={(TOPIC, p) for p in range(PARTS)})
        kept = {(TOPIC, p) for p in (res.assignment or {}).get(TOPIC, [])}
        assert len(kept) == 2
        consumer_beat(gc, "c1", res.member_epoch, owned=kept)
        assert a.heartbeat() == E.REBALANCE_IN_PROGRESS   # its partitions are free now
        await a.join()
        await a.sync()
        assert len(a.owned) == 2 and not a.owned & kept
    run(body())


# ---------------------------------------------------------------- property: mixed groups
class SimConsumer:
    """A `consumer`-protocol member: heartbeats what it owns and takes what it is given."""

    def __init__(self, gc, name: str) -> None:
        self.gc, self.name, self.epoch, self.owned, self.gone = gc, name, 0, set(), False

    def step(self) -> None:
        res, _ = consumer_beat(self.gc, self.name, self.epoch, owned=self.owned)
        if res.error_code in (E.UNKNOWN_MEMBER_ID, E.FENCED_MEMBER_EPOCH):
            self.epoch, self.owned = 0, set()
            return
        assert res.error_code == 0, res
        self.epoch = res.member_epoch
        if res.assignment is not None:
            self.owned = {(t, p) for t, ps in res.assignment.items() for p in ps}

    def leave(self) -> None:
        consumer_beat(self.gc, self.name, self.epoch, leave=True)
        self.owned, self.gone = set(), True


class SimClassic:
    """A classic member of the consumer group, eager or cooperative, one request at a time."""

    def __init__(self, gc, name: str, eager: bool) -> None:
        self.gc, self.name, self.eager = gc, name, eager
        self.member_id, self.generation, self.owned, self.rejoin, self.gone = "", -1, set(), True, False
        self.syncing = False

    def step(self) -> None:
        """One request: JoinGroup when it must rejoin, else SyncGroup after a JoinGroup, else Heartbeat
        (other members act in between, as they do against a real coordinator)."""
        cg = self.gc.consumer
        # both kinds list both assignors (librdkafka's partition.assignment.strategy), in their order
        names = ["range", "cooperative-sticky"] if self.eager else ["cooperative-sticky", "range"]
        if self.rejoin:
            if self.eager:
                self.owned = set()
            meta = subscription(sorted(self.owned))
            r = cg.classic_join("g", self.member_id, None, "consumer", [(n, meta) for n in names],
                                10_000, 30_000, self.name, "/127.0.0.1", False, topics())
            assert r.error_code == 0, r
            self.member_id, self.generation, self.rejoin, self.syncing = r.member_id, r.generation_id, False, True
            return
        if self.syncing:
            self.syncing = False
            s = cg.classic_sync("g", self.generation, self.member_id, None, "consumer", names[0])
            if s.error_code == E.REBALANCE_IN_PROGRESS:
                self.rejoin = True
                return
            assert s.error_code == 0, s
            parts, _ = decode_assignment(s.assignment)
            self.owned = {(t, p) for t, ps in parts.items() for p in ps}   # revokes what it lost, adds the rest
            return
        code = cg.classic_heartbeat("g", self.generation, self.member_id, None)
        if code == E.REBALANCE_IN_PROGRESS:
            self.rejoin = True
        elif code in (E.ILLEGAL_GENERATION, E.UNKNOWN_MEMBER_ID):
            self.rejoin, self.owned = True, set()
            if code == E.UNKNOWN_MEMBER_ID:
                self.member_id = ""
        else:
            assert code == 0, code

    def leave(self) -> None:
        self.gc.leave_group("g", [(self.member_id, None)])
        self.owned, self.gone = set(), True


def check_disjoint(members) -> None:
    seen: dict = {}
    for m in members:
        for tp in m.owned:
            assert tp not in seen, f"{tp} owned by {seen[tp]} and {m.name}"
            seen[tp] = m.name


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from(["step", "step", "step", "add-eager", "add-coop", "add-consumer",
                                           "leave"]), st.integers(0, 7)), min_size=5, max_size=60))
def test_mixed_groups_never_hand_a_partition_to_two_members_and_settle(tmp_path, actions):
    gc, clock = make(tmp_path / str(len(actions)) / str(abs(hash(tuple(actions))) % 10_000))
    members: list = [SimConsumer(gc, "c0")]
    members[0].step()
    for kind, i in actions:
        live = [m for m in members if not m.gone]
        if kind == "add-eager" and len(live) < 6:
            members.append(SimClassic(gc, f"e{len(members)}", eager=True))
        elif kind == "add-coop" and len(live) < 6:
            members.append(SimClassic(gc, f"k{len(members)}", eager=False))
        elif kind == "add-consumer" and len(live) < 6:
            members.append(SimConsumer(gc, f"c{len(members)}"))
        elif kind == "leave":
            victim = live[i % len(live)]
            joined = [m for m in live if isinstance(m, SimConsumer) and m.epoch > 0]
            if joined == [victim]:
                continue   # the last consumer-protocol member stays: its leaving hands the group back
            victim.leave()
        else:
            live[i % len(live)].step()
        clock.advance(0.01)
        check_disjoint(members)
    live = [m for m in members if not m.gone]
    for _ in range(12):   # every member steps in turn: the group settles
        for m in live:
            m.step()
            check_disjoint(members)
    owned = [tp for m in live for tp in m.owned]
    assert sorted(owned) == [(TOPIC, p) for p in range(PARTS)], {m.name: sorted(m.owned) for m in live}


def test_a_restarted_static_classic_member_takes_its_place_in_a_consumer_group(tmp_path):
    """KIP-345 inside a consumer group: a classic member with a group.instance.id that comes back
    without its member id replaces its old self and keeps its partitions."""
    async def body():
        gc, _ = make(tmp_path)
        first, _ = consumer_beat(gc, "c1", 0)
        consumer_beat(gc, "c1", first.member_epoch, owned={(TOPIC, p) for p in range(PARTS)})
        r = await gc.join_group("g", "", "inst-1", "consumer", [("range", subscription())], 10_000, 30_000,
                                "s", "/127.0.0.1", True, topics=topics)
        assert r.error_code == 0 and r.leader == "", r
        again = await gc.join_group("g", "", "inst-1", "consumer", [("range", subscription())], 10_000, 30_000,
                                    "s", "/127.0.0.1", True, topics=topics)
        assert again.error_code == 0 and again.member_id != r.member_id, again
        members = {m["member_id"]: m for m in gc.consumer.describe("g")["members"]}
        assert r.member_id not in members and members[again.member_id]["member_type"] == 0
        fenced = await gc.join_group("g", r.member_id, "inst-1", "consumer", [("range", subscription())], 10_000,
                                     30_000, "s", "/127.0.0.1", True, topics=topics)
        assert fenced.error_code == E.FENCED_INSTANCE_ID
        # the old process's Heartbeat and SyncGroup are fenced too (fatal for it), not "unknown"
        # (it would rejoin and take the instance back, and the two would steal it in turn)
        assert gc.heartbeat("g", r.generation_id, r.member_id, "inst-1") == E.FENCED_INSTANCE_ID
        s = await gc.sync_group("g", r.generation_id, r.member_id, "inst-1", "consumer", "range", {})
        assert s.error_code == E.FENCED_INSTANCE_ID
    run(body())


def test_leave_group_by_instance_id_in_a_consumer_group_answers_with_the_request_member_id(tmp_path):
    """Kafka's classicGroupLeaveToConsumerGroup answers each member with the request's member id
    ("" when only the instance id was given); an unknown instance id is UNKNOWN_MEMBER_ID even
    beside a known member id."""
    async def body():
        gc, _ = make(tmp_path)
        consumer_beat(gc, "c1", 0)
        r = await gc.join_group("g", "", "inst-1", "consumer", [("range", subscription())], 10_000, 30_000,
                                "s", "/127.0.0.1", True, topics=topics)
        assert r.error_code == 0
        code, results = gc.leave_group("g", [(r.member_id, "inst-zz"), ("", "inst-1")])
        assert code == 0 and results == [(r.member_id, "inst-zz", E.UNKNOWN_MEMBER_ID), ("", "inst-1", 0)]
        assert [m["member_id"] for m in gc.consumer.describe("g")["members"]] == ["c1"]
    run(body())


def test_a_classic_member_of_a_consumer_group_cannot_switch_to_a_protocol_it_alone_would_support(tmp_path):
    """Kafka's ConsumerGroup.supportsClassicProtocols counts every classic member, the joiner's
    current protocols included: the only classic member rejoining with a new protocol name is
    refused (INCONSISTENT_GROUP_PROTOCOL)."""
    async def body():
        gc, _ = make(tmp_path)
        consumer_beat(gc, "c1", 0)
        a = Classic(gc, "a")
        assert (await a.join()).error_code == 0
        a.protocol = "range"
        res = await gc.join_group("g", a.member_id, None, "consumer", [("range", subscription())], 10_000,
                                  30_000, "a", "/127.0.0.1", True, topics=topics)
        assert res.error_code == E.INCONSISTENT_GROUP_PROTOCOL
    run(body())


def test_a_refused_upgrade_heartbeat_leaves_the_group_classic(tmp_path):
    """The heartbeat that would convert the group is checked first (as Kafka validates, then
    converts): refused, it changes nothing, and the classic members go on undisturbed."""
    async def body():
        gc, clock = make(tmp_path)
        a, b = await classic_pair(gc, clock)
        for bad in ({"assignor": "nonsense"}, {"topic_regex": "("}):
            res, _ = gc.consumer_heartbeat("g", "c1", 0, topics=topics(), owned_by_id=[], rebalance_timeout_ms=30_000,
                                           topic_names=[TOPIC], api_version=1, **bad)
            assert res.error_code in (E.UNSUPPORTED_ASSIGNOR, E.INVALID_REGULAR_EXPRESSION), res
            assert not gc.consumer.is_consumer_group("g") and gc.machine.groups["g"].state == "Stable"
            assert a.heartbeat() == 0 and b.heartbeat() == 0
        # then a good one converts it
        res, _ = consumer_beat(gc, "c1", 0)
        assert res.error_code == 0 and gc.consumer.is_consumer_group("g")
    run(body())


def test_leave_group_names_a_member_twice_or_a_consumer_protocol_member(tmp_path):
    async def body():
        gc, clock = make(tmp_path)
        a, b = await classic_pair(gc, clock)
        consumer_beat(gc, "c1", 0)
        epoch = gc.consumer.describe("g")["group_epoch"]
        code, results = gc.leave_group("g", [(a.member_id, None), (a.member_id, None), ("c1", None)])
        assert code == 0 and [r[2] for r in results] == [0, 0, E.UNKNOWN_MEMBER_ID], results
        desc = gc.consumer.describe("g")
        assert sorted(m["member_id"] for m in desc["members"]) == sorted(["c1", b.member_id])
        assert desc["group_epoch"] == epoch + 1   # one bump for the members that left together
    run(body())


def test_a_classic_member_joining_a_consumer_group_with_a_session_out_of_bounds_is_refused(tmp_path):
    async def body():
        gc, _ = make(tmp_path)
        consumer_beat(gc, "c1", 0)
        r = await gc.join_group("g", "", None, "consumer", [("range", subscription())], 10, 30_000,
                                "x", "/127.0.0.1", False, topics=topics)
        assert r.error_code == E.INVALID_SESSION_TIMEOUT
    run(body())


def test_a_consumer_group_keeps_its_members_while_the_broker_cannot_vouch_for_it(tmp_path):
    """KIP-848 members too: their session stands still while the coordinator session may have
    lapsed (heartbeats are refused then), and runs on afterwards."""
    lapsed = {"on": False}
    gc, clock = make(tmp_path, lapsed=lambda g: lapsed["on"])
    res, _ = consumer_beat(gc, "c1", 0)
    assert res.error_code == 0
    lapsed["on"] = True
    for _ in range(600):    # 60 s, beyond the 45 s session
        clock.advance(0.1)
        assert gc.expire() == []
    lapsed["on"] = False
    assert gc.expire() == []
    clock.advance(46)
    assert gc.expire() == ["c1"]
