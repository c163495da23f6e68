"""Committed offsets in `__consumer_offsets`: Kafka's partition choice (Java's String.hashCode),
its OffsetCommitKey/OffsetCommitValue bytes, and the store over a broker's led partitions
(views read from the log on leadership, dropped when it goes, tombstones, ISR-wait error
mapping, the old offsets.journal moved in once)."""

from __future__ import annotations

import asyncio
import struct
import uuid
from types import SimpleNamespace

import pytest

from sandbox.broker.offsets import JOURNAL, OffsetStore
from sandbox.broker.offsets_records import (
    decode_key, decode_value, encode_key, encode_value, partition_for,
)
from sandbox.broker.offsets_topic import OffsetsNotWritable, TopicOffsetStore
from sandbox.client.partitioner import java_string_hashcode
from sandbox.coordinator.model import PartitionInfo, TopicInfo
from sandbox.log import LogConfig, LogDir
from sandbox.protocol.errors import (
    COORDINATOR_NOT_AVAILABLE, NONE, NOT_COORDINATOR, NOT_ENOUGH_REPLICAS, NOT_ENOUGH_REPLICAS_AFTER_APPEND,
    NOT_LEADER_OR_FOLLOWER,
)

OFFSETS = "__consumer_offsets"


# ---- Kafka's partition choice ----------------------------------------------------------------
@pytest.mark.parametrize("text, expected", [
    ("", 0), ("a", 97), ("hello", 99162322), ("Aa", 2112), ("BB", 2112),
    ("polygenelubricants", -2147483648),       # the string whose hashCode is Integer.MIN_VALUE
    ("\U0001F600", 0xD83D * 31 + 0xDE00),      # outside the BMP: two UTF-16 code units
    ("é", 0xE9),
])
def test_java_string_hashcode(text, expected):
    assert java_string_hashcode(text) == expected


def test_partition_for_is_kafkas_abs_hashcode_modulo():
    assert partition_for("hello", 50) == 99162322 % 50
    assert partition_for("polygenelubricants", 7) == 0          # Utils.abs(MIN_VALUE) == 0
    neg = next(s for s in (f"group-{i}" for i in range(1000)) if java_string_hashcode(s) < 0)
    assert partition_for(neg, 10) == abs(java_string_hashcode(neg)) % 10
    assert {partition_for(f"g{i}", 10) for i in range(200)} == set(range(10))


# ---- Kafka's record format ---------------------------------------------------------------------
def test_offset_commit_key_and_value_bytes_are_kafkas():
    assert encode_key("g", "t", 3) == b"\x00\x01" + b"\x00\x01g" + b"\x00\x01t" + b"\x00\x00\x00\x03"
    assert encode_value(5, 2, "m", 1000) == (b"\x00\x03" + struct.pack(">q", 5) + struct.pack(">i", 2)
                                             + b"\x00\x01m" + struct.pack(">q", 1000))
    assert decode_key(encode_key("grüppe", "tópic", 7)) == ("grüppe", "tópic", 7)
    assert decode_value(encode_value(42, -1, "", 9)) == (42, -1, "", 9)


def test_older_value_versions_and_other_keys_are_read():
    v1 = b"\x00\x01" + struct.pack(">q", 7) + b"\x00\x02md" + struct.pack(">q", 11) + struct.pack(">q", 99)
    assert decode_value(v1) == (7, -1, "md", 11)
    v0 = b"\x00\x00" + struct.pack(">q", 8) + b"\x00\x00" + struct.pack(">q", 12)
    assert decode_value(v0) == (8, -1, "", 12)
    assert decode_key(b"\x00\x02\x00\x01g") is None   # GroupMetadataKey: not an offset
    assert decode_key(b"\x00\x00\x00\x01g\x00\x01t\x00\x00\x00\x01") == ("g", "t", 1)


