"""Broker registration, heartbeats, session-timeout fencing and leader movement."""
from __future__ import annotations

import uuid

import pytest

from sandbox.coordinator import CoordinatorError
from sandbox.protocol import errors as E


def test_register_returns_increasing_epochs(make_coordinator):
    c = make_coordinator()
    e1 = c.register_broker(1, "127.0.0.1", 9092)
    e2 = c.register_broker(2, "127.0.0.1", 9093, rack="r1")
    assert e2 > e1
    b = {b.broker_id: b for b in c.brokers()}
    assert b[2].rack == "r1" and b[2].port == 9093 and not b[2].fenced
    assert b[1].epoch == e1


def test_heartbeat_errors(make_coordinator):
    c = make_coordinator()
    epoch = c.register_broker(1, "h", 9092)
    with pytest.raises(CoordinatorError) as info:
        c.heartbeat(2, 0)
    assert info.value.error_code == E.BROKER_ID_NOT_REGISTERED
    with pytest.raises(CoordinatorError) as info:
        c.heartbeat(1, epoch + 5)
    assert info.value.error_code == E.STALE_BROKER_EPOCH
    assert c.heartbeat(1, epoch) is False


def test_duplicate_registration_while_session_is_live(make_coordinator, clock):
    c = make_coordinator(session_timeout_ms=9000)
    inc = uuid.uuid4()
    c.register_broker(1, "h", 9092, incarnation_id=inc)
    with pytest.raises(CoordinatorError) as info:  # another address while the session lives
        c.register_broker(1, "h", 9093, incarnation_id=uuid.uuid4())
    assert info.value.error_code == E.DUPLICATE_BROKER_REGISTRATION
    c.register_broker(1, "h", 9092, incarnation_id=inc)  # a retry of the same incarnation is fine
    # a restarted broker on the same endpoint replaces its dead incarnation at once
    restarted = uuid.uuid4()
    c.register_broker(1, "h", 9092, incarnation_id=restarted)
    assert c.broker(1).incarnation_id == restarted and not c.broker(1).fenced
    clock.advance(10)
    c.register_broker(1, "h", 9099, incarnation_id=uuid.uuid4())  # session expired: accepted
    assert c.broker(1).port == 9099 and not c.broker(1).fenced


def three_brokers(c, clock):
    epochs = {b: c.register_broker(b, "127.0.0.1", 9090 + b) for b in (1, 2, 3)}
    return epochs


def test_fencing_moves_leadership_within_isr(make_coordinator, clock):
    c = make_coordinator(session_timeout_ms=9000)
    epochs = three_brokers(c, clock)
    before = c.create_topic("t", 3, 3)
    clock.advance(5)
    c.heartbeat(2, epochs[2])
    c.heartbeat(3, epochs[3])
    clock.advance(5)  # broker 1 silent for 10 s
    assert c.tick() == [1]
    assert c.broker(1).fenced
    after = c.topic("t")
    for old, new in zip(before.partitions, after.partitions):
        assert 1 not in new.isr and new.leader in (2, 3)
        assert new.partition_epoch == old.partition_epoch + 1
        if old.leader == 1:
            assert new.leader_epoch == old.leader_epoch + 1
            assert new.leader == next(r for r in old.replicas if r != 1)
        else:
            assert (new.leader, new.leader_epoch) == (old.leader, old.leader_epoch)


def test_fencing_single_replica_leaves_partition_leaderless_and_return_restores(
        make_coordinator, clock):
    c = make_coordinator(session_timeout_ms=9000)
    epochs = three_brokers(c, clock)
    t = c.create_topic("t", 3, 1)
    led_by_1 = [p.index for p in t.partitions if p.leader == 1]
    assert len(led_by_1) == 1
    clock.advance(6)
    c.heartbeat(2, epochs[2]); c.heartbeat(3, epochs[3])
    clock.advance(6)
    c.tick()
    t2 = c.topic("t")
    for p in t2.partitions:
        if p.index in led_by_1:
            assert p.leader == -1 and p.isr == (1,) and p.leader_epoch == 1
        else:
            assert p.leader != -1
    # fenced brokers are not used for new placements
    assert all(1 not in p.replicas for p in c.create_topic("u", 4, 2).partitions)
    # re-registration with a new incarnation brings the leadership back
    new_epoch = c.register_broker(1, "127.0.0.1", 9091, incarnation_id=uuid.uuid4())
    assert new_epoch > epochs[1]
    t3 = c.topic("t")
    for i in led_by_1:
        assert t3.partitions[i].leader == 1 and t3.partitions[i].leader_epoch == 2


def test_heartbeat_unfences_and_restores_leadership(make_coordinator, clock):
    c = make_coordinator(session_timeout_ms=1000)
    epoch = c.register_broker(1, "h", 9092)
    c.create_topic("t", 2, 1)
    clock.advance(2)
    assert c.tick() == [1]
    assert [p.leader for p in c.topic("t").partitions] == [-1, -1]
    assert c.heartbeat(1, epoch) is False
    assert [p.leader for p in c.topic("t").partitions] == [1, 1]
    assert [p.leader_epoch for p in c.topic("t").partitions] == [2, 2]


