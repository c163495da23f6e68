"""Kafka's rules on the read side, answered in-process by the broker's handlers (a broker state
in a temp dir, requests encoded with kio): DeleteRecords refuses logs that are not deleted by
policy, and what the leader answers a fetch from a broker that is not a replica."""

from __future__ import annotations

from test_handlers_inprocess import broker, commit, produce  # noqa: F401 - the fixture

from sandbox.protocol import errors as E
from sandbox.protocol.records import encode_batch


def _create(b, name: str, configs: dict[str, str]) -> None:
    b.before_topics()
    resp = b.call(19, 7, {"topics": [{"name": name, "num_partitions": 1, "replication_factor": 1, "assignments": [],
                                      "configs": [{"name": k, "value": v} for k, v in configs.items()]}],
                          "timeout": 5000, "validate_only": False})
    assert int(resp.topics[0].error_code) == E.NONE


def _delete_records(b, name: str, offset: int):
    resp = b.call(21, 2, {"topics": [{"name": name, "partitions": [{"partition_index": 0, "offset": offset}]}],
                          "timeout": 5000})
    p = resp.topics[0].partitions[0]
    return int(p.error_code), p.low_watermark


def _earliest(b, name: str) -> int:
    resp = b.call(2, 9, {"replica_id": -1, "isolation_level": 0, "topics": [
        {"name": name, "partitions": [{"partition_index": 0, "current_leader_epoch": -1, "timestamp": -2}]}]})
    return resp.topics[0].partitions[0].offset


def test_delete_records_on_a_compacted_topic_is_a_policy_violation(broker):  # noqa: F811
    b = broker
    _create(b, "state", {"cleanup.policy": "compact"})
    _create(b, "both", {"cleanup.policy": "compact,delete"})
    for name in ("state", "both"):
        b.call(0, 9, {"transactional_id": None, "acks": -1, "timeout": 5000, "topic_data": [
            {"name": name, "partition_data": [{"index": 0, "records": encode_batch(0, [(b"k1", b"v1"), (b"k2", b"v2")])}]}]})
    assert _delete_records(b, "state", 1) == (E.POLICY_VIOLATION, -1)
    assert _delete_records(b, "state", -1) == (E.POLICY_VIOLATION, -1)
    assert _earliest(b, "state") == 0                    # nothing deleted
    assert _delete_records(b, "both", 1) == (E.NONE, 1)   # delete is in its policy


def test_delete_records_never_deletes_committed_offsets(broker):  # noqa: F811
    b = broker
    b.create_topic()
    produce(b, [b"a"])
    assert int(commit(b, offset=1).topics[0].partitions[0].error_code) == E.NONE
    state = b.owner
    index = state.offsets.partition_for("g")
    resp = b.call(21, 2, {"topics": [{"name": "__consumer_offsets", "partitions": [
        {"partition_index": index, "offset": -1}]}], "timeout": 5000})
    assert int(resp.topics[0].partitions[0].error_code) == E.POLICY_VIOLATION
    assert state.partitions[("__consumer_offsets", index)].log_start_offset == 0


def test_list_offsets_while_a_new_leaders_high_watermark_lags_its_epoch_start(tmp_path):
    """Kafka's fetchOffsetForTimestamp: a leader whose high watermark is still the one it had as
    a follower (below where its epoch began) answers a consumer's latest, and a lookup by time it
    cannot answer below the high watermark, with OFFSET_NOT_AVAILABLE (retriable), not with the
    stale high watermark or "no record"."""
    from types import SimpleNamespace as NS

    from sandbox.broker.handlers import k02_list_offsets as k02
    from sandbox.log import LogConfig, PartitionLog
    from sandbox.log.batch import build_batch

    plog = PartitionLog(tmp_path / "t-0", LogConfig())
    plog.replica.set_replicated(True)
    for i in range(3):   # offsets 0..14, timestamps 1000, 2000, 3000
        plog.append(build_batch([(None, b"v")] * 5, timestamp_ms=1000 * (i + 1)), leader_epoch=0)
    plog.replica.high_watermark = 5
    start = {"at": 15}
    state = NS(led_log=lambda t, i: (plog, E.NONE), leader_epoch_error=lambda t, i, e: E.NONE,
               leaders={("t", 0): (1, 1)}, node_id=1, replicas=NS(epoch_start=lambda key: start["at"]))

    def ask(ts, replica_id=-1):
        out = k02._lookup(state, "t", 0, ts, 0, replica_id)
        return out["error_code"], out["offset"]

    try:
        assert ask(-1) == (E.OFFSET_NOT_AVAILABLE, -1)
        assert ask(3000) == (E.OFFSET_NOT_AVAILABLE, -1)     # at 10: above the high watermark
        assert ask(1000) == (E.NONE, 0)                      # below it: answered
        assert ask(-2) == (E.NONE, 0)
        assert ask(-1, replica_id=2) == (E.NONE, 15)         # a broker reads to the log end
        old = k02._lookup(state, "t", 0, -1, 0, -1, -1, 4)       # v4 knows no OFFSET_NOT_AVAILABLE
        assert old["error_code"] == E.LEADER_NOT_AVAILABLE
        start["at"] = 5                                      # the followers caught up: as before
        assert ask(-1) == (E.NONE, 5) and ask(3000) == (E.NONE, -1)
    finally:
        plog.close()