# ---- the store over a broker's partitions ------------------------------------------------------
class FakeState:
    """What the store uses of BrokerState: one broker leading every partition, RF 1 unless told."""

    def __init__(self, root, partitions: int = 4, node: int = 1) -> None:
        self.node_id = node
        self.logs = LogDir(root, LogConfig(cleanup_policy="compact"))
        self.partitions = {(OFFSETS, i): self.logs.create(OFFSETS, i) for i in range(partitions)}
        self.leaders: dict = {}
        self.info = None
        self.coordinator = SimpleNamespace(topic=lambda name: self.info if name == OFFSETS else None,
                                           partition_count=lambda name: len(self.info.partitions)
                                           if name == OFFSETS and self.info is not None else 0,
                                           brokers=lambda: [])
        self.wait_code = NONE
        self.waited: list = []
        self.replicated_keys: set = set()
        self.replicas = SimpleNamespace(replicated=lambda k: k in self.replicated_keys,
                                        check_produce=lambda k, acks: self.produce_code,
                                        appended=lambda k: None, wait_for_replicas=self._wait)
        self.produce_code = NONE
        self.notifier = SimpleNamespace(notify=lambda k: None)
        self.groups = None
        self.lead(range(partitions), epoch=0)

    def restoring(self) -> bool:
        return False

    async def _wait(self, key, offset, timeout, epoch=None):
        self.waited.append((key, offset))
        return self.wait_code

    def lead(self, indexes, epoch: int) -> None:
        indexes = set(indexes)
        n = len(self.partitions)
        parts = [PartitionInfo(i, (1, 2), (1, 2), self.node_id if i in indexes else 2, epoch) for i in range(n)]
        self.info = TopicInfo(OFFSETS, uuid.UUID(int=1), parts)
        self.leaders = {(OFFSETS, p.index): (p.leader, p.leader_epoch) for p in parts}


@pytest.fixture
def state(tmp_path):
    s = FakeState(tmp_path / "data")
    yield s
    s.logs.close()


T = 1_000_000   # the stores' wall clock, in ms: every commit's timestamp


def store_for(state, **kw) -> TopicOffsetStore:
    kw.setdefault("clock", lambda: T / 1000)
    store = TopicOffsetStore(state, partitions=4, fsync=False, **kw)
    store.on_metadata()
    return store


def test_commits_are_records_read_back_by_the_next_leader(state):
    a = store_for(state)
    a.commit("g1", [("t", 0, 5, 1, "m"), ("t", 1, 7, -1, "")])
    a.commit("g1", [("t", 0, 6, 1, "")])
    a.commit("g2", [("u", 0, 3, -1, "x")])
    index = partition_for("g1", 4)
    plog = state.partitions[(OFFSETS, index)]
    assert plog.log_end_offset >= 3 and a.leads("g1")
    # another leader (a new store, as after a failover) reads the same log
    b = store_for(state)
    assert b.get("g1", "t", 0) == (6, 1, "", T)   # the commit time comes back too
    assert b.group_offsets("g1") == {("t", 0): (6, 1, "", T), ("t", 1): (7, -1, "", T)}
    assert b.get("g2", "u", 0) == (3, -1, "x", T)
    assert sorted(b.groups()) == ["g1", "g2"]


def test_leadership_lost_drops_the_view_and_refuses_writes_then_reloads(state):
    s = store_for(state)
    s.commit("g", [("t", 0, 5, -1, "")])
    index = partition_for("g", 4)
    state.lead([i for i in range(4) if i != index], epoch=1)
    s.on_metadata()
    assert not s.leads("g") and s.get("g", "t", 0) is None and "g" not in s.groups()
    with pytest.raises(OffsetsNotWritable) as e:
        s.commit("g", [("t", 0, 6, -1, "")])
    assert e.value.error_code == NOT_COORDINATOR
    state.lead(range(4), epoch=2)
    s.on_metadata()
    assert s.leads("g") and s.get("g", "t", 0).offset == 5


def test_deletes_are_tombstones(state):
    s = store_for(state)
    s.commit("g", [("t", 0, 1, -1, ""), ("t", 1, 2, -1, ""), ("u", 0, 3, -1, "")])
    s.commit("h", [("t", 0, 4, -1, "")])
    s.delete_partitions("g", [("t", 1)])
    assert s.delete_topic("u") == 1
    assert s.delete_group("h") and not s.delete_group("h")
    again = store_for(state)
    assert again.group_offsets("g") == {("t", 0): (1, -1, "", T)}
    assert "h" not in again.groups()
    index = partition_for("h", 4)
    _, _, key, value, _ = list(_records(state, index))[-1]
    assert decode_key(key) == ("h", "t", 0) and value is None


def _records(state, index):
    from sandbox.log.batch import iter_records
    plog = state.partitions[(OFFSETS, index)]
    return iter_records(plog.read(0, 1 << 20).tobytes())


