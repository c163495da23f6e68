"""Metadata for a topic that does not exist answers as Kafka's does: an illegal name is
INVALID_TOPIC_EXCEPTION (the client gives up), an auto-creation the coordinator cannot make yet is
LEADER_NOT_AVAILABLE (the client asks again), one another broker made meanwhile is the topic, an
unknown topic id is UNKNOWN_TOPIC_ID. Answered in-process; the real-process case (a producer that
waits for a fenced broker to come back) is in tests/integration/test_topic_defaults.py."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

from test_handlers_inprocess import broker  # noqa: F401  (the fixture)
from sandbox.coordinator import CoordinatorError
from sandbox.protocol import errors as E


def ask(b, name: str | None, auto: bool = True, topic_id: uuid.UUID | None = None):
    resp = b.call(3, 12, {"topics": [{"name": name, "topic_id": topic_id}], "allow_auto_topic_creation": auto,
                          "include_topic_authorized_operations": False})
    return resp.topics[0]


def test_an_illegal_name_is_an_invalid_topic_with_or_without_auto_creation(broker):
    for auto in (True, False):
        t = ask(broker, "no spaces", auto)
        assert int(t.error_code) == E.INVALID_TOPIC_EXCEPTION and list(t.partitions) == []
    assert broker.owner.coordinator.topic("no spaces") is None
    assert int(ask(broker, "fine-name", auto=False).error_code) == E.UNKNOWN_TOPIC_OR_PARTITION


def test_an_auto_creation_refused_for_now_is_not_available_yet_then_made(broker, monkeypatch):
    coord = broker.owner.coordinator
    real = coord.create_topic
    refusals = [CoordinatorError(E.INVALID_REPLICATION_FACTOR, "only 1 broker(s) are registered"),
                CoordinatorError(E.COORDINATOR_NOT_AVAILABLE, "the coordinator is not reachable")]

    async def refuse_then_create(*args, **kwargs):
        if refusals:
            raise refusals.pop(0)
        return await real(*args, **kwargs)

    monkeypatch.setattr(coord, "create_topic", refuse_then_create)
    assert int(ask(broker, "later").error_code) == E.LEADER_NOT_AVAILABLE
    assert int(ask(broker, "later").error_code) == E.LEADER_NOT_AVAILABLE
    t = ask(broker, "later")
    assert int(t.error_code) == E.NONE and [p.partition_index for p in t.partitions] == [0]


def test_a_topic_another_broker_made_meanwhile_is_answered(broker, monkeypatch):
    coord = broker.owner.coordinator
    real = coord.create_topic

    async def made_elsewhere_first(name, *args, **kwargs):
        await real(name, *args, **kwargs)   # the other broker's creation lands first
        raise CoordinatorError(E.TOPIC_ALREADY_EXISTS, f"Topic '{name}' already exists.")

    monkeypatch.setattr(coord, "create_topic", made_elsewhere_first)
    t = ask(broker, "raced")
    assert int(t.error_code) == E.NONE and t.topic_id == coord.topic("raced").topic_id


def test_an_unknown_topic_id_is_unknown_topic_id_and_named_in_the_answer(broker):
    asked = uuid.uuid4()
    t = ask(broker, None, auto=True, topic_id=asked)
    assert int(t.error_code) == E.UNKNOWN_TOPIC_ID and t.topic_id == asked


def _slow_coordinator(broker, monkeypatch):
    """The coordinator's create_topic waits for the returned gate (set by the test, or by the loop
    2 s on: a request that waited for it would see the topic made); the names it was asked for."""
    coord = broker.owner.coordinator
    real = coord.create_topic
    gate = asyncio.Event()
    asked: list[str] = []

    async def slow(name, *args, **kwargs):
        asked.append(name)
        await gate.wait()
        return await real(name, *args, **kwargs)

    monkeypatch.setattr(coord, "create_topic", slow)
    broker.loop.call_later(2.0, gate.set)
    return gate, asked


def test_a_coordinator_slow_to_create_does_not_hold_the_metadata_request(broker, monkeypatch):
    """Kafka answers at once and creates in the background; a broker that waited for a paused
    coordinator (5 s) held every request behind it on the client's connection, produce too."""
    gate, asked = _slow_coordinator(broker, monkeypatch)
    assert int(ask(broker, "slowly").error_code) == E.LEADER_NOT_AVAILABLE
    assert int(ask(broker, "slowly").error_code) == E.LEADER_NOT_AVAILABLE   # joins the creation in flight
    assert asked == ["slowly"]
    gate.set()   # the coordinator answers: the creation finishes by itself
    t = ask(broker, "slowly")
    assert int(t.error_code) == E.NONE and [p.partition_index for p in t.partitions] == [0]
    assert asked == ["slowly"]


