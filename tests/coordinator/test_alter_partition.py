"""AlterPartition as the coordinator decides it (isr.py): only the current leader, at the
current leader and partition epochs, may change an ISR, and only to live replicas."""
from __future__ import annotations

import uuid

from sandbox.coordinator import isr
from sandbox.protocol import errors as E
from coordinator.coordinator_helpers import machine_with_brokers, run


def setup():
    m = machine_with_brokers(1, 2, 3)
    run(m, m.create_topic("r", 1, 3, None, uuid.uuid4()))
    t = m.topic("r")
    return m, t.topic_id, t.partitions[0]


def alter(m, tid, p, broker=None, new_isr=(1, 2), leader_epoch=None, partition_epoch=None):
    return isr.alter_partition(m, p.leader if broker is None else broker, tid, 0,
                               p.leader_epoch if leader_epoch is None else leader_epoch,
                               p.partition_epoch if partition_epoch is None else partition_epoch,
                               new_isr)


def test_the_leader_shrinks_and_expands_its_isr_with_the_partition_epoch():
    m, tid, p = setup()
    assert p.leader == 1 and p.isr == (1, 2, 3)
    records, code, after = alter(m, tid, p, new_isr=(1, 2))
    assert code == E.NONE and after.isr == (1, 2) and after.partition_epoch == p.partition_epoch + 1
    assert after.leader_epoch == p.leader_epoch          # an ISR change is not a new leader
    run(m, records)
    p2 = m.topic("r").partitions[0]
    records, code, after = alter(m, tid, p2, new_isr=(3, 1, 2))
    assert code == E.NONE and after.isr == (1, 2, 3)     # in replica order
    run(m, records)


def test_stale_or_foreign_changes_are_refused():
    m, tid, p = setup()
    assert alter(m, tid, p, broker=2)[1] == E.INVALID_REQUEST                # not the leader
    assert alter(m, tid, p, leader_epoch=p.leader_epoch - 1)[1] == E.FENCED_LEADER_EPOCH
    # epochs ahead of the coordinator's: Kafka's NOT_CONTROLLER (the broker asks again)
    assert alter(m, tid, p, leader_epoch=p.leader_epoch + 1)[1] == E.NOT_CONTROLLER
    assert alter(m, tid, p, partition_epoch=p.partition_epoch + 1)[1] == E.NOT_CONTROLLER
    records, code, _ = alter(m, tid, p, new_isr=(1, 2))
    run(m, records)
    # the same request again, from the partition epoch it was built on: refused
    assert alter(m, tid, p, new_isr=(1,))[1] == E.INVALID_UPDATE_VERSION
    p2 = m.topic("r").partitions[0]
    assert alter(m, tid, p2, new_isr=(2, 3))[1] == E.INVALID_REQUEST      # without the leader
    assert alter(m, tid, p2, new_isr=())[1] == E.INVALID_REQUEST
    assert alter(m, tid, p2, new_isr=(1, 7))[1] == E.INVALID_REQUEST      # not a replica
    assert alter(m, tid, p2, new_isr=(1, 2, 2))[1] == E.INVALID_REQUEST   # a replica twice
    assert alter(m, uuid.uuid4(), p2)[1] == E.UNKNOWN_TOPIC_ID


def test_a_fenced_broker_cannot_rejoin_and_a_replaced_leader_cannot_change_anything():
    m, tid, p = setup()
    run(m, m.fence_broker(3))
    p2 = m.topic("r").partitions[0]
    assert 3 not in p2.isr
    assert alter(m, tid, p2, new_isr=(1, 2, 3))[1] == E.INELIGIBLE_REPLICA
    run(m, m.fence_broker(1))                            # the leader is fenced: 2 leads
    p3 = m.topic("r").partitions[0]
    assert p3.leader == 2 and p3.leader_epoch == p2.leader_epoch + 1
    assert alter(m, tid, p2, broker=1, new_isr=(1,))[1] == E.FENCED_LEADER_EPOCH   # the replaced leader's epoch
    assert alter(m, tid, p3, new_isr=(2,))[1] == E.NONE


def test_an_expansion_built_on_a_restarted_brokers_old_incarnation_is_refused():
    """The leader adds broker 3 back on the strength of fetches by 3's old incarnation; 3 restarts
    (a new incarnation, its log shorter or gone: a journal quarantined and started empty) before
    the request lands. Accepted, the empty replica was in the ISR and could be elected cleanly when
    the leader failed, with the acknowledged records it never had (found by review; Kafka refuses
    it by the broker epochs in AlterPartition, KIP-903): a restart gives the partitions where the
    broker is out of the ISR a new partition epoch, so the request is stale."""
    m, tid, p = setup()
    records, code, _ = alter(m, tid, p, new_isr=(1, 2))   # 3 lagged and left the ISR
    run(m, records)
    before = m.topic("r").partitions[0]
    run(m, m.register_broker(3, "127.0.0.1", 9093, None, uuid.uuid4()))   # 3 restarted, same address
    after = m.topic("r").partitions[0]
    assert (after.leader, after.isr, after.leader_epoch) == (1, (1, 2), before.leader_epoch)
    assert after.partition_epoch == before.partition_epoch + 1
    assert alter(m, tid, before, new_isr=(1, 2, 3))[1] == E.INVALID_UPDATE_VERSION
    # once its new incarnation has caught up, the leader asks again at the new partition epoch
    records, code, now = alter(m, tid, after, new_isr=(1, 2, 3))
    assert code == E.NONE and now.isr == (1, 2, 3)


def test_a_broker_registering_again_as_the_same_incarnation_changes_no_partition():
    m, tid, p = setup()
    records, code, _ = alter(m, tid, p, new_isr=(1, 2))
    run(m, records)
    same = m._brokers[3]
    before = m.topic("r").partitions[0]
    run(m, m.register_broker(3, same.host, same.port, None, same.incarnation_id))
    assert m.topic("r").partitions[0].partition_epoch == before.partition_epoch
