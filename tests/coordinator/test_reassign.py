"""Partition reassignment as the coordinator decides it (reassign.py, KIP-455): a target makes the
added brokers followers; once every one of them is in the ISR the replicas become the target in
the same change, the ISR loses the removed brokers, a removed leader hands over, and the change
names the removed brokers (ReplicasRemoved) so that they, and only they, delete their copy."""
from __future__ import annotations

import uuid

from hypothesis import given, settings, strategies as st

from sandbox.coordinator import isr, reassign
from sandbox.coordinator.changes import ChangeTranslator, ReplicasRemoved, TopicChanged
from sandbox.coordinator.model import NO_LEADER, PartitionInfo
from sandbox.protocol import errors as E
from coordinator.coordinator_helpers import machine_with_brokers, run


def setup(replicas=(1,), brokers=(1, 2, 3)):
    m = machine_with_brokers(*brokers)
    run(m, m.create_topic("t", -1, -1, None, uuid.uuid4(), assignments={0: list(replicas)}))
    return m


def part(m):
    return m.topic("t").partitions[0]


def move(m, replicas):
    records, results = reassign.alter_reassignments(m, [("t", 0, replicas)])
    run(m, records)
    return results[("t", 0)][0], records


def expand(m, broker):
    """The leader puts `broker` into the ISR (it caught up)."""
    p = part(m)
    records, code, after = isr.alter_partition(m, p.leader, m.topic("t").topic_id, 0, p.leader_epoch,
                                               p.partition_epoch, p.isr + (broker,))
    assert code == E.NONE, code
    run(m, records)
    return records, after


def test_moving_a_partition_completes_once_every_new_replica_is_in_sync():
    m = setup((1,))
    code, records = move(m, [2, 3])
    p = part(m)
    assert code == E.NONE and len(records) == 1 and "removed" not in records[0]
    assert (p.replicas, p.adding, p.removing, p.isr, p.leader) == ((2, 3, 1), (2, 3), (1,), (1,), 1)
    assert reassign.ongoing(m.topics()) == {"t": [p]} and reassign.ongoing(m.topics(), {("t", 1)}) == {}
    expand(m, 2)                                   # 3 is not in sync yet: still moving
    assert part(m).reassigning and part(m).isr == (2, 1)
    records, after = expand(m, 3)
    p = part(m)
    assert after == p and not p.reassigning
    assert (p.replicas, p.isr, p.leader) == ((2, 3), (2, 3), 2)
    assert p.leader_epoch == 1                     # the leader left: a new epoch
    assert records[-1]["removed"] == [1]
    assert reassign.ongoing(m.topics()) == {}
    # what brokers are told: broker 1, and only broker 1, deletes its copy
    changes = ChangeTranslator(m.topics()).translate(records, m.topics())
    assert ReplicasRemoved("t", 0, (1,)) in changes and TopicChanged("t") in changes


def test_shrinking_to_in_sync_replicas_completes_at_once_and_a_removed_leader_hands_over():
    m = setup((1, 2, 3))
    code, records = move(m, [3, 2])
    p = part(m)
    assert code == E.NONE and not p.reassigning
    assert (p.replicas, p.isr, p.leader, p.leader_epoch) == ((3, 2), (3, 2), 3, 1)
    assert records[0]["removed"] == [1]


def test_a_reorder_keeps_the_leader_and_removes_nobody():
    m = setup((1, 2, 3))
    code, records = move(m, [3, 2, 1])
    p = part(m)
    assert code == E.NONE and (p.replicas, p.leader, p.leader_epoch) == ((3, 2, 1), 1, 0)
    assert "removed" not in records[0]
    assert move(m, [3, 2, 1]) == (E.NONE, [])     # already there: no record at all


def test_cancelling_goes_back_and_the_half_made_replicas_delete_their_copy():
    m = setup((1,))
    move(m, [1, 2])
    assert part(m).adding == (2,)
    code, records = move(m, None)
    p = part(m)
    assert code == E.NONE and (p.replicas, p.isr, p.leader) == ((1,), (1,), 1) and not p.reassigning
    assert records[0]["removed"] == [2]
    assert move(m, None)[0] == E.NO_REASSIGNMENT_IN_PROGRESS


def test_a_new_target_replaces_a_running_reassignment_from_the_replicas_before_it():
    m = setup((1,))
    move(m, [2])
    code, records = move(m, [3])
    p = part(m)
    assert code == E.NONE and (p.replicas, p.adding, p.removing) == ((3, 1), (3,), (1,))
    assert records[0]["removed"] == [2]            # 2 was being added: it is not any more


def test_a_target_replica_out_of_sync_holds_the_reassignment_until_it_catches_up():
    m = setup((1, 2, 3))
    p = part(m)
    run(m, isr.alter_partition(m, 1, m.topic("t").topic_id, 0, p.leader_epoch, p.partition_epoch, (1, 2))[0])
    code, _ = move(m, [3])
    p = part(m)
    assert code == E.NONE and (p.replicas, p.adding, p.removing) == ((3, 1, 2), (), (1, 2))
    records, after = expand(m, 3)                  # 3 caught up: done
    assert (after.replicas, after.isr, after.leader) == ((3,), (3,), 3) and not after.reassigning
    assert records[-1]["removed"] == [1, 2]


def test_fencing_and_elections_keep_a_running_reassignment():
    m = setup((1, 2))
    move(m, [2, 3])
    run(m, m.fence_broker(1))                      # the leader goes: 2 (in sync) leads
    p = part(m)
    assert p.leader == 2 and (p.adding, p.removing) == ((3,), (1,))


