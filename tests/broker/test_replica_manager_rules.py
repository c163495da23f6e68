"""ReplicaManager and ReplicaFetcher rules Kafka's Partition and AbstractFetcherThread follow, on
fake logs and a fake coordinator (the whole protocol runs for real in test_replication_sim.py
and the integration tests): a topic made anew is led afresh, an AlterPartition answer older than
the metadata is ignored, a fenced follower is not proposed into the ISR, and an answer to a fetch
asked before a leader change is dropped."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace as NS

from sandbox.broker.replication import fetcher as fetcher_mod
from sandbox.broker.replication.manager import ReplicaManager
from sandbox.coordinator.model import PartitionInfo
from sandbox.protocol.errors import (
    INELIGIBLE_REPLICA, NONE, NOT_ENOUGH_REPLICAS, NOT_LEADER_OR_FOLLOWER, UNKNOWN_LEADER_EPOCH,
)
from sandbox.protocol.fast_fetch import FetchableTopicResponse, FetchResponse, PartitionData

KEY = ("t", 0)


class Replica:
    def __init__(self, plog):
        self.p = plog

    @property
    def high_watermark(self):
        return self.p.high_watermark

    @high_watermark.setter
    def high_watermark(self, v):
        self.p.high_watermark = min(v, self.p.log_end_offset)

    def set_replicated(self, r):
        self.p.hw_follows_leo = not r

    def begin_epoch(self, e):
        pass

    def end_offset_for_epoch(self, e):
        return (e, 0)


def fake_log(leo: int, hw: int):
    p = NS(log_end_offset=leo, high_watermark=hw, log_start_offset=0, opened=True, hw_follows_leo=False)
    p.replica = Replica(p)
    return p


def fake_state(plog, alter_partition, fenced=()):
    brokers = {b: NS(broker_id=b, fenced=b in fenced) for b in (1, 2, 3)}
    coordinator = NS(alter_partition=alter_partition, lease_valid=lambda: True, brokers=lambda: list(brokers.values()),
                     broker=brokers.get)
    return NS(node_id=1, partitions={KEY: plog}, leaders={KEY: (1, 0)}, coordinator=coordinator,
              notifier=NS(notify=lambda k: None), logs=None), brokers


def topics(isr, partition_epoch, leader_epoch=0, topic_id="id", replicas=(1, 2, 3)):
    return [NS(name="t", topic_id=topic_id, configs={}, partitions=[
        NS(index=0, replicas=replicas, isr=isr, leader=1, leader_epoch=leader_epoch,
           partition_epoch=partition_epoch)])]


def test_a_topic_deleted_and_made_again_in_one_update_is_led_afresh():
    """Same name, same leader epoch 0, a new empty log: the old topic's high watermark (1000),
    ISR and partition epoch held every acks=all write of the new one until it timed out."""
    sent = []

    async def alter_partition(node, tid, idx, le, pe, isr):
        sent.append((tid, pe, tuple(isr)))
        return NONE, PartitionInfo(0, (1, 2, 3), tuple(isr), 1, le, pe + 1)

    async def main():
        state, _ = fake_state(fake_log(1000, 1000), alter_partition)
        rm = ReplicaManager(state, replica_lag_ms=1000)
        rm.on_metadata(topics((1, 2), 3, topic_id="old"))
        rm.follower_fetch(KEY, 2, 1000, 0)
        old = rm.leading[KEY]
        state.partitions[KEY] = plog = fake_log(0, 0)     # deleted and made again
        rm.on_metadata(topics((1, 2, 3), 0, topic_id="new"))
        ls = rm.leading[KEY]
        assert ls is not old and (ls.isr, ls.partition_epoch, ls.high_watermark) == ((1, 2, 3), 0, 0)
        plog.log_end_offset = 10
        rm.appended(KEY)
        for r in (2, 3):
            rm.follower_fetch(KEY, r, 10, 0)
        assert plog.high_watermark == 10
        assert await rm.wait_for_replicas(KEY, 9, 0.5, 0) == NONE
    asyncio.run(main())


def test_an_alter_partition_answer_older_than_the_metadata_is_ignored():
    """The leader asked to add 3 (committed as partition epoch 6); broker 2 was then fenced
    (epoch 7) and the metadata said so before the answer came: the answer must not put 2 back."""
    async def main():
        released = asyncio.Event()

        async def alter_partition(node, tid, idx, le, pe, isr):
            await released.wait()
            return NONE, PartitionInfo(0, (1, 2, 3), (1, 2, 3), 1, 5, 6)

        plog = fake_log(100, 100)
        # fenced: not one the high watermark waits for to rejoin (a caught-up eligible one is)
        state, _ = fake_state(plog, alter_partition, fenced={2})
        state.leaders[KEY] = (1, 5)
        rm = ReplicaManager(state, default_min_isr=1)
        rm.on_metadata(topics((1, 2), 5, leader_epoch=5))
        rm.follower_fetch(KEY, 2, 100, 5)
        rm.follower_fetch(KEY, 3, 100, 5)                  # 3 caught up: proposed
        await asyncio.sleep(0)
        rm.on_metadata(topics((1, 3), 7, leader_epoch=5))
        released.set()
        await asyncio.sleep(0.01)                          # the late answer, partition epoch 6
        ls = rm.leading[KEY]
        assert (ls.isr, ls.partition_epoch) == ((1, 3), 7)
        plog.log_end_offset = 110
        rm.appended(KEY)
        rm.follower_fetch(KEY, 3, 110, 5)                  # the ISR {1, 3} has it; 2 is gone
        assert await rm.wait_for_replicas(KEY, 109, 0.5, 5) == NONE
    asyncio.run(main())


def test_a_fenced_follower_is_not_proposed_into_the_isr_until_unfenced():
    asked = []

    async def alter_partition(node, tid, idx, le, pe, isr):
        asked.append(tuple(isr))
        return INELIGIBLE_REPLICA, PartitionInfo(0, (1, 2), (1,), 1, 4, pe)

    async def main():
        state, brokers = fake_state(fake_log(100, 100), alter_partition, fenced={2})
        state.leaders[KEY] = (1, 4)
        rm = ReplicaManager(state)
        rm.on_metadata(topics((1,), 9, leader_epoch=4, replicas=(1, 2)))
        for _ in range(20):   # a broker cut off from the coordinator, not from this one, fetches on
            rm.follower_fetch(KEY, 2, 100, 4)
            await asyncio.sleep(0)
        assert asked == []
        brokers[2].fenced = False
        rm.follower_fetch(KEY, 2, 100, 4)
        await asyncio.sleep(0)
        assert asked == [(1, 2)]
    asyncio.run(main())


def test_a_fetch_answer_asked_before_the_partition_left_and_came_back_is_not_appended():
    """Asked in epoch 5; meanwhile the partition moved to another leader and back (epoch 7, to
    be truncated first): the old epoch's records would sit on top of what epoch 7 keeps."""
    appended = []

    class Leader:
        host, port, connected = "127.0.0.1", 9, True

        def __init__(self):
            self.calls = 0

        async def call(self, encode, decode, timeout):
            self.calls += 1
            if self.calls > 1:
                await asyncio.sleep(3600)
            await released.wait()
            part = PartitionData(0, 0, 100, 100, 0, None, -1, memoryview(b"x" * 64))
            return FetchResponse(0, 0, 0, (FetchableTopicResponse("t", (part,)),))

        async def request(self, body, timeout):
            await asyncio.sleep(3600)

        def close(self):
            self.connected = False

    plog = NS(log_end_offset=100, log_start_offset=0, high_watermark=100, flush_failed=None)
    plog.replica = NS(latest_epoch=-1, high_watermark=100, append=lambda r: appended.append(len(r)))
    info = NS(broker_id=2, listeners={"PLAINTEXT": None}, address=lambda name=None: ("127.0.0.1", 9))
    state = NS(node_id=1, partitions={KEY: plog}, storage_failing=False, coordinator=NS(brokers=lambda: [info]))
    leader = Leader()
    manager = NS(state=state, closed=False, connect=lambda h, p, c: leader, emit=lambda *a: None)

    async def main():
        global released
        released = asyncio.Event()
        f = fetcher_mod.ReplicaFetcher(manager, 2)
        try:
            f.add(KEY, 5)
            await asyncio.sleep(0.05)          # no epochs to truncate by: the fetch goes out
            assert leader.calls == 1
            f.remove(KEY)
            f.add(KEY, 7)
            released.set()
            await asyncio.sleep(0.05)
            assert appended == []
        finally:
            f.stop()
    asyncio.run(main())