def test_a_coordinator_slow_to_create_the_offsets_topic_does_not_hold_find_coordinator(broker, monkeypatch):
    """Answered before the coordinator made `__consumer_offsets` (here by this broker itself: a
    group may consume, without commits, while no offsets topic exists), then from the topic."""
    gate, asked = _slow_coordinator(broker, monkeypatch)
    coord = broker.owner.coordinator
    find = {"key": "g1", "key_type": 0}
    first = broker.call(10, 3, find)
    assert coord.topic("__consumer_offsets") is None and asked == ["__consumer_offsets"]
    assert int(first.error_code) in (E.NONE, E.COORDINATOR_NOT_AVAILABLE)
    gate.set()
    answer = broker.call(10, 3, find)
    assert coord.topic("__consumer_offsets") is not None and asked == ["__consumer_offsets"]
    assert int(answer.error_code) == E.NONE and answer.node_id == broker.owner.node_id


def test_a_consumer_fetch_with_another_leader_epoch_is_fenced_or_unknown(broker):
    """KIP-320 as Kafka's fetch applies it: a consumer's current_leader_epoch older than the
    leader's is FENCED_LEADER_EPOCH, newer UNKNOWN_LEADER_EPOCH, the same or -1 read. Found by the
    fault campaign's consumer groups: a fetch sent before the coordinator's journal was restored
    (same leader, epoch bumped) was answered with records; librdkafka took them for a truncation
    and dropped the record it had fetched and not yet handed out, skipping it."""
    from sandbox.protocol.extensions import RESTORE_LEADER_EPOCH
    from test_handlers_inprocess import produce
    broker.loop.run_until_complete(broker.owner.coordinator.create_topic("t", 1, 1, {RESTORE_LEADER_EPOCH: "3"}))
    broker.owner.sync_partitions([])
    assert int(produce(broker, [b"a", b"b"]).error_code) == E.NONE

    def fetch(epoch: int):
        resp = broker.call(1, 12, {"replica_id": -1, "max_wait": 0, "min_bytes": 1, "max_bytes": 1 << 20,
                                   "isolation_level": 0, "session_id": 0, "session_epoch": -1, "rack_id": "",
                                   "forgotten_topics_data": [], "topics": [{"topic": "t", "partitions": [
                                       {"partition": 0, "fetch_offset": 0, "partition_max_bytes": 1 << 20,
                                        "current_leader_epoch": epoch}]}]})
        p = resp.responses[0].partitions[0]
        return int(p.error_code), len(bytes(p.records or b""))

    assert fetch(2) == (E.FENCED_LEADER_EPOCH, 0)
    assert fetch(4) == (E.UNKNOWN_LEADER_EPOCH, 0)
    for epoch in (3, -1):
        code, size = fetch(epoch)
        assert code == E.NONE and size > 0


def test_a_list_offsets_with_another_leader_epoch_is_fenced_or_unknown(broker):
    """ListOffsets v4+ applies the same KIP-320 check as Kafka's: a client that resets its
    position from a stale epoch's answer could land on offsets the new leader cut off."""
    from sandbox.protocol.extensions import RESTORE_LEADER_EPOCH
    from test_handlers_inprocess import produce
    broker.loop.run_until_complete(broker.owner.coordinator.create_topic("lo", 1, 1, {RESTORE_LEADER_EPOCH: "5"}))
    broker.owner.sync_partitions([])
    assert int(produce(broker, [b"a", b"b"], name="lo").error_code) == E.NONE

    def latest(epoch: int):
        resp = broker.call(2, 7, {"replica_id": -1, "isolation_level": 0, "topics": [{"name": "lo", "partitions": [
            {"partition_index": 0, "timestamp": -1, "current_leader_epoch": epoch}]}]})
        p = resp.topics[0].partitions[0]
        return int(p.error_code), int(p.offset)

    assert latest(4) == (E.FENCED_LEADER_EPOCH, -1)
    assert latest(6) == (E.UNKNOWN_LEADER_EPOCH, -1)
    assert latest(5) == (E.NONE, 2) and latest(-1) == (E.NONE, 2)


