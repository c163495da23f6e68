"""acks=all answers after the partition moved: a Produce appended by this broker while it led,
whose wait for the ISR starts only after leadership moved (server.Connection starts a pipelined
Produce's wait when the one ahead of it is answered), is answered NOT_LEADER_OR_FOLLOWER, never
as written: the new leader may not have it. Found by a reassignment test under CPU load:
librdkafka took the success of the second request as acknowledging the failed first one too, and
both batches were lost (its next batch then met OUT_OF_ORDER_SEQUENCE_NUMBER on the new leader)."""

from __future__ import annotations

import asyncio

from test_handlers_inprocess import broker  # noqa: F401  (the fixture)
from sandbox.broker.handlers import REGISTRY
from sandbox.broker.config import DEFAULT_LISTENER
from sandbox.broker.replication.leader import LeaderState
from sandbox.protocol import decode_response
from sandbox.protocol import errors as E
from sandbox.protocol.records import encode_batch

KEY = ("t", 0)


def _replicated(b) -> tuple:
    """Partition t-0 led here in epoch 0 with a follower (broker 2) that has nothing yet."""
    b.create_topic("t", 1)
    state = b.owner
    plog = state.partitions[KEY]
    me = state.node_id
    plog.replica.set_replicated(True)
    state.replicas.leading[KEY] = LeaderState(me, (me, 2), (me, 2), 0, 0, 0, plog.high_watermark)
    state.leaders[KEY] = (me, 0)
    return state, plog


def _produce(b, corr: int, value: bytes):
    frame = b.frame(0, 9, {"transactional_id": None, "acks": -1, "timeout": 5000, "topic_data": [
        {"name": "t", "partition_data": [{"index": 0, "records": encode_batch(0, [value])}]}]}, corr)
    return REGISTRY.dispatch(frame, b.owner, "peer", DEFAULT_LISTENER)


def _code(out, corr: int) -> int:
    got, resp = decode_response(bytes(out)[4:], 0, 9)
    assert got == corr
    return int(resp.responses[0].partition_responses[0].error_code)


def test_writes_waiting_or_not_yet_waiting_when_the_partition_moves_are_not_acknowledged(broker):
    b = broker
    state, plog = _replicated(b)
    first, second = _produce(b, 1, b"a"), _produce(b, 2, b"b")   # both appended, neither on the ISR
    assert asyncio.iscoroutine(first) and asyncio.iscoroutine(second)
    assert plog.log_end_offset == 2
    waiting = b.loop.create_task(first)
    b.loop.run_until_complete(asyncio.sleep(0))   # the first waits for the ISR, the second not yet
    state.leaders[KEY] = (2, 1)                    # the partition moved to broker 2 in epoch 1
    state.replicas._drop(KEY, E.NOT_LEADER_OR_FOLLOWER)
    assert _code(b.loop.run_until_complete(waiting), 1) == E.NOT_LEADER_OR_FOLLOWER
    assert _code(b.loop.run_until_complete(second), 2) == E.NOT_LEADER_OR_FOLLOWER


def test_a_write_of_an_earlier_leader_epoch_is_not_acknowledged_by_a_later_leadership(broker):
    """Led here again, in a later epoch (the partition left and came back): offsets written in
    the earlier epoch may have been truncated and written again by another leader."""
    b = broker
    state, plog = _replicated(b)
    second = _produce(b, 2, b"b")
    me = state.node_id
    state.replicas._drop(KEY, E.NOT_LEADER_OR_FOLLOWER)
    state.leaders[KEY] = (me, 2)
    state.replicas.leading[KEY] = ls = LeaderState(me, (me, 2), (me, 2), 2, 3, 0, plog.high_watermark)
    ls.followers[2].leo = plog.log_end_offset      # the follower has the offset: the HW passes it
    state.replicas._advance(KEY, ls, plog)
    assert plog.high_watermark == plog.log_end_offset
    assert _code(b.loop.run_until_complete(second), 2) == E.NOT_LEADER_OR_FOLLOWER
    # a write of this epoch, once the ISR has it, is acknowledged
    third = _produce(b, 3, b"c")
    ls.followers[2].leo = plog.log_end_offset
    state.replicas._advance(KEY, ls, plog)
    out = b.loop.run_until_complete(third) if asyncio.iscoroutine(third) else third
    assert _code(out, 3) == E.NONE


def test_an_unreplicated_partition_led_here_is_acknowledged_at_once(broker):
    b = broker
    b.create_topic("t", 1)
    assert b.owner.replicas.acked(KEY, 0) == E.NONE
    b.owner.leaders[KEY] = (99, 1)
    assert b.owner.replicas.acked(KEY, 0) == E.NOT_LEADER_OR_FOLLOWER


def test_a_write_waiting_when_the_replicas_shrink_to_this_leader_is_acknowledged(broker):
    """A reassignment leaves this leader as the only replica, same epoch: the waiting write is on
    the only replica, so it is acknowledged, as a write checked a moment later would be."""
    import dataclasses
    b = broker
    state, plog = _replicated(b)
    first = b.loop.create_task(_produce(b, 1, b"a"))
    b.loop.run_until_complete(asyncio.sleep(0))
    me = state.node_id
    t = state.coordinator.topic("t")
    alone = dataclasses.replace(t.partitions[0], replicas=(me,), isr=(me,), leader=me, leader_epoch=0)
    state.replicas.on_metadata([dataclasses.replace(t, partitions=[alone])])
    assert _code(b.loop.run_until_complete(first), 1) == E.NONE


def test_a_partition_with_one_replica_is_settled_as_unreplicated_by_the_first_metadata(broker):
    """So a log opened later (lazily) without a checkpointed high watermark, then reassigned to
    more replicas, keeps its log end as its high watermark instead of going back to its log start."""
    b = broker
    b.create_topic("t", 1)
    plog = b.owner.partitions[KEY]
    plog.__dict__.pop("hw_follows_leo", None)        # as a log just opened from disk
    b.owner.replicas.on_metadata([b.owner.coordinator.topic("t")])
    assert plog.__dict__.get("hw_follows_leo") is True
