"""ElectLeaders and the auto leader rebalance as the coordinator decides them (elections.py):
preferred leaders come back only where alive and in sync; unclean elections only for leaderless
partitions; KRaft's rule picks which partitions move (each one off its live, in-sync preferred replica)."""
from __future__ import annotations

import uuid

from sandbox.coordinator import elections
from sandbox.protocol import errors as E
from coordinator.coordinator_helpers import machine_with_brokers, run


def setup(partitions=1):
    m = machine_with_brokers(1, 2, 3)
    run(m, m.create_topic("r", partitions, 3, None, uuid.uuid4()))
    return m


def part(m, i=0):
    return m.topic("r").partitions[i]


def fail_over(m, broker):
    """The broker is fenced (its leaderships move), then comes back unfenced and in sync."""
    epoch = m.broker(broker).epoch
    run(m, m.fence_broker(broker))
    run(m, m.broker_heartbeat(broker, epoch, 0))
    return epoch


def test_the_preferred_leader_comes_back_only_when_alive_and_in_sync():
    m = setup()
    p = part(m)
    preferred = p.replicas[0]
    run(m, m.fence_broker(preferred))
    moved = part(m)
    assert moved.leader != preferred and preferred not in moved.isr
    records, out = elections.elect_leaders(m, elections.PREFERRED, [("r", 0)])
    assert out[("r", 0)][0] == E.PREFERRED_LEADER_NOT_AVAILABLE and not records   # fenced (Kafka: 80, not 83)
    run(m, m.broker_heartbeat(preferred, m.broker(preferred).epoch, 0))
    records, out = elections.elect_leaders(m, elections.PREFERRED, [("r", 0)])
    assert out[("r", 0)][0] == E.PREFERRED_LEADER_NOT_AVAILABLE   # alive but not in sync yet
    ls = part(m)
    run(m, [{"type": "partition-change", "topic_id": str(m.topic("r").topic_id), "index": 0,
             "replicas": list(ls.replicas), "isr": list(ls.replicas), "leader": ls.leader,
             "leader_epoch": ls.leader_epoch, "partition_epoch": ls.partition_epoch + 1}])
    records, out = elections.elect_leaders(m, elections.PREFERRED, [("r", 0), ("r", 5), ("nope", 0)])
    assert out == {("r", 0): (E.NONE, None),
                   ("r", 5): (E.UNKNOWN_TOPIC_OR_PARTITION, "The partition does not exist."),
                   ("nope", 0): (E.UNKNOWN_TOPIC_OR_PARTITION, "The partition does not exist.")}
    run(m, records)
    back = part(m)
    assert back.leader == preferred and back.leader_epoch == ls.leader_epoch + 1
    assert elections.elect_leaders(m, elections.PREFERRED, [("r", 0)])[1][("r", 0)][0] == E.ELECTION_NOT_NEEDED


def test_unclean_election_only_for_a_leaderless_partition():
    m = setup()
    assert elections.elect_leaders(m, elections.UNCLEAN, [("r", 0)])[1][("r", 0)][0] == E.ELECTION_NOT_NEEDED
    for b in (1, 2, 3):
        run(m, m.fence_broker(b))
    p = part(m)
    assert p.leader == -1 and len(p.isr) == 1        # the last leader stays the ISR (never emptied)
    last = p.isr[0]
    other = next(b for b in (1, 2, 3) if b != last)
    run(m, m.broker_heartbeat(other, m.broker(other).epoch, 0))
    p = part(m)
    assert p.leader == -1                            # clean election only: the ISR member is down
    records, out = elections.elect_leaders(m, elections.UNCLEAN, [("r", 0)])
    assert out[("r", 0)] == (E.NONE, None)
    run(m, records)
    p = part(m)
    assert p.leader == other and p.isr == (other,)


def test_every_partition_off_its_live_in_sync_preferred_leader_is_imbalanced():
    """KRaft's rule: one partition led elsewhere is enough (the ZooKeeper-era percentage kept a
    broker preferred by 20 partitions from getting 1 of them back, for good)."""
    m = setup(partitions=3)                          # placement spreads preferred leaders 1, 2, 3
    prefs = {i: part(m, i).replicas[0] for i in range(3)}
    victim = prefs[0]
    fail_over(m, victim)
    for i in range(3):                               # everyone in sync again
        p = part(m, i)
        run(m, [{"type": "partition-change", "topic_id": str(m.topic("r").topic_id), "index": i,
                 "replicas": list(p.replicas), "isr": list(p.replicas), "leader": p.leader,
                 "leader_epoch": p.leader_epoch, "partition_epoch": p.partition_epoch + 1}])
    assert part(m, 0).leader != victim
    assert elections.imbalanced(m) == [("r", 0)]
    run(m, m.fence_broker(victim))                   # its preferred replica away: nothing to do
    assert elections.imbalanced(m) == []