def test_a_fetch_as_a_follower_from_a_broker_that_is_not_a_replica_is_refused():
    """Kafka's followerReplicaOrThrow: a replica id not among the partition's replicas gets
    UNKNOWN_LEADER_EPOCH (with an epoch: a reassignment's target asks again) or
    NOT_LEADER_OR_FOLLOWER; before, it was answered NONE and read past the high watermark."""
    async def alter_partition(*a):
        raise AssertionError("nothing to change")

    async def main():
        state, _ = fake_state(fake_log(100, 90), alter_partition)
        state.leaders[KEY] = (1, 4)
        rm = ReplicaManager(state)
        rm.on_metadata(topics((1, 2), 9, leader_epoch=4, replicas=(1, 2)))
        assert rm.follower_fetch(KEY, 3, 95, 4) == UNKNOWN_LEADER_EPOCH
        assert rm.follower_fetch(KEY, 7, 95, -1) == NOT_LEADER_OR_FOLLOWER
        assert rm.follower_fetch(KEY, 2, 95, 4) == NONE
        assert rm.leading[KEY].high_watermark == 95 and 3 not in rm.leading[KEY].followers
    asyncio.run(main())


def test_acks_all_on_a_partition_led_alone_is_refused_below_min_insync_replicas():
    """Kafka's appendRecordsToLeader checks the ISR against min.insync.replicas whatever the
    replication factor: a partition reassigned down to one replica, or made with one and told
    min.insync.replicas=2, refuses acks=all (NOT_ENOUGH_REPLICAS) and takes acks=1."""
    async def alter_partition(*a):
        raise AssertionError("nothing to change")

    async def main():
        state, _ = fake_state(fake_log(10, 10), alter_partition)
        rm = ReplicaManager(state)
        one = topics((1,), 3, replicas=(1,))
        one[0].configs = {"min.insync.replicas": "2"}
        rm.on_metadata(one)
        assert not rm.replicated(KEY)
        assert rm.check_produce(KEY, -1) == NOT_ENOUGH_REPLICAS
        assert rm.check_produce(KEY, 1) == NONE and rm.check_produce(KEY, 0) == NONE
        one[0].configs = {}
        rm.on_metadata(one)
        assert rm.check_produce(KEY, -1) == NONE
        # the stack's default (this broker's, 2 with three brokers) is capped at the replication
        # factor, as the coordinator caps it for new topics: one replica and no setting of its own
        rm2 = ReplicaManager(state, default_min_isr=2)
        rm2.on_metadata(one)
        assert rm2.check_produce(KEY, -1) == NONE
        one[0].configs = {"min.insync.replicas": "2"}
        rm2.on_metadata(one)
        assert rm2.check_produce(KEY, -1) == NOT_ENOUGH_REPLICAS
    asyncio.run(main())


