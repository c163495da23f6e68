"""MetadataMachine topic commands: create/delete/create-partitions/alter-configs and errors."""
from __future__ import annotations

import uuid
from collections import Counter

import pytest

from sandbox.coordinator import CoordinatorError, MetadataMachine
from sandbox.protocol import errors as E
from coordinator.coordinator_helpers import machine_with_brokers, run


def code_of(fn, *args, **kw) -> int:
    with pytest.raises(CoordinatorError) as info:
        fn(*args, **kw)
    return info.value.error_code


def create(m, name, parts=-1, rf=-1, configs=None, assignments=None):
    run(m, m.create_topic(name, parts, rf, configs, uuid.uuid4(), assignments))
    return m.topic(name)


def test_commands_do_not_apply_records():
    m = machine_with_brokers(1)
    offset = m.metadata_offset
    records = m.create_topic("a", 2, 1, None, uuid.uuid4())
    assert [r["type"] for r in records] == ["topic", "partition", "partition"]
    assert m.topic("a") is None and m.metadata_offset == offset
    run(m, records)
    assert m.metadata_offset == offset + 3


def test_create_topic_defaults_and_internal_flag():
    m = MetadataMachine(default_partitions=4)
    run(m, m.register_broker(1, "h", 9092, None, uuid.uuid4()))
    t = create(m, "__consumer_offsets")
    assert len(t.partitions) == 4 and t.replication_factor == 1 and t.internal
    assert not create(m, "orders").internal
    assert not create(m, "__debezium-heartbeat.x").internal   # Kafka: only its two are internal
    p = t.partitions[0]
    assert (p.replicas, p.isr, p.leader, p.leader_epoch, p.partition_epoch) == ((1,), (1,), 1, 0, 0)


@pytest.mark.parametrize("name", ["", ".", "..", "a" * 250, "has space", "slash/x", "ü", None])
def test_invalid_topic_names(name):
    m = machine_with_brokers(1)
    assert code_of(m.create_topic, name, 1, 1, None, uuid.uuid4()) == E.INVALID_TOPIC_EXCEPTION


def test_legal_edge_names():
    m = machine_with_brokers(1)
    for name in ["a" * 249, "A.b_c-9", "..."]:
        assert create(m, name).name == name


def test_topic_already_exists_and_dot_underscore_collision():
    m = machine_with_brokers(1)
    create(m, "a.b")
    assert code_of(m.create_topic, "a.b", 1, 1, None, uuid.uuid4()) == E.TOPIC_ALREADY_EXISTS
    assert code_of(m.create_topic, "a_b", 1, 1, None, uuid.uuid4()) == E.INVALID_TOPIC_EXCEPTION


@pytest.mark.parametrize("parts", [0, -2, -100])
def test_invalid_partitions(parts):
    m = machine_with_brokers(1)
    assert code_of(m.create_topic, "t", parts, 1, None, uuid.uuid4()) == E.INVALID_PARTITIONS


@pytest.mark.parametrize("rf", [0, -2, 4])
def test_invalid_replication_factor(rf):
    m = machine_with_brokers(1, 2, 3)
    code = code_of(m.create_topic, "t", 1, rf, None, uuid.uuid4())
    assert code == E.INVALID_REPLICATION_FACTOR


def test_replication_factor_counts_only_unfenced_brokers():
    m = machine_with_brokers(1, 2, 3)
    run(m, m.fence_broker(3))
    assert code_of(m.create_topic, "t", 1, 3, None, uuid.uuid4()) == E.INVALID_REPLICATION_FACTOR
    assert create(m, "t", 2, 2).replication_factor == 2


def test_a_new_partitions_isr_leaves_out_fenced_replicas():
    """Kafka's controller: a manual assignment's ISR is its unfenced replicas, led by the first;
    a broker that is down joins once it has fetched what the leader has (counted in sync at once,
    it could be elected with an empty log and cut the others' records)."""
    m = machine_with_brokers(1, 2, 3)
    run(m, m.fence_broker(1))
    t = create(m, "t", assignments={0: [1, 2, 3], 1: [2, 1, 3]})
    assert [(p.replicas, p.isr, p.leader) for p in t.partitions] == [((1, 2, 3), (2, 3), 2),
                                                                      ((2, 1, 3), (2, 3), 2)]
    run(m, m.create_partitions("t", 3, assignments=[[1, 3, 2]]))
    p = m.topic("t").partitions[2]
    assert (p.replicas, p.isr, p.leader) == ((1, 3, 2), (3, 2), 3)