def test_writes_wait_for_the_isr_and_map_errors_as_kafka_does(state):
    s = store_for(state)
    key = (OFFSETS, partition_for("g", 4))
    state.replicated_keys.add(key)
    s.commit("g", [("t", 0, 1, -1, "")])
    assert asyncio.run(s.replicated("g", 1.0)) == NONE
    assert state.waited == [(key, state.partitions[key].log_end_offset - 1)]
    assert asyncio.run(s.replicated("g", 1.0)) == NONE and len(state.waited) == 1   # nothing pending
    for code, expected in [(NOT_ENOUGH_REPLICAS_AFTER_APPEND, COORDINATOR_NOT_AVAILABLE),
                           (NOT_LEADER_OR_FOLLOWER, NOT_COORDINATOR)]:
        state.wait_code = code
        s.commit("g", [("t", 0, 2, -1, "")])
        assert asyncio.run(s.replicated("g", 1.0)) == expected
    state.produce_code = NOT_ENOUGH_REPLICAS   # the ISR is smaller than min.insync.replicas
    with pytest.raises(OffsetsNotWritable) as e:
        s.commit("g", [("t", 0, 3, -1, "")])
    assert e.value.error_code == COORDINATOR_NOT_AVAILABLE


def test_the_journal_of_earlier_versions_moves_into_the_topic_once(state, tmp_path):
    legacy = tmp_path / "data" / OFFSETS
    with OffsetStore(legacy) as old:
        old.commit("g1", [("t", 0, 10, 2, "meta")])
        old.commit("g2", [("t", 1, 20, -1, "")])
        old.commit("gone", [("t", 0, 1, -1, "")])
        old.delete_group("gone")
    s = store_for(state, legacy_dir=legacy)
    assert s.get("g1", "t", 0) == (10, 2, "meta", T) and s.get("g2", "t", 1) == (20, -1, "", T)
    assert "gone" not in s.groups()
    assert not (legacy / JOURNAL).exists() and (legacy / (JOURNAL + ".migrated")).exists()
    assert not s.has_legacy()
    again = store_for(state, legacy_dir=legacy)   # read from the topic now, nothing migrated twice
    assert again.get("g1", "t", 0) == (10, 2, "meta", T)
    assert sum(1 for _ in _records(state, partition_for("g1", 4))) == 1


def test_a_journal_whose_groups_are_led_elsewhere_stays(state, tmp_path):
    legacy = tmp_path / "data" / OFFSETS
    with OffsetStore(legacy) as old:
        old.commit("g1", [("t", 0, 10, -1, "")])
    state.lead([i for i in range(4) if i != partition_for("g1", 4)], epoch=0)
    s = store_for(state, legacy_dir=legacy)
    assert s.has_legacy() and (legacy / JOURNAL).exists() and s.get("g1", "t", 0) is None
    state.lead(range(4), epoch=1)
    s.on_metadata()
    assert s.get("g1", "t", 0).offset == 10 and not s.has_legacy()


def test_an_unreadable_transactional_offsets_record_is_skipped_at_load(state):
    """A transactional batch in `__consumer_offsets` with a key too short to read (written by
    another tool, or damaged): skipped with a warning, as an unreadable plain record is; it
    stopped the partition from ever loading (its groups NOT_COORDINATOR for good)."""
    from sandbox.broker.internal_log import append_records
    s = store_for(state)
    s.commit("g", [("t", 0, 5, -1, "")])
    index = partition_for("g", 4)
    append_records(state, (OFFSETS, index), [(b"\x00\x01\x00", b"\x00\x03")], False, producer=(9, 0))
    again = store_for(state)
    assert again.leads("g") and again.get("g", "t", 0).offset == 5


def test_a_commit_is_seen_once_the_isr_has_it_as_kafkas_coordinator_reads_at_its_last_committed_offset(state):
    """One another member read before the ISR had it, then lost with the leader, had the group
    read its records again; one whose ISR wait failed stayed visible."""
    s = store_for(state)
    s.commit("g", [("t", 0, 5, -1, "")])
    index = partition_for("g", 4)
    plog = state.partitions[(OFFSETS, index)]
    plog.replica.set_replicated(True)         # followers now: the high watermark waits for them
    plog.replica.high_watermark = first = plog.log_end_offset
    s.commit("g", [("t", 0, 9, -1, ""), ("t", 1, 3, -1, "")])
    assert s.get("g", "t", 0).offset == 5 and s.get("g", "t", 1) is None
    assert s.txn_pending("g", "t", 0)         # OffsetFetch with require_stable: UNSTABLE_OFFSET_COMMIT
    plog.replica.high_watermark = first + 1   # the ISR has the first of the two records
    assert s.get("g", "t", 0).offset == 9 and s.get("g", "t", 1) is None
    plog.replica.high_watermark = plog.log_end_offset
    assert s.group_offsets("g") == {("t", 0): (9, -1, "", T), ("t", 1): (3, -1, "", T)}
    assert not s.txn_pending("g", "t", 1)


