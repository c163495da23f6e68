"""Two Produce requests of one idempotent producer in flight across a leadership change: the first
refused (this broker did not lead the partition at that moment), the second arriving once it leads
again. Found by the fault campaign (seed 1 x 11 under load, a destroyed coordinator journal put
back): the second was answered OUT_OF_ORDER_SEQUENCE_NUMBER, librdkafka took it for lost data and
bumped its producer epoch, and records of other partitions that were written but not yet answered
were sent again under new sequences: 5-10 duplicates. Answered in-process."""

from __future__ import annotations

from test_handlers_inprocess import broker  # noqa: F401  (the fixture)
from sandbox.log.batch import build_batch
from sandbox.protocol import errors as E

PID = 4242


def send(b, first_seq: int, count: int = 2, epoch: int = 0):
    batch = build_batch([(None, f"v{first_seq + i}".encode()) for i in range(count)],
                        producer_id=PID, producer_epoch=epoch, base_sequence=first_seq)
    resp = b.call(0, 9, {"transactional_id": None, "acks": -1, "timeout": 5000, "topic_data": [
        {"name": "t", "partition_data": [{"index": 0, "records": batch}]}]})
    return resp.responses[0].partition_responses[0]


def lead(b, here: bool) -> None:
    state = b.owner
    _, epoch, *rest = state.leaders[("t", 0)]
    state.leaders[("t", 0)] = (state.node_id if here else state.node_id + 1, epoch, *rest)


def test_a_batch_behind_one_refused_here_is_refused_too_until_the_first_is_sent_again(broker):
    broker.create_topic("t", 1)
    assert int(send(broker, 0).error_code) == E.NONE                          # sequences 0-1
    lead(broker, False)
    assert int(send(broker, 2).error_code) == E.NOT_LEADER_OR_FOLLOWER         # A: 2-3, refused
    lead(broker, True)
    behind = send(broker, 4)                                                   # B, in flight behind A
    assert int(behind.error_code) == E.NOT_LEADER_OR_FOLLOWER, behind          # not OUT_OF_ORDER
    assert int(send(broker, 2).error_code) == E.NONE                           # A again, then B
    b = send(broker, 4)
    assert int(b.error_code) == E.NONE and b.base_offset == 4
    assert broker.owner.partitions[("t", 0)].log_end_offset == 6
    # the same race again later: the batch refused this time (6-7) is the gap, not the first (2-3)
    lead(broker, False)
    assert int(send(broker, 6).error_code) == E.NOT_LEADER_OR_FOLLOWER
    lead(broker, True)
    assert int(send(broker, 8).error_code) == E.NOT_LEADER_OR_FOLLOWER
    assert [int(send(broker, s).error_code) for s in (6, 8)] == [E.NONE, E.NONE]
    assert broker.owner.partitions[("t", 0)].log_end_offset == 10


def test_a_gap_nobody_refused_here_is_still_out_of_order(broker):
    broker.create_topic("t", 1)
    assert int(send(broker, 0).error_code) == E.NONE
    assert int(send(broker, 4).error_code) == E.OUT_OF_ORDER_SEQUENCE_NUMBER   # 2-3 never came here
    lead(broker, False)
    assert int(send(broker, 6).error_code) == E.NOT_LEADER_OR_FOLLOWER         # refused: 6, not 2
    lead(broker, True)
    assert int(send(broker, 8).error_code) == E.OUT_OF_ORDER_SEQUENCE_NUMBER   # the gap starts at 2


def test_a_batch_behind_one_a_full_disk_refused_is_not_out_of_order(broker, monkeypatch):
    """The same race on a full disk (chaos.py --disk-full, seed 3): A refused with
    KAFKA_STORAGE_ERROR, B (in flight behind it) was answered OUT_OF_ORDER_SEQUENCE_NUMBER, and
    librdkafka bumped its epoch 126 times in a minute: 5 records written twice."""
    import errno

    from sandbox.log import segment

    broker.create_topic("t", 1)
    assert int(send(broker, 0).error_code) == E.NONE
    real = segment.Segment._write_at

    def full(self, pos, view):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(segment.Segment, "_write_at", full)
    assert int(send(broker, 2).error_code) == E.KAFKA_STORAGE_ERROR           # A: 2-3, not written
    assert int(send(broker, 4).error_code) == E.NOT_LEADER_OR_FOLLOWER        # B: retriable, no bump
    monkeypatch.setattr(segment.Segment, "_write_at", real)
    assert [int(send(broker, s).error_code) for s in (2, 4)] == [E.NONE, E.NONE]
    assert broker.owner.partitions[("t", 0)].log_end_offset == 6


def test_a_batch_written_whose_flush_failed_is_answered_as_written(broker, monkeypatch):
    """flush.messages=1 and the flush fails on a full disk after the batch is written: answered
    NONE (it is in the log and readable), and the broker says its disk is failing."""
    import dataclasses
    import errno

    from sandbox.log import segment

    broker.create_topic("t", 1)
    plog = broker.owner.partitions[("t", 0)]
    plog._config = dataclasses.replace(plog._config, flush_messages=1)

    def full(*_a, **_k):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(segment.Segment, "fsync", full)
    r = send(broker, 0)
    assert int(r.error_code) == E.NONE and r.base_offset == 0
    assert broker.owner.storage_failing
    monkeypatch.undo()
    assert int(send(broker, 2).error_code) == E.NONE and not broker.owner.storage_failing
