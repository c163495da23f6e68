"""The sans-io group state machine: its table, and a property test with simulated clients (join,
leave, die silently, crash, slow sync, heartbeat, rejoin) on a fake clock."""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from sandbox.broker import group_machine as M
from sandbox.broker.group_machine import TRANSITIONS, GroupMachine
from sandbox.broker.group_model import COMPLETING, DEAD, EMPTY, PREPARING, STABLE, consumer_subscription_topics
from sandbox.protocol.errors import (
    ILLEGAL_GENERATION, MEMBER_ID_REQUIRED, NONE, REBALANCE_IN_PROGRESS, UNKNOWN_MEMBER_ID,
)

TICK = 0.25  # how often simulated clients act and the coordinator's timers run


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_the_table_covers_the_states_and_nothing_leaves_dead():
    assert set(TRANSITIONS) == {EMPTY, PREPARING, COMPLETING, STABLE, DEAD}
    assert TRANSITIONS[DEAD] == {}
    targets = {to for row in TRANSITIONS.values() for to in row.values()}
    assert targets == {PREPARING, COMPLETING, STABLE, EMPTY, DEAD}
    # every state but Dead can start a rebalance when a member joins
    assert all(TRANSITIONS[s][M.MEMBER_JOINED] == PREPARING for s in (EMPTY, PREPARING, COMPLETING, STABLE))


def test_an_event_outside_the_table_is_refused():
    m = GroupMachine(Clock())
    assert m.join(1, "g", "", None, "consumer", [("range", b"")], 6000, 6000, "c", "h", False) is not None
    group = m.groups["g"]
    assert group.state == COMPLETING
    try:
        m._fire(group, M.NOBODY_JOINED, 0.0)
    except M.InvalidTransition as e:
        assert "CompletingRebalance" in str(e)
    else:
        raise AssertionError("no transition from CompletingRebalance on nobody-joined")


def test_consumer_subscription_topics():
    def sub(*topics: str, version: int = 1) -> bytes:
        body = b"".join(len(t).to_bytes(2, "big") + t.encode() for t in topics)
        return version.to_bytes(2, "big") + len(topics).to_bytes(4, "big") + body + b"\xff\xff\xff\xff"
    assert consumer_subscription_topics(sub("a", "bb")) == {"a", "bb"}
    assert consumer_subscription_topics(sub(version=3)) == set()
    assert consumer_subscription_topics(b"\x00\x01\x00\x00\x00\x05\x00\x01a") is None
    assert consumer_subscription_topics(b"") is None


# ---------------------------------------------------------------- simulated clients
class Client:
    """A well-behaved classic consumer (one request in flight at a time, like a real client on
    its coordinator connection) that can also be told to die, crash, leave or sync slowly."""

    def __init__(self, sim: "Sim", name: str) -> None:
        self.sim, self.name = sim, name
        self.alive = True
        self.member_id = ""
        self.generation = -1
        self.need = "join"             # the next request to send: "join", "sync" or None
        self.inflight: int | None = None
        self.sync_payload: dict[str, bytes] = {}
        self.assigned_generation = -1  # the generation of its last completed SyncGroup
        self.next_heartbeat = 0.0
        self.sync_not_before = 0.0     # a slow SyncGroup

    def act(self) -> None:
        if not self.alive or self.inflight is not None:
            return
        sim, now = self.sim, self.sim.clock.t
        if self.need == "join":
            self.send("join", lambda r: sim.m.join(r, "g", self.member_id, None, "consumer",
                                                   [("range", self.name.encode())], sim.session_ms,
                                                   sim.rebalance_ms, self.name, "h", True))
        elif self.need == "sync" and now >= self.sync_not_before:
            self.send("sync", lambda r: sim.m.sync(r, "g", self.generation, self.member_id, None, "consumer",
                                                   None, self.sync_payload))
        elif self.need is None and self.generation >= 0 and now >= self.next_heartbeat:
            self.next_heartbeat = now + sim.heartbeat_s
            code = sim.m.heartbeat("g", self.generation, self.member_id, None)
            self.on_error(code)

    def send(self, kind: str, call) -> None:
        req = self.sim.new_request(self)
        self.inflight = req
        res = call(req)
        self.sim.route()
        if res is not None:
            self.answer(req, res)

    def answer(self, req: int, res) -> None:
        if req != self.inflight:
            return
        self.inflight = None
        if not self.alive:
            return
        if hasattr(res, "generation_id"):  # JoinResult
            if res.error_code == MEMBER_ID_REQUIRED:
                self.member_id, self.need = res.member_id, "join"
            elif res.error_code == NONE:
                self.generation, self.member_id, self.need = res.generation_id, res.member_id, "sync"
                self.sync_payload = {m: m.encode() for m, _, _ in res.members}  # empty unless leader
            else:
                self.on_error(res.error_code)
        elif res.error_code == NONE:
            self.assigned_generation, self.need = self.generation, None
            self.next_heartbeat = self.sim.clock.t + self.sim.heartbeat_s
        else:
            self.on_error(res.error_code)

    def on_error(self, code: int) -> None:
        if code == UNKNOWN_MEMBER_ID:
            self.member_id, self.generation, self.need = "", -1, "join"
        elif code in (REBALANCE_IN_PROGRESS, ILLEGAL_GENERATION):
            self.need = "join"
        else:
            assert code == NONE, code