def test_a_leadership_change_wakes_the_partitions_long_polls():
    """Found by review: a fetch long-polling a partition whose leadership moved slept to its
    deadline (a consumer waited fetch.max.wait.ms for NOT_LEADER_OR_FOLLOWER). Kafka completes
    delayed fetches of the partitions a leader change moves. (What a woken follower's fetch
    answers, its epoch checked at every pass, is k01_fetch's; not this test's.)"""
    async def alter_partition(node, tid, idx, le, pe, isr):
        return NONE, None

    async def main():
        state, _ = fake_state(fake_log(100, 100), alter_partition)
        woken = []
        state.notifier = NS(notify=woken.append)
        rm = ReplicaManager(state, default_min_isr=1)
        rm.on_metadata(topics((1, 2, 3), 0, leader_epoch=0))
        woken.clear()
        rm.on_metadata(topics((1, 2, 3), 0, leader_epoch=1))       # a new epoch of this leader
        assert KEY in woken
        woken.clear()
        rm.on_metadata([])                                          # not led here any more
        assert KEY in woken
    asyncio.run(main())


def test_acks_all_counts_the_maximal_isr_against_min_insync_replicas():
    """As Kafka's checkEnoughReplicasReachOffset: with an expansion to {1, 2} asked for and not
    answered yet, a write both have is NONE, not NOT_ENOUGH_REPLICAS_AFTER_APPEND (review)."""
    never = asyncio.Event()

    async def alter_partition(node, tid, idx, le, pe, isr):
        await never.wait()

    async def main():
        plog = fake_log(100, 100)
        state, _ = fake_state(plog, alter_partition)
        rm = ReplicaManager(state, default_min_isr=2)
        rm.on_metadata(topics((1,), 0, replicas=(1, 2)))
        rm.follower_fetch(KEY, 2, 100, 0)                  # caught up: {1, 2} asked for
        await asyncio.sleep(0)
        ls = rm.leading[KEY]
        assert ls.isr == (1,) and ls.maximal_isr() == {1, 2}
        assert rm._acked_answer(KEY) == NONE
        rm.close()
    asyncio.run(main())


def test_the_high_watermark_waits_for_a_caught_up_follower_only_while_it_may_join():
    """Review of the hold (Kafka's shouldWaitForReplicaToJoinIsr): a follower outside the ISR that
    stops fetching holds the high watermark only for replica.lag.time.max.ms, and the periodic
    tick ends the hold even with no write after it (the last write stayed unseen by consumers);
    one whose broker reported that log offline (KIP-858) holds nothing."""
    import uuid

    async def alter_partition(*a):
        return NONE, None

    async def main():
        for offline in (False, True):
            now = [1000.0]
            plog = fake_log(100, 100)
            plog.topic_id = uuid.uuid4()
            state, brokers = fake_state(plog, alter_partition)
            brokers[2].offline = {(plog.topic_id, 0)} if offline else set()
            brokers[2].is_offline = lambda tid, idx, b=brokers[2]: (tid, idx) in b.offline
            rm = ReplicaManager(state, clock=lambda: now[0], replica_lag_ms=30000, default_min_isr=1)
            rm.on_metadata(topics((1, 2), 0, replicas=(1, 2)))
            rm.follower_fetch(KEY, 2, 100, 0)               # caught up at t=1000
            now[0] += 1
            rm.on_metadata(topics((1,), 1, replicas=(1, 2)))   # out of the ISR, not fenced
            plog.log_end_offset = 110
            rm.appended(KEY)
            if offline:
                assert plog.high_watermark == 110           # not waited for at all
                continue
            assert plog.high_watermark == 100               # waited for: it may join
            now[0] += 40                                    # it stopped fetching: past the lag
            rm.tick()
            assert plog.high_watermark == 110
        rm.close()
    asyncio.run(main())
