"""A broker that cannot open a partition's log (a file of it held by another program) reports it
in its heartbeat (KIP-858's OfflineLogDirs, one id per partition here): the coordinator takes
its replica out of the ISR and its leadership to another in-sync replica, as for a fenced broker,
and makes it eligible again once it reports the log openable."""
from __future__ import annotations

import uuid

import pytest

from sandbox.coordinator import Coordinator, elections
from sandbox.coordinator.model import NO_LEADER, offline_dir_id
from sandbox.protocol import errors as E


def _stack(make_coordinator, rf: int = 3, configs=None) -> tuple[Coordinator, dict[int, int]]:
    c = make_coordinator(session_timeout_ms=9000)
    epochs = {b: c.register_broker(b, "127.0.0.1", 9090 + b) for b in (1, 2, 3)}
    c.create_topic("events", -1, -1, configs, assignments={0: [1, 2, 3][:rf], 1: [2, 3, 1][:rf]})
    return c, epochs


def _p(c: Coordinator, index: int = 0):
    return c.topic("events").partitions[index]


def _dir(c: Coordinator, index: int = 0):
    return offline_dir_id(c.topic("events").topic_id, index)


def test_a_leader_reporting_its_log_offline_loses_leadership_and_isr_then_is_eligible_again(
        make_coordinator, clock):
    c, epochs = _stack(make_coordinator)
    before, other = _p(c), _p(c, 1)
    assert before.leader == 1 and before.isr == (1, 2, 3)
    clock.advance(0.5)
    c.heartbeat(1, epochs[1], [_dir(c)])
    after = _p(c)
    assert after.leader == 2 and after.isr == (2, 3)
    assert after.leader_epoch == before.leader_epoch + 1
    assert _p(c, 1) == other and other.isr == (2, 3, 1)   # the other partition is untouched
    assert c.broker(1).is_offline(c.topic("events").topic_id, 0) and not c.broker(1).fenced
    # the same report again changes nothing (every heartbeat tells the whole set)
    offset = c.metadata_offset
    c.heartbeat(1, epochs[1], [_dir(c)])
    assert c.metadata_offset == offset
    # not back in the ISR while offline, whatever the leader asks
    code, _ = c.alter_partition(2, c.topic("events").topic_id, 0, after.leader_epoch, after.partition_epoch,
                                [2, 3, 1])
    assert code == E.INELIGIBLE_REPLICA
    # nor made preferred leader by the auto rebalance or ElectLeaders
    assert c.rebalance_leaders() == 0
    # reported openable again (a heartbeat without it): eligible; it rejoins the ISR as any follower
    c.heartbeat(1, epochs[1])
    assert not c.broker(1).offline and _p(c).leader == 2
    p = _p(c)
    code, back = c.alter_partition(2, c.topic("events").topic_id, 0, p.leader_epoch, p.partition_epoch, [2, 3, 1])
    assert code == E.NONE and back.isr == (1, 2, 3)
    assert c.rebalance_leaders() == 1 and _p(c).leader == 1   # preferred again once in sync


def test_a_follower_reporting_its_log_offline_leaves_the_isr(make_coordinator, clock):
    c, epochs = _stack(make_coordinator)
    c.heartbeat(3, epochs[3], [_dir(c)])
    assert _p(c).leader == 1 and _p(c).isr == (1, 2) and _p(c).leader_epoch == 0


def test_the_last_isr_member_is_not_removed_and_the_partition_goes_leaderless(make_coordinator, clock):
    c, epochs = _stack(make_coordinator)
    c.unregister_broker(2)
    c.unregister_broker(3)
    assert _p(c).leader == 1 and _p(c).isr == (1,)
    c.heartbeat(1, epochs[1], [_dir(c)])
    assert _p(c).isr == (1,) and _p(c).leader == NO_LEADER
    # broker 2 comes back: not in sync, so no clean election gives it the partition
    c.heartbeat(2, epochs[2])
    assert _p(c).leader == NO_LEADER
    # unclean elections stay off by default; an unclean ElectLeaders an admin asks for picks an
    # eligible replica, never the offline one
    assert c.elect_leaders(elections.UNCLEAN, [("events", 0)])[("events", 0)][0] == E.NONE
    assert _p(c).leader == 2 and _p(c).isr == (2,)


def test_a_last_isr_member_openable_again_leads_again(make_coordinator, clock):
    c, epochs = _stack(make_coordinator)
    c.unregister_broker(2)
    c.unregister_broker(3)
    c.heartbeat(1, epochs[1], [_dir(c)])
    epoch = _p(c).leader_epoch
    c.heartbeat(1, epochs[1], [])
    assert _p(c).leader == 1 and _p(c).isr == (1,) and _p(c).leader_epoch == epoch + 1


@pytest.mark.parametrize("unclean", [False, True])
def test_unclean_election_only_where_the_topic_allows_it(tmp_path, clock, unclean):
    c = Coordinator(tmp_path / f"c{unclean}", clock=clock)
    try:
        epochs = {b: c.register_broker(b, "127.0.0.1", 9090 + b) for b in (1, 2, 3)}
        configs = {"unclean.leader.election.enable": "true"} if unclean else None
        c.create_topic("events", -1, -1, configs, assignments={0: [1, 2, 3]})
        p = _p(c)
        c.alter_partition(1, c.topic("events").topic_id, 0, p.leader_epoch, p.partition_epoch, [1])
        c.heartbeat(1, epochs[1], [_dir(c)])
        after = _p(c)
        if unclean:
            assert after.leader == 2 and after.isr == (2,)
        else:
            assert after.leader == NO_LEADER and after.isr == (1,)
    finally:
        c.close()


def test_one_replica_keeps_its_leader_and_the_report_is_journaled(tmp_path, clock):
    c = Coordinator(tmp_path / "c", clock=clock)
    epoch = c.register_broker(1, "127.0.0.1", 9091)
    c.create_topic("solo", 1, 1, None)
    tid = c.topic("solo").topic_id
    before = c.topic("solo").partitions[0]
    c.heartbeat(1, epoch, [offline_dir_id(tid, 0)])
    assert c.topic("solo").partitions[0] == before   # no other replica could lead it
    assert c.broker(1).is_offline(tid, 0)
    c.close()
    again = Coordinator(tmp_path / "c", clock=clock)   # replayed, then corrected by the next heartbeat
    try:
        assert again.broker(1).is_offline(tid, 0)
        epoch = again.register_broker(1, "127.0.0.1", 9091, incarnation_id=c.broker(1).incarnation_id)
        assert again.broker(1).is_offline(tid, 0)   # kept until the heartbeat tells again
        again.heartbeat(1, epoch)
        assert not again.broker(1).offline
    finally:
        again.close()


def test_unknown_ids_and_other_brokers_partitions_are_ignored(make_coordinator, clock):
    c, epochs = _stack(make_coordinator, rf=1)
    c.heartbeat(1, epochs[1], [uuid.uuid4(), _dir(c, 1)])   # partition 1 lives on broker 2 only
    assert not c.broker(1).offline