class Sim:
    def __init__(self, session_s: float, rebalance_s: float) -> None:
        self.clock = Clock()
        self.m = GroupMachine(self.clock, min_session_timeout_ms=1000)
        self.session_ms, self.rebalance_ms = int(session_s * 1000), int(rebalance_s * 1000)
        self.heartbeat_s = session_s / 3
        self.clients: list[Client] = []
        self.owner: dict[int, Client] = {}
        self.requests = 0
        self.generation = 0

    def new_request(self, client: Client) -> int:
        self.requests += 1
        self.owner[self.requests] = client
        return self.requests

    def route(self) -> None:
        for req, res in self.m.drain():
            self.owner[req].answer(req, res)

    def step(self) -> None:
        """Clients act, time moves one tick, timers run; then the invariants."""
        for c in list(self.clients):
            c.act()
        self.clock.t += TICK
        self.m.tick()
        self.route()
        self.check()

    def check(self) -> None:
        now = self.clock.t
        assert self.m.overdue(now) == [], "a parked request outlived its deadline"
        group = self.m.groups.get("g")
        if group is not None:
            assert group.generation >= self.generation, "generations only grow"
            self.generation = group.generation
            assert (group.state == EMPTY) == (not group.members)
            if group.members:
                assert group.leader in group.members
            for mem in group.members.values():
                assert mem.join is None or group.state == PREPARING
                assert mem.sync is None or group.state == COMPLETING
        parked = set(self.m.parked)
        for c in self.clients:
            if c.alive and c.inflight is not None:
                assert c.inflight in parked, f"{c.name}'s request was answered but not delivered"

    def settled(self) -> bool:
        """Every live client holds an assignment of the current, Stable generation, and the group
        is exactly the live clients."""
        live = [c for c in self.clients if c.alive]
        group = self.m.groups.get("g")
        if not live:
            return group is None or group.state == EMPTY
        return (group is not None and group.state == STABLE
                and set(group.members) == {c.member_id for c in live}
                and all(c.assigned_generation == group.generation for c in live))


actions = st.lists(st.tuples(st.sampled_from(["start", "leave", "die", "crash", "slow", "wait", "wait"]),
                             st.integers(0, 3), st.floats(0.1, 2.0)), min_size=1, max_size=15)