def test_a_partition_put_back_after_a_lost_journal_starts_with_its_leader_alone_in_sync():
    """The restore (a first leader epoch above 0, sandbox.restore.leader.epoch: the replicas hold
    data) lists the replica with the newest history first; the others rejoin once they have
    fetched what it has."""
    m = machine_with_brokers(1, 2, 3)
    run(m, m.create_topic("t", -1, -1, None, uuid.uuid4(), {0: [2, 1, 3], 1: [3, 2, 1]}, first_epoch=7))
    t = m.topic("t")
    assert [(p.replicas, p.isr, p.leader, p.leader_epoch) for p in t.partitions] == [
        ((2, 1, 3), (2,), 2, 7), ((3, 2, 1), (3,), 3, 7)]
    run(m, m.fence_broker(2))
    run(m, m.create_topic("u", -1, -1, None, uuid.uuid4(), {0: [2, 1, 3]}, first_epoch=1))
    p = m.topic("u").partitions[0]
    assert (p.isr, p.leader) == ((1,), 1)
    p = create(m, "fresh", assignments={0: [2, 1, 3]}).partitions[0]   # a new topic: all that are up
    assert (p.isr, p.leader) == ((1, 3), 1)


def test_a_partition_whose_replicas_are_all_fenced_is_refused():
    m = machine_with_brokers(1, 2, 3)
    run(m, m.fence_broker(1))
    run(m, m.fence_broker(2))
    assert code_of(m.create_topic, "t", -1, -1, None, uuid.uuid4(), {0: [3, 1], 1: [1, 2]}) == \
        E.INVALID_REPLICA_ASSIGNMENT
    assert m.topic("t") is None
    create(m, "u", assignments={0: [3]})
    assert code_of(m.create_partitions, "u", 2, [[2]]) == E.INVALID_REPLICA_ASSIGNMENT
    assert len(m.topic("u").partitions) == 1


def test_no_brokers_means_no_default_replication():
    m = MetadataMachine()
    assert code_of(m.create_topic, "t", 1, -1, None, uuid.uuid4()) == E.INVALID_REPLICATION_FACTOR


def test_placement_balanced_over_three_brokers():
    m = machine_with_brokers(1, 2, 3)
    t = create(m, "t", 6, 3)
    leaders = Counter(p.leader for p in t.partitions)
    assert leaders == {1: 2, 2: 2, 3: 2}
    for p in t.partitions:
        assert sorted(p.replicas) == [1, 2, 3] and p.isr == p.replicas
        assert p.leader == p.replicas[0]
    # followers vary too: not every partition with the same leader has the same order
    assert len({p.replicas for p in t.partitions}) == 6
    t2 = create(m, "t2", 3, 2)
    assert Counter(r for p in t2.partitions for r in p.replicas) == {1: 2, 2: 2, 3: 2}


def test_single_partition_topics_rotate_their_leader():
    m = machine_with_brokers(1, 2, 3)
    leaders = [create(m, f"t{i}", 1, 1).partitions[0].leader for i in range(6)]
    assert Counter(leaders) == {1: 2, 2: 2, 3: 2}


def test_manual_assignments():
    m = machine_with_brokers(1, 2, 3)
    t = create(m, "t", assignments=[[3, 1], [2, 3]])
    assert [p.replicas for p in t.partitions] == [(3, 1), (2, 3)]
    assert [p.leader for p in t.partitions] == [3, 2]
    t = create(m, "u", assignments={0: [2], 1: [1]})
    assert [p.replicas for p in t.partitions] == [(2,), (1,)]


@pytest.mark.parametrize("assignments, code", [
    ([[1, 1]], E.INVALID_REPLICA_ASSIGNMENT),
    ([[1], [1, 2]], E.INVALID_REPLICA_ASSIGNMENT),
    ([[9]], E.INVALID_REPLICA_ASSIGNMENT),
    ([[]], E.INVALID_REPLICA_ASSIGNMENT),
    ([], E.INVALID_PARTITIONS),
    ({0: [1], 2: [2]}, E.INVALID_REPLICA_ASSIGNMENT),
])
def test_bad_manual_assignments(assignments, code):
    m = machine_with_brokers(1, 2, 3)
    assert code_of(m.create_topic, "t", -1, -1, None, uuid.uuid4(), assignments) == code


def test_assignments_with_counts_is_invalid_request():
    m = machine_with_brokers(1)
    code = code_of(m.create_topic, "t", 1, -1, None, uuid.uuid4(), [[1]])
    assert code == E.INVALID_REQUEST


