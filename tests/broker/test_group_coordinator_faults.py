"""The group coordinator under the faults a replicated stack meets, on the in-process broker:
a stale coordinator (its session lapsed) does not answer for its groups, a deleted topic's
offsets are removed by the coordinator the same metadata update makes, and commits too large
or with a group id too long for an offset record are answered with Kafka's error, written
nowhere."""

from __future__ import annotations

import dataclasses

from test_handlers_inprocess import broker  # noqa: F401  (the fixture)
from sandbox.broker.internal_topics import OFFSETS_TOPIC
from sandbox.coordinator.changes import TopicRemoved
from sandbox.protocol import errors as E


def commit_body(group: str, topic: str, offset: int, partitions=(0,), metadata: str = ""):
    return {"group_id": group, "generation_id_or_member_epoch": -1, "member_id": "", "group_instance_id": None,
            "retention_time_ms": -1, "topics": [{"name": topic, "partitions": [
                {"partition_index": p, "committed_offset": offset, "committed_leader_epoch": -1,
                 "committed_metadata": metadata} for p in partitions]}]}


def fetched(b, group: str):
    resp = b.call(9, 8, {"groups": [{"group_id": group, "topics": None}], "require_stable": False})
    g = resp.groups[0]
    return int(g.error_code), {(t.name, p.partition_index): p.committed_offset for t in g.topics for p in t.partitions}


def find(b, group: str):
    return b.call(10, 4, {"key_type": 0, "coordinator_keys": [group]}).coordinators[0]


def test_a_coordinator_whose_session_lapsed_does_not_answer_for_its_replicated_groups(broker):
    b, state = broker, broker.owner
    b.create_topic("t", 1)
    assert int(find(b, "g").error_code) == E.NONE
    assert int(b.call(8, 8, commit_body("g", "t", 5)).topics[0].partitions[0].error_code) == E.NONE
    assert fetched(b, "g") == (E.NONE, {("t", 0): 5})
    state.coordinator.lease_valid = lambda: False     # paused past its session, or cut off
    # one replica: no other broker can lead the group's partition; its groups go on
    assert fetched(b, "g") == (E.NONE, {("t", 0): 5})
    assert int(find(b, "g").error_code) == E.NONE
    # replicated: another broker may coordinate the group by now
    state.replicas.replicated = lambda key: True
    assert fetched(b, "g")[0] == E.NOT_COORDINATOR
    join = b.call(11, 5, {"group_id": "g", "session_timeout_ms": 10000, "rebalance_timeout_ms": 10000,
                          "member_id": "", "group_instance_id": None, "protocol_type": "consumer",
                          "protocols": [{"name": "range", "metadata": b""}]})
    assert int(join.error_code) == E.NOT_COORDINATOR
    assert int(find(b, "g").error_code) == E.COORDINATOR_NOT_AVAILABLE   # not "ask me", round and round
    del state.coordinator.lease_valid                  # its session renewed, its metadata current
    assert int(find(b, "g").error_code) == E.NONE
    assert fetched(b, "g") == (E.NONE, {("t", 0): 5})
    del state.replicas.replicated


