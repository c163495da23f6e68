"""offsets.retention.minutes (KIP-211) on the group coordinator, with the `__consumer_offsets`
store over a fake broker state and injected clocks: a group without members loses its offsets
once the retention has passed since it was last seen with members or last committed; a settled
consumer group keeps the offsets of topics it subscribes to and loses the others by their own
commit time; rebalancing groups and offsets a transaction holds keep theirs."""

from __future__ import annotations

import asyncio

import pytest

from test_groups import Clock, join, settle, subscription, sync
from test_offsets_topic import FakeState, store_for

from sandbox.broker.groups import GroupCoordinator

RETENTION_MS = 7 * 24 * 3600 * 1000
DAY_MS = 24 * 3600 * 1000


class Wall:
    """The offsets store's wall clock (seconds), moved by the test."""

    def __init__(self) -> None:
        self.ms = 1_700_000_000_000

    def __call__(self) -> float:
        return self.ms / 1000


@pytest.fixture
def state(tmp_path):
    s = FakeState(tmp_path / "data")
    yield s
    s.logs.close()


def coordinator(state, wall):
    store = store_for(state, clock=wall)
    return GroupCoordinator(store, clock=Clock(), peers=None, wall=wall), store


def test_a_group_without_members_keeps_its_offsets_for_the_retention_after_its_last_commit(state):
    wall = Wall()
    gc, store = coordinator(state, wall)
    gc.commit_offsets("solo", -1, "", None, [("t", 0, 5, -1, ""), ("t", 1, 6, -1, "")])
    assert gc.expire_offsets(wall.ms, RETENTION_MS) == {}   # the broker has seen the group since then
    wall.ms += 3 * DAY_MS
    gc.commit_offsets("solo", -1, "", None, [("t", 0, 9, -1, "")])   # a later commit restarts the count
    wall.ms += RETENTION_MS - 1
    assert gc.expire_offsets(wall.ms, RETENTION_MS) == {}
    assert gc.fetch_offsets("solo", None) == {("t", 0): (9, -1, ""), ("t", 1): (6, -1, "")}
    wall.ms += 1
    assert gc.expire_offsets(wall.ms, RETENTION_MS) == {"solo": 2}
    assert gc.fetch_offsets("solo", None) == {} and "solo" not in store.groups()
    # tombstones: the next leader of the partition reads none back
    assert store_for(state, clock=wall).group_offsets("solo") == {}


def test_a_group_this_broker_never_saw_counts_from_when_it_first_sees_it(state):
    """After a restart (or on taking over the group's partition) the broker does not know when a
    group last had members: Kafka would know, so the count starts at first sight, never sooner."""
    wall = Wall()
    before, _ = coordinator(state, wall)
    before.commit_offsets("old", -1, "", None, [("t", 0, 5, -1, "")])
    wall.ms += 30 * DAY_MS   # the stack was stopped for a month
    gc, store = coordinator(state, wall)   # a new broker process reads the offsets back
    assert store.get("old", "t", 0).offset == 5
    assert gc.expire_offsets(wall.ms, RETENTION_MS) == {}
    wall.ms += RETENTION_MS - 1
    assert gc.expire_offsets(wall.ms, RETENTION_MS) == {}
    wall.ms += 1
    assert gc.expire_offsets(wall.ms, RETENTION_MS) == {"old": 1}


def test_a_group_whose_coordinator_moved_away_and_back_counts_afresh(state):
    """While another broker led its partition the group may have had members: what this broker saw
    before is stale."""
    from sandbox.broker.offsets_records import partition_for

    wall = Wall()
    gc, store = coordinator(state, wall)
    state.groups = gc
    gc.commit_offsets("g", -1, "", None, [("t", 0, 5, -1, "")])
    assert gc.expire_offsets(wall.ms, RETENTION_MS) == {}   # seen here
    index = partition_for("g", 4)
    state.lead([i for i in range(4) if i != index], epoch=1)
    store.on_metadata()
    wall.ms += 8 * DAY_MS
    state.lead(range(4), epoch=2)
    store.on_metadata()
    assert gc.expire_offsets(wall.ms, RETENTION_MS) == {}   # first seen again only now
    wall.ms += RETENTION_MS
    assert gc.expire_offsets(wall.ms, RETENTION_MS) == {"g": 1}


def test_a_settled_group_loses_only_the_offsets_of_topics_it_no_longer_reads(state):
    wall = Wall()
    gc, store = coordinator(state, wall)

    async def main():
        r = await join(gc, group="live", protocols=[("range", subscription("t"))])
        await sync(gc, 1, r.member_id, {}, group="live")
        assert all(c == 0 for _t, _p, c in gc.commit_offsets(
            "live", 1, r.member_id, None, [("t", 0, 1, -1, ""), ("u", 0, 2, -1, "")]))
        wall.ms += RETENTION_MS
        assert gc.expire_offsets(wall.ms, RETENTION_MS) == {"live": 1}
        assert gc.fetch_offsets("live", None) == {("t", 0): (1, -1, "")}   # still subscribed to t
        # the member leaves an hour later: the group counts from that moment, not from its commits
        # nor from the last sweep
        wall.ms += 3600_000
        gc.leave_group("live", [(r.member_id, None)])
        await settle()
        wall.ms += RETENTION_MS - 1
        assert gc.expire_offsets(wall.ms, RETENTION_MS) == {}
        wall.ms += 1
        assert gc.expire_offsets(wall.ms, RETENTION_MS) == {"live": 1}
        assert gc.describe_group("live").state == "Dead"

    asyncio.run(main())


def test_a_rebalancing_group_and_an_unreadable_subscription_keep_every_offset(state):
    wall = Wall()
    gc, store = coordinator(state, wall)

    async def main():
        r = await join(gc, group="odd", protocols=[("range", b"\x00")])
        await sync(gc, 1, r.member_id, {}, group="odd")
        gc.commit_offsets("odd", 1, r.member_id, None, [("u", 0, 2, -1, "")])
        gc.commit_offsets("busy", -1, "", None, [("u", 0, 3, -1, "")])
        joined = await join(gc, group="busy", protocols=[("range", subscription("t"))])
        assert gc.describe_group("busy").state == "CompletingRebalance", joined   # no SyncGroup yet
        wall.ms += 10 * RETENTION_MS
        assert gc.expire_offsets(wall.ms, RETENTION_MS) == {}
        assert gc.fetch_offsets("odd", None) and gc.fetch_offsets("busy", None)

    asyncio.run(main())


def test_offsets_a_transaction_holds_stay(state):
    wall = Wall()
    gc, store = coordinator(state, wall)
    gc.commit_offsets("g", -1, "", None, [("t", 0, 1, -1, ""), ("t", 1, 1, -1, "")])
    store.commit_txn("g", 7, 0, [("t", 1, 5, -1, "")])   # still open
    assert gc.expire_offsets(wall.ms, RETENTION_MS) == {}
    wall.ms += RETENTION_MS
    assert gc.expire_offsets(wall.ms, RETENTION_MS) == {"g": 1}
    assert gc.fetch_offsets("g", None) == {("t", 1): (1, -1, "")} and store.txn_pending("g", "t", 1)