@settings(max_examples=1000, deadline=None, derandomize=True, database=None)
@given(actions, st.sampled_from([3.0, 6.0]), st.sampled_from([1.0, 2.0]))
def test_live_members_always_get_an_assignment(steps, session_s, rebalance_factor):
    """After the last disruptive event (a client starts, leaves, dies, crashes or syncs slowly),
    every live client holds an assignment of a Stable generation within session + rebalance
    timeout, or at once if no client vanished silently (plus a heartbeat interval and a few
    ticks: clients learn of rebalances by heartbeat, and act once a tick)."""
    rebalance_s = session_s * rebalance_factor
    sim = Sim(session_s, rebalance_s)
    last_disruption = sim.clock.t
    silent = False  # did a client vanish without the coordinator being able to tell?
    for kind, i, scale in steps:
        live = [c for c in sim.clients if c.alive]
        if kind == "start" or not live:
            sim.clients.append(Client(sim, f"c{len(sim.clients)}"))
        elif kind == "wait":
            for _ in range(int(scale * session_s / TICK)):
                sim.step()
            continue
        else:  # crash and die prefer a client with a request in flight (parked, often)
            busy = [c for c in live if c.inflight is not None] if kind in ("crash", "die") else []
            c = (busy or live)[i % len(busy or live)]
            if kind == "leave" and c.inflight is None:  # a LeaveGroup queues behind a parked request
                c.alive = False
                if c.member_id:
                    sim.m.leave("g", [(c.member_id, None)])
                    sim.route()
            elif kind in ("die", "leave"):  # hangs or exits; its connection stays open
                c.alive, silent = False, True
            elif kind == "crash":  # exits: its connection closes and its parked request is abandoned
                c.alive = False
                if c.inflight is not None:
                    sim.m.abandon(c.inflight)
                    sim.route()
                else:  # nothing parked: only its session timeout tells
                    silent = True
            else:  # its next SyncGroup goes out late, maybe later than its session timeout
                c.sync_not_before = sim.clock.t + scale * session_s
        last_disruption = sim.clock.t
        sim.step()
    for c in sim.clients:  # a slow SyncGroup disrupts until it goes out; from here on every client behaves
        last_disruption = max(last_disruption, min(c.sync_not_before, sim.clock.t))
        c.sync_not_before = 0.0
    # a client that vanished silently is noticed within its session (or the rebalance timeout);
    # one that left or whose parked request was abandoned, at once
    bound = last_disruption + (session_s + rebalance_s if silent else 0) + sim.heartbeat_s + 8 * TICK
    while not sim.settled():
        assert sim.clock.t <= bound, (
            f"not settled {sim.clock.t - last_disruption:.2f} s after the last disruption "
            f"(bound {bound - last_disruption:.2f} s): {describe(sim)}")
        sim.step()
    # and it stays settled while nothing happens
    for _ in range(int(2 * session_s / TICK)):
        sim.step()
        assert sim.settled(), describe(sim)


def describe(sim: Sim) -> str:
    group = sim.m.groups.get("g")
    members = {} if group is None else {
        mid: (mem.join, mem.sync, mem.synced, mem.sync_due, mem.heartbeat_deadline) for mid, mem in group.members.items()}
    clients = [(c.name, c.alive, c.member_id[-6:], c.need, c.inflight, c.generation, c.assigned_generation)
               for c in sim.clients]
    return f"t={sim.clock.t} group={group and (group.state, group.generation, group.leader)} {members} {clients}"