def _last_isr_member_fails(configs):
    from sandbox.coordinator import isr
    m = machine_with_brokers(1, 2, 3)
    run(m, m.create_topic("t", 1, 3, configs, uuid.uuid4()))
    t = m.topic("t")
    p = t.partitions[0]
    records, code, _ = isr.alter_partition(m, p.leader, t.topic_id, 0, p.leader_epoch, p.partition_epoch, [p.leader])
    assert code == E.NONE
    run(m, records)
    run(m, m.fence_broker(p.leader))
    return p, m.topic("t").partitions[0], m


def test_a_topic_taking_unclean_elections_gets_a_live_replica_as_leader_when_its_last_isr_member_fails():
    """unclean.leader.election.enable=true: the last in-sync replica fenced while other replicas
    are alive elects one of them at once, as Kafka's controller does at the fence (found by
    review: it stayed leaderless until some replica registered or was unfenced again)."""
    before, after, _m = _last_isr_member_fails({"unclean.leader.election.enable": "true"})
    first_live = next(r for r in before.replicas if r != before.leader)
    assert (after.leader, after.isr, after.leader_epoch) == (first_live, (first_live,), before.leader_epoch + 1)
    # without it the partition waits for its in-sync replica (clean elections only)
    before, after, _m = _last_isr_member_fails(None)
    assert after.leader == -1 and after.isr == (before.leader,)


def test_turning_unclean_elections_on_elects_a_live_replica_for_a_leaderless_partition_at_once():
    """The recovery Kafka's docs teach for a partition whose in-sync replicas are all gone:
    set unclean.leader.election.enable=true on the topic. The change itself elects a live
    replica (found by review: it elected nobody until some broker registered or was unfenced);
    partitions that have a leader keep it, and setting it while already on changes nothing."""
    before, after, m = _last_isr_member_fails(None)
    assert after.leader == -1
    m_topic = "t"
    records = m.alter_configs(m_topic, {"unclean.leader.election.enable": "true"}, None, True)
    first_live = next(r for r in before.replicas if r != before.leader)
    assert [r["type"] for r in records] == ["config", "partition-change"]
    run(m, records)
    p = m.topic(m_topic).partitions[0]
    assert (p.leader, p.isr, p.leader_epoch) == (first_live, (first_live,), after.leader_epoch + 1)
    assert m.topic(m_topic).configs["unclean.leader.election.enable"] == "true"
    again = m.alter_configs(m_topic, {"unclean.leader.election.enable": "true", "retention.ms": "5000"}, None, True)
    assert [r["type"] for r in again] == ["config"]
    # turning it off, or another config, elects nobody
    m2 = machine_with_brokers(1, 2, 3)
    run(m2, m2.create_topic("u", 1, 3, None, uuid.uuid4()))
    assert [r["type"] for r in m2.alter_configs("u", {"retention.ms": "5000"}, None, True)] == ["config"]


def test_a_topic_of_more_partitions_than_a_sandbox_serves_is_refused():
    """Found by review: `topics create --partitions 100000` (a typo away from 1000) stalled the
    coordinator until the supervisor replaced it, over and over; 3000000000 was a traceback."""
    import pytest
    from sandbox.coordinator.model import CoordinatorError

    m = machine_with_brokers(1)
    for make in (lambda: m.create_topic("big", 10_001, 1, None, uuid.uuid4()),
                 lambda: m.create_topic("big", -1, -1, None, uuid.uuid4(), assignments=[[1]] * 10_001)):
        with pytest.raises(CoordinatorError) as e:
            make()
        assert e.value.error_code == E.INVALID_PARTITIONS and "use 10000 or fewer" in str(e.value)
    run(m, m.create_topic("ok", 3, 1, None, uuid.uuid4()))
    with pytest.raises(CoordinatorError) as e:
        m.create_partitions("ok", 20_000)
    assert e.value.error_code == E.INVALID_PARTITIONS


def test_one_partition_off_among_twenty_preferring_the_same_broker_goes_back():
    m = machine_with_brokers(1, 2, 3)
    run(m, m.create_topic("w", -1, -1, None, uuid.uuid4(), assignments={i: [1, 2, 3] for i in range(20)}))
    t = m.topic("w")
    p = t.partitions[0]
    run(m, [{"type": "partition-change", "topic_id": str(t.topic_id), "index": 0, "replicas": list(p.replicas),
             "isr": list(p.isr), "leader": 2, "leader_epoch": p.leader_epoch + 1,
             "partition_epoch": p.partition_epoch + 1}])
    assert m.topic("w").partitions[0].leader == 2
    assert elections.imbalanced(m) == [("w", 0)]      # 1 of 20 is 5%: the old rule never moved it