def test_brokers_the_restored_coordinator_does_not_know_yet_stay_listed(broker, monkeypatch):
    """While the coordinator's journal is being restored the brokers register again one by one;
    a Metadata answer missing one made librdkafka (2.10+) drop it, and a consumer left with none
    asked for its group coordinator "with no broker available" for good (fault campaign, seed 2,
    2 runs in 5). Brokers registered before the journal was replaced stay listed meanwhile."""
    import time
    from types import SimpleNamespace
    state = broker.owner
    coord = state.coordinator
    others = [SimpleNamespace(broker_id=n, host="127.0.0.1", port=19090 + n, rack=None, fenced=False,
                              address=lambda listener, n=n: ("127.0.0.1", 19090 + n)) for n in (2, 3)]
    before = list(coord.brokers())
    monkeypatch.setattr(coord, "brokers", lambda: before + others)
    state.sync_partitions([])
    listed = lambda: sorted(b.node_id for b in broker.call(3, 12, {   # noqa: E731
        "topics": [], "allow_auto_topic_creation": False, "include_topic_authorized_operations": False}).brokers)
    assert listed() == [1, 2, 3]
    monkeypatch.setattr(coord, "brokers", lambda: before)                # only this one registered again
    monkeypatch.setattr(type(coord), "cluster_changed_at", property(lambda self: time.monotonic()), raising=False)
    state.sync_partitions([])
    assert listed() == [1, 2, 3]
    monkeypatch.setattr(type(coord), "cluster_changed_at", property(lambda self: None), raising=False)
    state.sync_partitions([])
    assert listed() == [1]   # the restore is over: the metadata says who is there


def test_a_log_of_another_topic_id_is_dropped_when_the_metadata_history_is_intact(broker):
    """A partition folder naming another topic id than the metadata's (the topic was deleted
    and made again while this broker's metadata lagged) holds the old topic's records: dropped
    and made afresh, as Kafka drops stray logs, when the coordinator's journal is the one the
    broker followed. After a replaced journal the folder is kept and takes the new id."""
    import uuid
    from test_handlers_inprocess import produce
    state = broker.owner
    broker.loop.run_until_complete(state.coordinator.create_topic("ids", 1, 1))
    state.sync_partitions([])
    assert int(produce(broker, [b"a", b"b"], name="ids").error_code) == E.NONE
    real = state.coordinator.topic("ids").topic_id
    assert state.partitions[("ids", 0)].topic_id == real

    state._history_intact = False   # as after a replaced journal: kept, and renamed
    state.partitions[("ids", 0)].topic_id = uuid.uuid4()
    state.sync_partitions([])
    assert state.partitions[("ids", 0)].log_end_offset == 2 and state.partitions[("ids", 0)].topic_id == real

    state._history_intact = True
    state.partitions[("ids", 0)].topic_id = uuid.uuid4()
    state.sync_partitions([])
    fresh = state.partitions[("ids", 0)]
    assert fresh.log_end_offset == 0 and fresh.topic_id == real
    assert str(real) not in (fresh.directory / "partition.metadata").read_text()   # Kafka's base64 form


def test_a_replaced_history_is_noted_once_every_folder_is_matched_with_it(broker):
    """After a replaced coordinator journal a broker notes the new history as soon as every
    partition folder it holds belongs to a topic the metadata knows (the restore put them back),
    not only after its own adoption pass: a restart in between took every folder for lost and put
    back topics deleted meanwhile (fault campaign seed 5002 with --churn)."""
    from sandbox.broker.state import HISTORY_FILE
    state = broker.owner
    path = Path(state.config.data_dir) / HISTORY_FILE
    path.write_text("an-older-history")
    state.partitions[("lost", 0)] = state.logs.create("lost", 0)   # on disk, unknown to the metadata
    state._check_history()
    # noted at once, with the folder the restore (or the adoption pass) may still put back
    from sandbox.broker.disk_folders import PENDING_FILE
    pending = path.parent / PENDING_FILE
    assert not state._history_intact and path.read_text() == state.coordinator.cluster_id
    assert pending.read_text() == f"{state.coordinator.cluster_id}\nlost\t0"
    assert ("lost", 0) in state.partitions   # kept for the restore (or the adoption pass)
    broker.loop.run_until_complete(state.coordinator.create_topic("lost", 1, 1))   # the restore
    state.sync_partitions([])
    assert path.read_text() == state.coordinator.cluster_id and not pending.exists()