def test_group_max_size_refuses_a_new_member_of_a_full_group():
    """group.max.size, as Kafka's acceptJoiningMember: a full group answers a new member's JoinGroup
    GROUP_MAX_SIZE_REACHED with no member id, before giving it one (a static member coming back
    under an unknown member id is new to it too); its members are taken."""
    from sandbox.protocol.errors import GROUP_MAX_SIZE_REACHED
    clock = Clock()
    m = GroupMachine(clock, max_size=2)
    proto = [("range", b"")]
    ids = iter(range(100, 1000))

    def join(member_id: str = "", instance_id: str | None = None, known: bool = False):
        return m.join(next(ids), "g", member_id, instance_id, "consumer", proto, 6000, 6000, "c", "h", known)

    first = join(instance_id="static-a")
    join()
    group = m.groups["g"]
    if first is None or first.error_code == 0:   # the first member rejoins, as a client does
        join(member_id=next(mid for mid, x in group.members.items() if x.instance_id == "static-a"),
             instance_id="static-a")
    for _ in range(40):   # the rebalance completes
        clock.t += 0.5
        m.tick(clock.t)
        if group.state in (COMPLETING, STABLE):
            break
    assert group.state in (COMPLETING, STABLE) and len(group.members) == 2, group.state
    # every member counts now (in PreparingRebalance only those awaiting their JoinGroup answer do)
    full = join(known=True)
    assert full is not None and full.error_code == GROUP_MAX_SIZE_REACHED and full.member_id == ""
    assert not group.pending
    assert join().error_code == GROUP_MAX_SIZE_REACHED
    assert join(instance_id="static-b").error_code == GROUP_MAX_SIZE_REACHED
    existing = next(iter(group.members))
    rejoin = join(member_id=existing)
    assert rejoin is None or rejoin.error_code != GROUP_MAX_SIZE_REACHED
    assert len(group.members) == 2


def test_the_initial_rebalance_delay_runs_in_windows_as_kafka_schedules_them():
    """Kafka's prepareRebalance from Empty and tryCompleteInitialRebalanceElseSchedule: the first
    window is the whole group.initial.rebalance.delay.ms, even past a shorter rebalance timeout
    (remaining = max(rebalance - delay, 0)); a member joining during a window earns one more of
    min(delay, remaining), until nothing remains or a window passes without a new member."""
    clock = Clock()
    t0 = clock.t
    m = GroupMachine(clock, initial_rebalance_delay_ms=3000)

    def join(request: int, group: str, rebalance_ms: int) -> None:
        assert m.join(request, group, "", None, "consumer", [("range", b"x")], 10000, rebalance_ms,
                      "c", "h", False) is None

    def state_at(t: float, group: str) -> str:
        clock.t = t0 + t
        m.tick()
        return m.groups[group].state

    join(1, "g", 300000)
    clock.t = t0 + 0.1
    join(2, "g", 300000)   # a new member in the first window: a second one follows
    assert state_at(3.0, "g") == PREPARING
    assert m.deadline(1) == t0 + 6.0
    assert state_at(5.9, "g") == PREPARING
    assert state_at(6.0, "g") == COMPLETING
    assert {r for r, _ in m.drain()} == {1, 2}
    # a rebalance timeout shorter than the delay: the delay still runs in full, and no member
    # earns another window (nothing remains)
    clock.t = t0
    join(3, "h", 1000)
    clock.t = t0 + 0.5
    join(4, "h", 1000)
    assert state_at(1.0, "h") == PREPARING
    assert state_at(2.9, "h") == PREPARING
    assert state_at(3.0, "h") == COMPLETING


def _stable_static_pair(m: GroupMachine, clock: Clock) -> tuple[str, str]:
    """Static members A and B in a Stable generation 1 (session 60 s, rebalance timeout 5 s)."""
    for r, iid in ((1, "A"), (2, "B")):
        assert m.join(r, "g", "", iid, "consumer", [("range", iid.encode())], 60000, 5000, "c", "h", True) is None
    clock.t += 1
    m.tick()
    answers = dict(m.drain())
    a, b = answers[1].member_id, answers[2].member_id
    plan = {a: b"pa", b: b"pb"}
    m.sync(3, "g", 1, a, "A", None, None, plan if answers[1].members else {})
    m.sync(4, "g", 1, b, "B", None, None, plan if answers[2].members else {})
    m.drain()
    assert m.groups["g"].state == STABLE
    return a, b