def test_delete_topic_by_name_and_id():
    m = machine_with_brokers(1)
    a, b = create(m, "a"), create(m, "b")
    run(m, m.delete_topic("a"))
    assert m.topic("a") is None and m.topic_by_id(a.topic_id) is None
    run(m, m.delete_topic(b.topic_id))
    assert m.topics() == []
    assert code_of(m.delete_topic, "a") == E.UNKNOWN_TOPIC_OR_PARTITION
    assert code_of(m.delete_topic, uuid.uuid4()) == E.UNKNOWN_TOPIC_ID
    # the name can be reused, with a new topic id
    assert create(m, "a").topic_id != a.topic_id


def test_the_ids_deleted_under_this_history_are_remembered_through_a_snapshot_until_made_again():
    """A broker restarted after its topic was put back and deleted while it was down tells the
    folder it listed for putting back from a lost topic's by these (broker/disk_folders.py)."""
    m = machine_with_brokers(1)
    tid = create(m, "gone").topic_id
    kept = create(m, "kept").topic_id
    run(m, m.delete_topic("gone"))
    assert m.topic_deleted(tid) and not m.topic_deleted(kept)
    copy = MetadataMachine()
    copy.restore(m.state().to_dict())                      # a snapshot, as brokers' mirrors load it
    assert copy.topic_deleted(tid) and not copy.topic_deleted(kept)
    assert m.preview([]).topic_deleted(tid)
    assert not MetadataMachine().topic_deleted(tid)        # a fresh journal knows of no deletion
    # a restore from an older catalog (or a broker's folder) does not make it again (review)
    assert code_of(m.create_topic, "gone", 1, 1, None, tid) == E.UNKNOWN_TOPIC_ID
    run(m, m.create_topic("gone", 1, 1, None, uuid.uuid4()))   # the name, under a new id, is free


def test_the_deleted_ids_remembered_are_bounded_oldest_first(monkeypatch):
    from sandbox.coordinator import machine as machine_module
    monkeypatch.setattr(machine_module, "MAX_DELETED_IDS", 3)
    m = machine_with_brokers(1)
    ids = []
    for i in range(5):
        ids.append(create(m, f"t{i}").topic_id)
        run(m, m.delete_topic(f"t{i}"))
    assert [m.topic_deleted(t) for t in ids] == [False, False, True, True, True]
    assert m.state().deleted_topic_ids == [str(t) for t in ids[2:]]


def test_create_partitions():
    m = machine_with_brokers(1, 2, 3)
    t = create(m, "t", 2, 2)
    grown = run(m, m.create_partitions("t", 5))
    assert [r["index"] for r in grown] == [2, 3, 4]
    t2 = m.topic("t")
    assert t2.partitions[:2] == t.partitions and len(t2.partitions) == 5
    assert all(len(p.replicas) == 2 for p in t2.partitions)
    run(m, m.create_partitions("t", 6, assignments=[[3, 1]]))
    assert m.topic("t").partitions[5].replicas == (3, 1)


@pytest.mark.parametrize("total, assignments, code", [
    (2, None, E.INVALID_PARTITIONS),
    (1, None, E.INVALID_PARTITIONS),
    (4, [[1, 2]], E.INVALID_REPLICA_ASSIGNMENT),            # 2 new partitions, 1 list
    (3, [[1]], E.INVALID_REPLICA_ASSIGNMENT),               # wrong replication factor
    (3, [[1, 7]], E.INVALID_REPLICA_ASSIGNMENT),            # unknown broker
])
def test_create_partitions_errors(total, assignments, code):
    m = machine_with_brokers(1, 2, 3)
    create(m, "t", 2, 2)
    assert code_of(m.create_partitions, "t", total, assignments) == code
    assert code_of(m.create_partitions, "nope", 5) == E.UNKNOWN_TOPIC_OR_PARTITION


def test_alter_configs_incremental_and_replace():
    m = machine_with_brokers(1)
    create(m, "t", configs={"retention.ms": "1000", "cleanup.policy": "compact"})
    run(m, m.alter_configs("t", {"segment.bytes": "1048576"}, ["retention.ms"], True))
    assert m.topic("t").configs == {"cleanup.policy": "compact", "segment.bytes": "1048576"}
    run(m, m.alter_configs("t", {"retention.ms": "-1"}, None, incremental=False))
    assert m.topic("t").configs == {"retention.ms": "-1"}