def test_list_offsets_answers_the_leader_epoch_of_what_it_found(tmp_path):
    """Kafka's fetchOffsetByTimestamp: the leader_epoch of a ListOffsets answer is the epoch of the
    batch found (a lookup by time, max timestamp), the one that wrote the log start offset
    (earliest, earliest local), the partition's current one for latest, -1 when nothing is found;
    not the current epoch for everything."""
    from types import SimpleNamespace as NS

    from sandbox.broker.handlers import k02_list_offsets as k02
    from sandbox.log import LogConfig, PartitionLog
    from sandbox.log.batch import build_batch

    plog = PartitionLog(tmp_path / "t-0", LogConfig())
    # offsets 0-2 and 3-5 written in epoch 2, 6-8 and 9-11 in epoch 5; the leader now in epoch 7
    for epoch, ts in ((2, 1000), (2, 2000), (5, 3000), (5, 9000)):
        plog.append(build_batch([(None, b"v")] * 3, timestamp_ms=ts), leader_epoch=epoch)
    plog.replica.begin_epoch(7)
    state = NS(led_log=lambda t, i: (plog, E.NONE), leader_epoch_error=lambda t, i, e: E.NONE,
               leaders={("t", 0): (1, 7)}, node_id=1, replicas=NS(epoch_start=lambda key: 12))

    def ask(ts):
        out = k02._lookup(state, "t", 0, ts, 0)
        assert out["error_code"] == E.NONE
        return out["offset"], out["leader_epoch"]

    try:
        assert ask(k02.LATEST) == (12, 7)
        assert ask(k02.EARLIEST) == ask(k02.EARLIEST_LOCAL) == (0, 2)
        assert ask(1500) == (3, 2)
        assert ask(2500) == (6, 5)
        assert ask(k02.MAX_TIMESTAMP) == (9, 5)
        assert ask(10_000) == (-1, -1)                    # no record that late
        assert ask(k02.LATEST_TIERED) == (-1, -1)
        plog.delete_records_before(7)                     # the log start now inside epoch 5's batch
        assert ask(k02.EARLIEST) == ask(k02.EARLIEST_LOCAL) == (7, 5)
        assert ask(500) == (7, 5)
    finally:
        plog.close()


def _fetch_body(topics, session_id=0, session_epoch=-1, max_wait=0):
    return {"replica_id": -1, "max_wait": max_wait, "min_bytes": 1, "max_bytes": 1 << 20, "isolation_level": 0,
            "session_id": session_id, "session_epoch": session_epoch, "rack_id": "", "forgotten_topics_data": [],
            "topics": topics}


def test_an_incremental_fetch_is_told_its_session_does_not_exist(broker):  # noqa: F811
    """No fetch session is ever handed out (session_id 0 in every answer), so a request in an
    incremental session epoch names a session this broker does not have: Kafka's FetchManager
    answers FETCH_SESSION_ID_NOT_FOUND, and the client starts a full one."""
    b = broker
    b.create_topic()
    produce(b, [b"a"])
    part = [{"topic": "t", "partitions": [{"partition": 0, "fetch_offset": 0, "partition_max_bytes": 1 << 20,
                                           "current_leader_epoch": -1, "log_start_offset": -1}]}]
    for sid, epoch in ((12345, 3), (0, 7)):
        resp = b.call(1, 12, _fetch_body(part, sid, epoch))
        assert int(resp.error_code) == E.FETCH_SESSION_ID_NOT_FOUND and not resp.responses
    full = b.call(1, 12, _fetch_body(part, 0, 0))
    assert int(full.error_code) == E.NONE and full.responses[0].partitions[0].records


def test_an_unknown_topic_id_does_not_cut_the_long_poll_of_the_others_short(broker):  # noqa: F811
    """Kafka leaves partitions it cannot serve for authorization or an unknown topic id out of
    the fetch and long-polls the rest: a consumer with one such topic must not spin."""
    import asyncio
    import uuid

    b = broker
    b.create_topic()
    tid = next(t.topic_id for t in b.owner.coordinator.topics() if t.name == "t")
    parts = [{"partition": 0, "fetch_offset": 0, "partition_max_bytes": 1 << 20, "current_leader_epoch": -1,
              "log_start_offset": -1, "last_fetched_epoch": -1}]
    body = _fetch_body([{"topic_id": uuid.uuid4(), "partitions": parts}, {"topic_id": tid, "partitions": parts}],
                       max_wait=30_000)
    out = b.registry.dispatch(b.frame(1, 13, body, 1), b.owner, "in-process", *b.extra)
    assert asyncio.iscoroutine(out)
    task = b.loop.create_task(out)
    b.loop.run_until_complete(asyncio.sleep(0.2))
    assert not task.done(), "answered at once: the unknown topic id cut the long poll short"
    produce(b, [b"wake"])                       # an append to the known partition answers it
    reply = b.loop.run_until_complete(asyncio.wait_for(task, 10))
    assert reply is not None
    # every partition left out: answered at once
    only = _fetch_body([{"topic_id": uuid.uuid4(), "partitions": parts}], max_wait=30_000)
    resp = b.call(1, 13, only)
    assert int(resp.responses[0].partitions[0].error_code) == E.UNKNOWN_TOPIC_ID