def test_a_topic_deleted_as_its_groups_partition_comes_to_this_broker_loses_its_offsets_here(broker):
    """One metadata update deletes topic t and makes this broker the leader of the group's
    `__consumer_offsets` partition again: the offsets of t must go, from the view it loads and
    from the log (tombstones), not be written by the broker that no longer leads it."""
    b, state = broker, broker.owner
    b.create_topic("t", 1)
    b.create_topic("u", 1)
    assert int(find(b, "g").error_code) == E.NONE
    b.call(8, 8, commit_body("g", "t", 5))
    b.call(8, 8, commit_body("g", "u", 7))
    index = state.offsets.partition_for("g")
    key = (OFFSETS_TOPIC, index)
    real_topics, real_topic = state.coordinator.topics, state.coordinator.topic

    def moved(leader: int, epoch: int, without: str | None = None):
        out = []
        for t in real_topics():
            if t.name == without:
                continue
            if t.name == OFFSETS_TOPIC:
                parts = tuple(dataclasses.replace(p, replicas=(1, 2), isr=(1, 2), leader=leader, leader_epoch=epoch)
                              if p.index == index else p for p in t.partitions)
                t = dataclasses.replace(t, partitions=parts)
            out.append(t)
        return out
    t_id = next(t.topic_id for t in real_topics() if t.name == "t")

    def sync(changes, topics):   # on the broker's loop, as the metadata watcher calls it
        state.coordinator.topics = lambda: topics
        state.coordinator.topic = lambda name: next((t for t in topics if t.name == name), None)

        async def run():
            state.sync_partitions(changes)
        b.loop.run_until_complete(run())
    sync([], moved(2, 5))                              # the group's partition moved to broker 2
    assert not state.offsets.leads("g")
    end = state.partitions[key].log_end_offset
    sync([TopicRemoved("t", t_id)], moved(1, 6, without="t"))   # t deleted, the partition back here, at once
    assert state.offsets.leads("g")
    assert fetched(b, "g") == (E.NONE, {("u", 0): 7})
    assert state.partitions[key].log_end_offset > end  # the tombstones, written by this leader
    state.coordinator.topics, state.coordinator.topic = real_topics, real_topic


def test_a_commit_too_large_for_one_record_batch_is_invalid_commit_offset_size_and_writes_nothing(broker):
    b, state = broker, broker.owner
    b.create_topic("t", 300)
    assert int(find(b, "g").error_code) == E.NONE
    key = (OFFSETS_TOPIC, state.offsets.partition_for("g"))
    end = state.partitions[key].log_end_offset
    resp = b.call(8, 8, commit_body("g", "t", 3, partitions=range(300), metadata="m" * 4000))   # about 1.2 MB
    assert {int(p.error_code) for p in resp.topics[0].partitions} == {E.INVALID_COMMIT_OFFSET_SIZE}
    assert state.partitions[key].log_end_offset == end
    assert fetched(b, "g") == (E.NONE, {})


def test_a_group_id_too_long_for_an_offset_record_is_refused_with_one_error(broker):
    b = broker
    b.create_topic("t", 1)
    group = "g" * 40_000                                  # a flexible OffsetCommit may carry it
    assert int(find(b, group).error_code) == E.NONE
    resp = b.call(8, 8, commit_body(group, "t", 3))
    assert int(resp.topics[0].partitions[0].error_code) == E.INVALID_GROUP_ID


def test_a_marker_answered_unknown_topic_or_partition_is_sent_again_until_written(monkeypatch):
    """Kafka's TransactionMarkerRequestCompletionHandler retries UNKNOWN_TOPIC_OR_PARTITION: the
    leader may not know the partition yet (its metadata behind) or not have made its log. Taken
    as done, the transaction ended without its marker there: its offsets pending for good,
    read_committed consumers stopped at its first record. A topic deleted is dropped by the
    coordinator's own metadata (no leader)."""
    import asyncio
    from types import SimpleNamespace
    from sandbox.broker import txn_markers
    from sandbox.broker.transactions import markers as markers_mod

    answers = {("t", 0): [E.UNKNOWN_TOPIC_OR_PARTITION, E.UNKNOWN_TOPIC_OR_PARTITION, E.NONE]}
    asked = []

    async def write_markers(state, pid, epoch, commit, coordinator_epoch, keys):
        asked.append(list(keys))
        return {k: answers[k].pop(0) for k in keys}
    monkeypatch.setattr(txn_markers, "write_markers", write_markers)
    monkeypatch.setattr(markers_mod, "BACKOFF_S", (0.0,))
    state = SimpleNamespace(node_id=1, leaders={("t", 0): (1, 3), ("gone", 0): None})
    state.leaders.pop(("gone", 0))
    sender = markers_mod.MarkerSender(state)
    assert asyncio.run(sender.send(7, 0, True, 0, [("t", 0), ("gone", 0)], lambda: True))
    assert asked == [[("t", 0)]] * 3 and answers[("t", 0)] == []