def test_refusals():
    m = setup((1,))
    assert move(m, [])[0] == E.INVALID_REPLICA_ASSIGNMENT
    assert move(m, [2, 2])[0] == E.INVALID_REPLICA_ASSIGNMENT
    assert move(m, [9])[0] == E.INVALID_REPLICA_ASSIGNMENT
    records, results = reassign.alter_reassignments(m, [("nope", 0, [1]), ("t", 4, [1])])
    assert records == [] and {c for c, _ in results.values()} == {E.UNKNOWN_TOPIC_OR_PARTITION}


def test_the_journal_form_round_trips_and_older_records_read_as_not_reassigning():
    p = PartitionInfo(0, (2, 3, 1), (1,), 1, 0, 4, (2, 3), (1,))
    assert PartitionInfo.from_dict(p.to_dict()) == p
    plain = PartitionInfo(0, (1,), (1,), 1, 0, 0)
    assert "adding" not in plain.to_dict() and not PartitionInfo.from_dict(plain.to_dict()).reassigning


# ---- a property: random targets, cancels, catch-ups, fences and returns -----------------------
BROKERS = (1, 2, 3, 4)
steps = st.lists(st.one_of(
    st.tuples(st.just("move"), st.lists(st.sampled_from(BROKERS), min_size=1, max_size=4, unique=True)),
    st.tuples(st.just("cancel"), st.none()),
    st.tuples(st.just("catch-up"), st.sampled_from(BROKERS)),
    st.tuples(st.just("fence"), st.sampled_from(BROKERS)),
    st.tuples(st.just("return"), st.sampled_from(BROKERS)),
), max_size=25)


@settings(max_examples=150, deadline=None)
@given(first=st.lists(st.sampled_from(BROKERS), min_size=1, max_size=3, unique=True), steps=steps)
def test_reassignment_invariants_hold_under_any_schedule(first, steps):
    m = setup(tuple(first), BROKERS)
    holders = set(first)        # brokers that hold a copy (were made replicas and not told to delete)
    fresh: set[int] = set()     # brokers made replicas that have not been in sync since
    before = part(m)
    for kind, arg in steps:
        p = part(m)
        records: list[dict] = []
        if kind == "move":
            records = reassign.alter_reassignments(m, [("t", 0, arg)])[0]
        elif kind == "cancel":
            records = reassign.alter_reassignments(m, [("t", 0, None)])[0]
        elif kind == "catch-up":
            if p.leader != NO_LEADER and arg in p.replicas and arg not in p.isr and not m.broker(arg).fenced:
                records = isr.alter_partition(m, p.leader, m.topic("t").topic_id, 0, p.leader_epoch,
                                              p.partition_epoch, p.isr + (arg,))[0]
        elif kind == "fence":
            if not m.broker(arg).fenced:
                records = m.fence_broker(arg)
        else:
            b = m.broker(arg)
            if b.fenced:
                records = m.register_broker(arg, "127.0.0.1", 9090 + arg, None, uuid.uuid4(), now_ms=0)
        run(m, records)
        for r in records:
            if r.get("type") == "partition-change":
                fresh |= set(r["replicas"]) - holders
                holders |= set(r["replicas"])
                holders -= set(r.get("removed", ()))
                fresh &= holders
                fresh -= set(r["isr"])
        p = part(m)
        # the shape
        assert len(set(p.replicas)) == len(p.replicas) and p.isr and set(p.isr) <= set(p.replicas)
        assert set(p.adding) <= set(p.replicas) and set(p.removing) <= set(p.replicas)
        assert not set(p.adding) & set(p.removing)
        assert p.leader == NO_LEADER or p.leader in p.replicas
        # epochs only go forward
        assert p.leader_epoch >= before.leader_epoch and p.partition_epoch >= before.partition_epoch
        # every replica's broker keeps its copy; a broker told to delete is no replica
        assert set(p.replicas) <= holders
        # a replica that never caught up is one being added: no reassignment completes without it
        assert fresh & set(p.replicas) <= set(p.adding)
        # the ISR grows only when the leader says a replica caught up
        if kind != "catch-up":
            assert set(p.isr) <= set(before.isr)
        before = p


def test_a_reassignment_waits_for_every_target_replica_not_only_the_added_ones():
    """Kafka's maybeCompleteReassignment asks for every target replica in the ISR: completing once
    the added ones are would delete the removed brokers' in-sync copies while a target replica that
    was out of sync still lacks records."""
    m = setup((1, 2, 3), brokers=(1, 2, 3, 4))
    p = part(m)
    run(m, isr.alter_partition(m, 1, m.topic("t").topic_id, 0, p.leader_epoch, p.partition_epoch, (1, 3))[0])
    # shrinking to [1, 2] while 2 is out of sync: 3 (in sync) keeps its copy until 2 is back
    code, records = move(m, [1, 2])
    p = part(m)
    assert code == E.NONE and p.reassigning and (p.replicas, p.isr) == ((1, 2, 3), (1, 3))
    assert "removed" not in records[0]
    records, after = expand(m, 2)
    assert not after.reassigning and (after.replicas, after.isr) == ((1, 2), (1, 2))
    assert records[-1]["removed"] == [3]


def test_moving_to_an_out_of_sync_replica_and_a_new_one_waits_for_both():
    m = setup((1, 2, 3), brokers=(1, 2, 3, 4))
    p = part(m)
    run(m, isr.alter_partition(m, 1, m.topic("t").topic_id, 0, p.leader_epoch, p.partition_epoch, (1, 3))[0])
    move(m, [2, 4])
    expand(m, 4)                                   # 4 caught up, 2 has not: 1 and 3 keep their copies
    p = part(m)
    assert p.reassigning and set(p.replicas) == {1, 2, 3, 4}
    records, after = expand(m, 2)
    assert not after.reassigning and set(after.isr) == {2, 4} and after.leader in (2, 4)
    assert sorted(records[-1]["removed"]) == [1, 3]