def test_offsets_deleted_while_a_commit_waits_for_the_isr_do_not_come_back(state):
    s = store_for(state)
    index = partition_for("g", 4)
    plog = state.partitions[(OFFSETS, index)]
    plog.replica.set_replicated(True)
    s.commit("g", [("t", 0, 9, -1, ""), ("u", 0, 4, -1, "")])
    assert s.group_offsets("g") == {}
    s.delete_topic("t")                       # tombstone for t-0, written after the commit
    assert s.delete_group("g")               # and the rest of the group
    plog.replica.high_watermark = plog.log_end_offset
    assert s.group_offsets("g") == {} and "g" not in s.groups()
    again = store_for(state)                  # the next leader reads the same
    assert again.group_offsets("g") == {}


def test_a_plain_commit_settling_late_never_replaces_a_transactions_later_one(state):
    s = store_for(state)
    index = partition_for("g", 4)
    plog = state.partitions[(OFFSETS, index)]
    plog.replica.set_replicated(True)
    s.commit("g", [("t", 0, 5, -1, "")])      # plain, record r
    s.commit_txn("g", 9, 0, [("t", 0, 8, -1, "")])   # transactional, record r + 1
    plog.replica.high_watermark = plog.log_end_offset
    assert s.complete_txn(index, 9, True) == 1
    assert s.get("g", "t", 0).offset == 8     # the plain one settles first, then the transaction's


def test_a_new_leader_sees_the_commits_past_its_high_watermark_once_the_isr_has_them(state):
    s = store_for(state)
    index = partition_for("g", 4)
    plog = state.partitions[(OFFSETS, index)]
    s.commit("g", [("t", 0, 5, -1, "")])
    plog.replica.set_replicated(True)
    plog.replica.high_watermark = plog.log_end_offset
    s.commit("g", [("t", 0, 9, -1, "")])
    again = store_for(state)                  # a failover: the new leader reads its whole log
    assert again.get("g", "t", 0).offset == 5 and again.txn_pending("g", "t", 0)
    plog.replica.high_watermark = plog.log_end_offset
    assert again.get("g", "t", 0).offset == 9 and not again.txn_pending("g", "t", 0)


def test_offset_delete_and_delete_groups_remove_commits_not_on_the_isr_yet(state):
    from sandbox.broker.groups import GroupCoordinator
    s = store_for(state)
    gc = GroupCoordinator(s, peers=None)
    plog = state.partitions[(OFFSETS, partition_for("h", 4))]
    plog.replica.set_replicated(True)
    plog.replica.high_watermark = plog.log_end_offset
    assert gc.commit_offsets("h", -1, "", None, [("t", 2, 7, -1, "")]) == [("t", 2, NONE)]
    code, results = gc.delete_offsets("h", [("t", 2)])
    assert (code, results) == (NONE, [("t", 2, NONE)])
    plog2 = state.partitions[(OFFSETS, partition_for("k", 4))]
    plog2.replica.set_replicated(True)
    plog2.replica.high_watermark = plog2.log_end_offset
    gc.commit_offsets("k", -1, "", None, [("t", 0, 3, -1, "")])   # a simple consumer's: no group state
    assert gc.delete_groups(["k"]) == [("k", NONE)]
    for p in (plog, plog2):
        p.replica.high_watermark = p.log_end_offset
    assert s.group_offsets("h") == {} and s.group_offsets("k") == {}