def test_a_static_member_that_does_not_rejoin_in_time_stays_in_the_group():
    """Kafka's completeClassicGroupJoin removes only the dynamic members that have not rejoined; a
    static one stays, and the leader gets its metadata with the others'."""
    clock = Clock()
    m = GroupMachine(clock, initial_rebalance_delay_ms=500)
    a, b = _stable_static_pair(m, clock)
    assert m.join(5, "g", "", None, "consumer", [("range", b"C")], 60000, 5000, "c", "h", False) is None
    assert m.join(6, "g", a, "A", "consumer", [("range", b"A")], 60000, 5000, "c", "h", True) is None
    clock.t += 3
    assert m.heartbeat("g", 1, b, "B") == REBALANCE_IN_PROGRESS   # alive, but never rejoins
    clock.t += 2
    assert m.tick() == []
    group = m.groups["g"]
    assert group.state == COMPLETING and group.generation == 2 and b in group.members
    answers = dict(m.drain())
    leader = next(res for res in answers.values() if res.members)
    assert {mid: md for mid, _, md in leader.members}[b] == b"B"


def test_the_join_phase_waits_another_rebalance_timeout_when_no_member_rejoined():
    """Kafka: when no member has rejoined (maybeElectNewJoinedLeader fails), completeClassicGroupJoin
    schedules itself again after the rebalance timeout instead of ending the join phase."""
    clock = Clock()
    m = GroupMachine(clock, initial_rebalance_delay_ms=500)
    a, b = _stable_static_pair(m, clock)
    code, _ = m.leave("g", [("", "B")])   # an admin removes B: the rest must rejoin
    assert code == NONE and m.groups["g"].state == PREPARING
    clock.t += 5
    assert m.tick() == []
    group = m.groups["g"]
    assert group.state == PREPARING and list(group.members) == [a] and group.generation == 1
    assert m.heartbeat("g", 1, a, "A") == REBALANCE_IN_PROGRESS
    assert m.join(7, "g", a, "A", "consumer", [("range", b"A")], 60000, 5000, "c", "h", True) is not None
    assert group.state == COMPLETING and group.generation == 2


def test_a_static_member_restarting_in_a_stable_group_rebalances_only_if_the_selected_protocol_changes():
    """Kafka's updateStaticMemberThenRebalanceOrCompleteJoin in Stable: the member is updated, and
    unless group.selectProtocol() changes the group stays Stable and the member gets the current
    generation: the leader (JoinGroup v9+) with every member's metadata and skipAssignment, before
    v9 with no members and the leader id from before the replacement; a changed selection rebalances."""
    clock = Clock()
    m = GroupMachine(clock, initial_rebalance_delay_ms=500)
    a, b = _stable_static_pair(m, clock)
    group = m.groups["g"]
    leader_iid = group.members[group.leader].instance_id
    follower_iid = "B" if leader_iid == "A" else "A"
    # the leader restarts with new subscription bytes (say, other owned partitions): same protocol
    res = m.join(10, "g", "", leader_iid, "consumer", [("range", b"new"), ("roundrobin", b"new")], 60000, 5000,
                 "c", "h", True)
    assert res is not None and res.error_code == NONE and group.state == STABLE and res.generation_id == 1
    assert res.leader == res.member_id and res.skip_assignment
    assert {mid: md for mid, _, md in res.members}[res.member_id] == b"new"
    # an old client (JoinGroup v8) restarting as leader: no members, the leader id from before
    old_leader = res.member_id
    res = m.join(11, "g", "", leader_iid, "consumer", [("range", b"newer"), ("roundrobin", b"newer")], 60000,
                 5000, "c", "h", True, supports_skip=False)
    assert res is not None and res.error_code == NONE and group.state == STABLE
    assert res.members == [] and res.leader == old_leader and not res.skip_assignment
    # a follower restarting with one more protocol: range is still the choice
    res = m.join(12, "g", "", follower_iid, "consumer", [("range", b"x"), ("roundrobin", b"x")], 60000, 5000,
                 "c", "h", True)
    assert res is not None and res.error_code == NONE and group.state == STABLE
    assert res.members == [] and res.leader == group.leader != res.member_id and not res.skip_assignment
    # ...then with roundrobin only: the group's choice changes, it rebalances
    res = m.join(13, "g", "", follower_iid, "consumer", [("roundrobin", b"x")], 60000, 5000, "c", "h", True)
    assert res is None and group.state == PREPARING