def test_unclean_election_only_when_enabled(make_coordinator, clock):
    c = make_coordinator(session_timeout_ms=1000)
    e = {b: c.register_broker(b, "h", 9090 + b) for b in (1, 2)}
    c.create_topic("clean", assignments=[[1, 2]])
    c.create_topic("dirty", assignments=[[1, 2]],
                   configs={"unclean.leader.election.enable": "true"})
    clock.advance(0.8)
    c.heartbeat(1, e[1])
    clock.advance(0.5)
    assert c.tick() == [2]  # isr shrinks to [1]
    clock.advance(0.8)
    assert c.tick() == [1]  # last isr member: leaderless, isr kept
    c.heartbeat(2, e[2])
    assert c.topic("clean").partitions[0].leader == -1
    dirty = c.topic("dirty").partitions[0]
    assert (dirty.leader, dirty.isr) == (2, (2,))


def test_controlled_shutdown_fences_at_once(make_coordinator):
    c = make_coordinator()
    epoch = c.register_broker(1, "h", 9092)
    c.create_topic("t", 1, 1)
    c.unregister_broker(1, epoch)
    assert c.broker(1).fenced and c.topic("t").partitions[0].leader == -1
    with pytest.raises(CoordinatorError) as info:
        c.create_topic("u", 1, 1)
    assert info.value.error_code == E.INVALID_REPLICATION_FACTOR


def test_restored_brokers_get_a_fresh_session_then_expire(make_coordinator, clock, tmp_path):
    c = make_coordinator(session_timeout_ms=9000)
    c.register_broker(1, "h", 9092)
    c.close()
    clock.advance(60)  # downtime does not count against the broker
    c = make_coordinator(session_timeout_ms=9000)
    assert not c.broker(1).fenced
    # a new incarnation after a restart is accepted (no live session in this process)
    epoch = c.register_broker(1, "h", 9092, incarnation_id=uuid.uuid4())
    clock.advance(5)
    assert c.tick() == [] and c.heartbeat(1, epoch) is False
    clock.advance(10)
    assert c.tick() == [1]


def test_a_stall_noticed_by_a_heartbeat_is_said_in_the_log(make_coordinator, clock, caplog):
    """Whatever wakes first after a sleep (the server's timer or a broker's heartbeat) notices the
    stall; the log must say so either way (the server's timer used to be the only one that did,
    so a heartbeat that came first left the user no word of why nobody was fenced)."""
    import logging

    c = make_coordinator(session_timeout_ms=9000, stalled_after_ms=9000)
    epochs = three_brokers(c, clock)
    clock.advance(30)
    with caplog.at_level(logging.WARNING, logger="sandbox.coordinator"):
        assert c.heartbeat(1, epochs[1]) is False
        assert c.tick() == []
    said = [r.getMessage() for r in caplog.records if "did not run for longer than a session" in r.getMessage()]
    assert c.stalls == 1 and len(said) == 1, caplog.text


def test_a_coordinator_that_stood_still_restarts_sessions_instead_of_fencing_everyone(make_coordinator, clock):
    """A laptop that slept (or a paused coordinator): when the coordinator's own periodic tick
    comes more than a session late, its brokers' silence says nothing about them. Fencing them
    all took every partition offline and moved all leadership to whichever broker heartbeated
    first; now their sessions start again, and a broker that stays silent is fenced one session
    later."""
    c = make_coordinator(session_timeout_ms=9000, stalled_after_ms=9000)   # as the server makes it
    epochs = three_brokers(c, clock)
    before = c.create_topic("t", 3, 3)

    def second(silent=()):
        clock.advance(1)
        for b, e in epochs.items():
            if b not in silent:
                c.heartbeat(b, e)
        return c.tick()

    assert [second() for _ in range(3)] == [[], [], []]
    clock.advance(60)   # the machine slept a minute: nobody ran, nobody heartbeated
    # what wakes first may be a heartbeat (it ticks too): no fencing either way
    assert c.heartbeat(2, epochs[2]) is False and c.stalls == 1
    assert c.tick() == []
    assert not any(c.broker(b).fenced for b in epochs)
    assert [(p.leader, p.leader_epoch, p.isr) for p in c.topic("t").partitions] == \
        [(p.leader, p.leader_epoch, p.isr) for p in before.partitions]
    # sessions run again from the wake-up: broker 1, still silent, is fenced a session later
    fenced = []
    for _ in range(10):
        second(silent={1})
        fenced.append(c.broker(1).fenced)
    assert fenced[:8] == [False] * 8 and fenced[-1], fenced
    assert c.stalls == 1 and not c.broker(2).fenced and not c.broker(3).fenced
    # a wall clock set back an hour: sessions restart too, so a broker that then dies is fenced
    # a session later, not once the clock has caught up with its last heartbeat
    clock.advance(-3600)
    assert c.tick() == [] and c.stalls == 2
    fenced = []
    for _ in range(10):
        clock.advance(1)
        c.heartbeat(3, epochs[3])
        c.tick()
        fenced.append(c.broker(2).fenced)
    assert fenced[:8] == [False] * 8 and fenced[-1], fenced
    # without the rule (stalled_after_ms None) the same jump fences everyone, as it used to
    c.stalled_after_ms = None
    clock.advance(60)
    assert sorted(c.tick()) == [3]