def test_a_topic_deleted_and_made_again_in_one_change_loses_its_old_folder(broker):
    """A deletion and a re-creation under the same name arriving in one metadata change: the
    folder there is the old topic's (its id says so), so it goes, whatever the broker's history."""
    import uuid
    from sandbox.coordinator.changes import TopicRemoved
    from test_handlers_inprocess import produce
    state = broker.owner
    broker.loop.run_until_complete(state.coordinator.create_topic("batch", 1, 1))
    state.sync_partitions([])
    assert int(produce(broker, [b"old"], name="batch").error_code) == E.NONE
    old_id = state.partitions[("batch", 0)].topic_id
    state._history_intact = False   # only the change itself may decide here
    state.sync_partitions([TopicRemoved("batch", uuid.uuid4())])   # the same id: nothing happens
    assert state.partitions[("batch", 0)].log_end_offset == 1
    state.partitions[("batch", 0)].topic_id = uuid.uuid4()          # as if made again meanwhile
    state.sync_partitions([TopicRemoved("batch", old_id)])
    assert state.partitions[("batch", 0)].log_end_offset == 0
    assert state.partitions[("batch", 0)].topic_id == state.coordinator.topic("batch").topic_id


def test_a_broker_started_after_its_coordinator_journal_was_replaced_holds_off_auto_creation(broker, monkeypatch):
    """Found by the fault campaign (`--compound`, seed 8101): a broker restarted while the
    supervisor was putting a destroyed coordinator journal back did not know a restore was on
    (it had not seen the journal change), so a producer's Metadata request made `chaos` anew with
    1 partition and a new id, and a consumer's made `__consumer_offsets` empty, before the
    supervisor could put them back: consumers that knew the old id and leader epochs stopped.
    Now a broker whose noted history differs from the journal's, with folders the metadata does
    not know, takes it as a restore under way: "leader not available" until the grace is over."""
    from sandbox.broker.state import HISTORY_FILE
    state = broker.owner
    (Path(state.config.data_dir) / HISTORY_FILE).write_text("the-destroyed-journal's-history")
    state.partitions[("chaos", 0)] = state.logs.create("chaos", 0)   # on disk, not put back yet
    monkeypatch.setattr(state.config, "coordinator", "127.0.0.1:1")   # a stack's remote coordinator
    coord = state.coordinator
    monkeypatch.setattr(coord, "journal_replaced",
                        lambda: setattr(coord, "cluster_changed_at", time.monotonic()), raising=False)
    state._check_history()
    assert state.restoring()
    assert int(ask(broker, "chaos").error_code) == E.LEADER_NOT_AVAILABLE
    assert coord.topic("chaos") is None


def test_a_deleted_topic_s_partitions_are_checkpointed_once_not_once_each(broker, monkeypatch):
    """Deleting a topic of many partitions wrote the three checkpoint files, each fsynced, once
    per partition, on the event loop: a 100-partition topic's deletion held every client of the
    broker 0.6-1 s. Now the files are written once per metadata change, without the topic."""
    import uuid
    from sandbox.coordinator.changes import TopicRemoved
    from sandbox.log import manager
    state = broker.owner
    broker.loop.run_until_complete(state.coordinator.create_topic("wide", 8, 1))
    broker.loop.run_until_complete(state.coordinator.create_topic("kept", 1, 1))
    state.sync_partitions([])
    topic_id = state.coordinator.topic("wide").topic_id
    writes = []
    real = manager.write_checkpoint
    monkeypatch.setattr(manager, "write_checkpoint", lambda path, points: (writes.append(Path(path).name),
                                                                           real(path, points))[1])
    broker.loop.run_until_complete(state.coordinator.delete_topic("wide"))
    state.sync_partitions([TopicRemoved("wide", topic_id)])
    assert not any(key[0] == "wide" for key in state.partitions)
    assert sorted(writes) == sorted(set(writes)) and len(writes) == 3, writes   # each file once
    recovery = manager.read_checkpoint(state.logs.root / manager.RECOVERY_CHECKPOINT)
    assert set(recovery) == {("kept", 0)} | {k for k in recovery if k[0].startswith("__")}