def test_a_group_with_a_commit_on_its_way_to_the_isr_is_not_expired(state):
    from sandbox.broker.groups import GroupCoordinator
    s = store_for(state)
    gc = GroupCoordinator(s, peers=None)
    gc.commit_offsets("e", -1, "", None, [("t", 0, 1, -1, "")])
    assert gc.expire_offsets(T, 1000) == {}                  # first seen now
    plog = state.partitions[(OFFSETS, partition_for("e", 4))]
    plog.replica.set_replicated(True)
    plog.replica.high_watermark = plog.log_end_offset
    gc.commit_offsets("e", -1, "", None, [("t", 1, 2, -1, "")])   # not on the ISR yet
    assert gc.expire_offsets(T + 10_000, 1000) == {}
    plog.replica.high_watermark = plog.log_end_offset
    assert s.group_offsets("e") == {("t", 0): (1, -1, "", T), ("t", 1): (2, -1, "", T)}
    assert gc.expire_offsets(T + 10_000, 1000) == {"e": 2}   # both old by their commit time now


def test_a_commit_of_more_than_one_batch_that_cannot_be_written_leaves_nothing(state, monkeypatch):
    """A commit of 1,200 offsets is three batches; the disk filling up after the first one
    left it in the log (and visible once replicated) while the commit was answered as failed.
    All of them go with one write now: whole or nothing."""
    import errno

    from sandbox.broker.internal_log import append_records
    from sandbox.log import segment as segment_mod

    s = store_for(state)
    s.commit("g", [("t", 0, 5, -1, "")])
    key = (OFFSETS, partition_for("g", 4))
    plog = state.partitions[key]
    before = plog.log_end_offset
    real = segment_mod.Segment._write_at
    room = {"left": 60_000}   # enough for one 500-record batch, not three

    def write_at(self, pos, data):
        if len(data) > room["left"]:
            raise OSError(errno.ENOSPC, "No space left on device")
        room["left"] -= len(data)
        return real(self, pos, data)

    monkeypatch.setattr(segment_mod.Segment, "_write_at", write_at)
    records = [(b"k%05d" % i, b"v" * 60) for i in range(1200)]
    with pytest.raises(OSError):
        append_records(state, key, records, False)
    assert plog.log_end_offset == before


def test_a_new_leader_applies_a_transactions_offsets_once_the_isr_has_its_marker(state):
    """A commit marker past a new leader's high watermark (its followers may not have it yet)
    waited for nothing: the transaction's offsets were seen at the load, as plain commits past it
    no longer are; lost with that leader, a group would have read them and gone back."""
    s = store_for(state)
    index = partition_for("g", 4)
    plog = state.partitions[(OFFSETS, index)]
    s.commit("g", [("t", 0, 5, -1, "")])
    s.commit_txn("g", 9, 0, [("t", 0, 8, -1, "")])
    plog.replica.set_replicated(True)
    plog.replica.high_watermark = plog.log_end_offset   # the transactional record is on the ISR
    plog.append_marker(9, 0, True, 0, leader_epoch=state.leaders[(OFFSETS, index)][1])
    again = store_for(state)                  # a failover before the followers fetched the marker
    assert again.get("g", "t", 0).offset == 5 and again.txn_pending("g", "t", 0)
    plog.replica.high_watermark = plog.log_end_offset
    assert again.get("g", "t", 0).offset == 8 and not again.txn_pending("g", "t", 0)
    later = store_for(state)                  # read again: all below the high watermark now
    assert later.get("g", "t", 0).offset == 8


def test_a_marker_applied_late_completes_only_the_transaction_it_ends(state):
    """The marker read back past the high watermark waits; meanwhile the same producer begins its
    next transaction and commits offsets in it. When the marker settles it must complete the first
    transaction only: the next one's offsets stay pending until their own marker (found by review:
    they were committed, and an abort would have had the group skip records)."""
    s = store_for(state)
    index = partition_for("g", 4)
    plog = state.partitions[(OFFSETS, index)]
    s.commit_txn("g", 9, 0, [("t", 0, 100, -1, "")])
    plog.replica.set_replicated(True)
    plog.replica.high_watermark = plog.log_end_offset
    plog.append_marker(9, 0, True, 0, leader_epoch=state.leaders[(OFFSETS, index)][1])
    again = store_for(state)                   # the marker is past the high watermark: it waits
    again.commit_txn("g", 9, 0, [("t", 0, 200, -1, "")])   # the producer's next transaction
    plog.replica.high_watermark = plog.log_end_offset
    assert again.get("g", "t", 0).offset == 100 and again.txn_pending("g", "t", 0)
    assert again.complete_txn(index, 9, False) == 0   # the second one aborts
    assert again.get("g", "t", 0).offset == 100 and not again.txn_pending("g", "t", 0)