@pytest.mark.parametrize("key, value", [
    ("retention.ms", "soon"), ("retention.ms", "-2"), ("segment.bytes", "-1"),
    ("segment.bytes", "1.5"), ("cleanup.policy", "forever"),
    ("message.timestamp.type", "WallClock"), ("compression.type", "brotli"),
    ("min.insync.replicas", "0"), ("preallocate", "yes"), ("min.cleanable.dirty.ratio", "2"),
    ("no.such.config", "1"), ("max.message.bytes", 5),
])
def test_invalid_configs_name_key_and_value(key, value):
    m = machine_with_brokers(1)
    with pytest.raises(CoordinatorError) as info:
        m.create_topic("t", 1, 1, {key: value}, uuid.uuid4())
    assert info.value.error_code == E.INVALID_CONFIG and key in info.value.message
    create(m, "t")
    assert code_of(m.alter_configs, "t", {key: value}, None, True) == E.INVALID_CONFIG


def test_valid_config_values_are_normalized():
    m = machine_with_brokers(1)
    t = create(m, "t", configs={"cleanup.policy": "delete,compact", "retention.bytes": "-1",
                                "preallocate": "TRUE", "compression.type": "zstd",
                                "message.timestamp.type": "LogAppendTime"})
    assert t.configs["cleanup.policy"] == "delete,compact"   # a list keeps its order, as in Kafka
    assert t.configs["preallocate"] == "true"
    t = create(m, "u", configs={"cleanup.policy": " compact , delete,compact"})
    assert t.configs["cleanup.policy"] == "compact,delete"


def test_alter_configs_errors():
    m = machine_with_brokers(1)
    create(m, "t")
    assert code_of(m.alter_configs, "x", {}, None, True) == E.UNKNOWN_TOPIC_OR_PARTITION
    assert m.alter_configs("t", None, ["bogus"], True)   # deleting a name not set: a no-op, as in Kafka
    assert code_of(m.alter_configs, "t", {"bogus": "1"}, None, True) == E.INVALID_CONFIG
    code = code_of(m.alter_configs, "t", {"retention.ms": "1"}, ["retention.ms"], True)
    assert code == E.INVALID_REQUEST


def test_describe_configs_reports_defaults_and_overrides():
    m = machine_with_brokers(1)
    create(m, "t", configs={"retention.ms": "1000"})
    d = m.describe_configs("t")
    assert d["retention.ms"] == ("1000", False)
    assert d["segment.bytes"] == ("1073741824", True)
    assert d["cleanup.policy"] == ("delete", True)
    assert d["max.message.bytes"] == ("1048588", True)
    assert d["message.timestamp.type"] == ("CreateTime", True)
    assert d["retention.bytes"] == ("-1", True)
    assert d["min.insync.replicas"] == ("1", True)
    assert d["compression.type"] == ("producer", True)
    assert code_of(m.describe_configs, "nope") == E.UNKNOWN_TOPIC_OR_PARTITION


def test_returned_topics_are_copies():
    m = machine_with_brokers(1)
    t = create(m, "t", configs={"retention.ms": "1000"})
    t.configs["retention.ms"] = "1"
    m.topics()[0].configs.clear()
    assert m.topic("t").configs == {"retention.ms": "1000"}
    with pytest.raises(AttributeError):
        t.name = "other"  # type: ignore[misc]


def test_producer_ids():
    m = machine_with_brokers(1)
    run(m, m.allocate_producer_ids(1000))
    run(m, m.allocate_producer_ids(5))
    assert m.next_producer_id == 1005
    assert code_of(m.allocate_producer_ids, 0) == E.INVALID_REQUEST


def test_apply_rejects_unknown_records():
    m = MetadataMachine()
    with pytest.raises(ValueError):
        m.apply({"type": "launch-rockets"})


def test_a_restored_topic_keeps_the_topic_id_it_asks_for(make_coordinator):
    """The supervisor re-creates topics after the coordinator's journal was destroyed with the id
    each had (sandbox.restore.topic.id, never stored as a config); a bad, zero or taken id is
    refused in one sentence."""
    from sandbox.protocol.extensions import RESTORE_TOPIC_ID
    c = make_coordinator()
    c.register_broker(1, "127.0.0.1", 9092)
    tid = uuid.uuid4()
    t = c.create_topic("kept", 1, 1, {RESTORE_TOPIC_ID: str(tid), "retention.ms": "1000"})
    assert t.topic_id == tid and dict(t.configs) == {"retention.ms": "1000"}
    assert c.create_topic("fresh", 1, 1).topic_id not in (tid, None)
    for bad, code, words in (("not-a-uuid", E.INVALID_CONFIG, "not a topic id"),
                             (str(uuid.UUID(int=0)), E.INVALID_CONFIG, "zero id"),
                             (str(tid), E.INVALID_REQUEST, "already in use")):
        with pytest.raises(CoordinatorError) as e:
            c.create_topic("other", 1, 1, {RESTORE_TOPIC_ID: bad})
        assert e.value.error_code == code and words in str(e.value)
    assert c.topic("other") is None
