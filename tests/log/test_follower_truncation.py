"""A follower's log against its leader's, through the real ReplicaFetcher and the real
OffsetForLeaderEpoch answer (k23), over the Windows file rules (segments deleted and cut while
held open elsewhere are refused there):

- KIP-279: when the leader answers an older epoch than the one the follower asked about and the
  follower never had that epoch, the follower cuts to the end of its own older epoch and asks
  again, until both agree on an epoch; cut once at the leader's answer, it kept another leader's
  records below it (found by review: a clean preferred election makes this history);
- an empty follower whose fetch offset is a leader log start inside a batch (DeleteRecords)
  starts at the batch's base, as Kafka's does, instead of refusing the batch forever;
- a follower's log start follows its leader's (DeleteRecords, retention), as far as its high
  watermark, so deleted records never come back when it leads."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from sandbox.broker.handlers import k23_offset_for_leader_epoch as k23
from sandbox.broker.replication.fetcher import ReplicaFetcher
from sandbox.log import LogConfig, OffsetOutOfRangeError, PartitionLog, iter_batches, iter_records
from sandbox.protocol.errors import FENCED_LEADER_EPOCH, NONE, OFFSET_OUT_OF_RANGE, UNKNOWN_LEADER_EPOCH

from .logkit import batch

KEY = ("t", 0)


class LeaderState:
    """What k23 reads of the leader broker's state."""

    def __init__(self, plog: PartitionLog, epoch: int) -> None:
        self.partitions = {KEY: plog}
        self.leaders = {KEY: (2, epoch)}

    def led_log(self, topic, index):
        return self.partitions[(topic, index)], NONE

    def leader_epoch_error(self, topic, index, asked):
        current = self.leaders[(topic, index)][1]
        if asked is None or asked < 0 or asked == current:
            return NONE
        return FENCED_LEADER_EPOCH if asked < current else UNKNOWN_LEADER_EPOCH


class LeaderConn:
    """The leader's connection: OffsetForLeaderEpoch answered by the real handler, counted."""

    def __init__(self, state: LeaderState) -> None:
        self.state = state
        self.asked: list[int] = []

    async def request(self, body, timeout):
        topics = []
        for t in body.topics:
            self.asked.extend(p.leader_epoch for p in t.partitions)
            parts = [SimpleNamespace(**k23._one(self.state, t.topic, p)) for p in t.partitions]
            topics.append(SimpleNamespace(topic=t.topic, partitions=parts))
        return SimpleNamespace(topics=topics)


def fetcher_of(follower: PartitionLog, leader: PartitionLog, epoch: int) -> tuple[ReplicaFetcher, LeaderConn]:
    manager = SimpleNamespace(state=SimpleNamespace(partitions={KEY: follower}, node_id=3, storage_failing=False),
                              emit=lambda *a: None, closed=False)
    f = ReplicaFetcher(manager, leader=2)
    f.partitions[KEY] = epoch
    f._truncate.add(KEY)
    conn = LeaderConn(LeaderState(leader, epoch))
    f._conn = conn
    return f, conn


def truncate(f: ReplicaFetcher, rounds: int = 10) -> None:
    """The fetcher's loop, truncation part: rounds until it fetches again (bounded)."""
    for _ in range(rounds):
        if KEY not in f._truncate:
            return
        asyncio.run(f._truncate_diverged())
    raise AssertionError(f"truncation not done after {rounds} rounds")


def fetch_all(f: ReplicaFetcher, follower: PartitionLog, leader: PartitionLog) -> None:
    """The fetcher's loop, fetch part, as the leader's Fetch handler answers it (bounded)."""
    for _ in range(50):
        if KEY in f._truncate:
            truncate(f)
            continue
        at = follower.log_end_offset
        if at == leader.log_end_offset and follower.log_start_offset >= leader.log_start_offset:
            return
        try:
            data, code = (leader.read(at, 1 << 20).tobytes() if at < leader.log_end_offset else b""), NONE
        except OffsetOutOfRangeError:
            data, code = b"", OFFSET_OUT_OF_RANGE
        f._apply(KEY, SimpleNamespace(error_code=code, records=data, high_watermark=leader.high_watermark,
                                      log_start_offset=leader.log_start_offset), at)
    raise AssertionError(f"follower stuck at {follower.log_end_offset}, leader at {leader.log_end_offset}")


def records(plog: PartitionLog) -> dict[int, tuple[int, bytes]]:
    """offset -> (leader epoch of its batch, value), from the log start."""
    out = {}
    at = plog.log_start_offset
    if at >= plog.log_end_offset:
        return out
    data = memoryview(plog.read(at, 1 << 30).tobytes())
    for pos, h in iter_batches(data):
        for off, _ts, _k, v, _h in iter_records(data[pos:pos + h.size]):
            if off >= at:
                out[off] = (h.leader_epoch, bytes(v))
    return out


def cfg() -> LogConfig:
    return LogConfig(segment_bytes=2048, index_interval_bytes=128)   # several segments: cuts delete files


def follower(path, source: PartitionLog | None = None, upto: int | None = None) -> PartitionLog:
    plog = PartitionLog(path, cfg())
    plog.replica.set_replicated(True)
    if source is not None:
        plog.replica.append(source.read(0, 1 << 30, max_offset=upto).tobytes())
    return plog


def test_a_follower_that_never_had_the_leaders_epoch_asks_again_until_both_agree(tmp_path, windows_files):
    a = PartitionLog(tmp_path / "a", cfg())        # epoch 1's leader
    a.append(batch(40, tag="common"), leader_epoch=1)
    a.append(batch(10, tag="a-only"), leader_epoch=1)   # 40..49 reached f, not b
    b = follower(tmp_path / "b", a, upto=40)
    f = follower(tmp_path / "f", a)
    b.replica.begin_epoch(2)                     # epoch 2: b leads (a fenced), f away but in the ISR
    b.append(batch(10, tag="b2x"), leader_epoch=2)
    b.append(batch(10, tag="b2y"), leader_epoch=2)
    f.replica.begin_epoch(3)                     # epoch 3: a preferred election gives f the lead
    f.append(batch(50, tag="f3"), leader_epoch=3)
    b.replica.begin_epoch(4)                     # epoch 4: b leads again; f follows it
    b.replica.high_watermark = b.log_end_offset  # b alone in the ISR: 40..59 are committed, read

    fetcher, conn = fetcher_of(f, b, 4)
    truncate(fetcher)
    assert conn.asked == [3, 1], "asked about f's epoch 3 (b answers 2, unknown to f), then f's epoch 1"
    assert f.log_end_offset == 40 and f.replica.latest_epoch == 1
    fetch_all(fetcher, f, b)
    assert records(f) == records(b)
    assert records(f)[40] == (2, b"value-b2x-0")


def test_an_epoch_that_wrote_nothing_is_forgotten_so_truncation_ends(tmp_path, windows_files):
    a = PartitionLog(tmp_path / "a", cfg())
    a.append(batch(20, tag="common"), leader_epoch=1)
    b = follower(tmp_path / "b", a)
    f = follower(tmp_path / "f", a)
    b.replica.begin_epoch(2)
    b.append(batch(5, tag="b2"), leader_epoch=2)
    f.replica.begin_epoch(3)                     # f led in epoch 3 but wrote nothing
    b.replica.begin_epoch(4)
    fetcher, conn = fetcher_of(f, b, 4)
    truncate(fetcher)
    assert conn.asked == [3, 1]
    assert f.replica.latest_epoch == 1 and f.log_end_offset == 20
    fetch_all(fetcher, f, b)
    assert records(f) == records(b)


def test_agreeing_epochs_take_one_round_as_before(tmp_path, windows_files):
    leader = PartitionLog(tmp_path / "l", cfg())
    leader.append(batch(30, tag="x"), leader_epoch=1)
    f = follower(tmp_path / "f", leader)
    f.append(batch(10, tag="unreplicated"), leader_epoch=1)   # f led epoch 1's end alone
    leader.replica.begin_epoch(2)
    leader.append(batch(5, tag="y"), leader_epoch=2)
    fetcher, conn = fetcher_of(f, leader, 2)
    truncate(fetcher)
    assert conn.asked == [1] and f.log_end_offset == 30
    fetch_all(fetcher, f, leader)
    assert records(f) == records(leader)


@pytest.mark.parametrize("start", [5, 7, 10])
def test_an_empty_follower_fetching_from_a_log_start_inside_a_batch_catches_up(tmp_path, windows_files, start):
    leader = PartitionLog(tmp_path / "l", cfg())
    leader.append(batch(10, tag="a"), leader_epoch=1)          # one batch, offsets 0..9
    leader.append(batch(10, tag="b"), leader_epoch=1)
    leader.delete_records_before(start)                        # DeleteRecords, into the first batch
    f = follower(tmp_path / "f")
    f.replica.reset_to(start)                                  # a new replica starts at the leader's log start
    fetcher, _ = fetcher_of(f, leader, 1)
    fetcher._truncate.clear()
    fetch_all(fetcher, f, leader)
    assert f.log_end_offset == 20 and f.log_start_offset == start
    assert records(f) == records(leader)
    assert min(records(f)) == start


def test_a_follower_follows_its_leaders_log_start_up_to_its_high_watermark(tmp_path, windows_files):
    leader = PartitionLog(tmp_path / "l", cfg())
    for i in range(6):
        leader.append(batch(10, tag=f"s{i}"), leader_epoch=1)   # several segments
    f = follower(tmp_path / "f")
    fetcher, _ = fetcher_of(f, leader, 1)
    fetcher._truncate.clear()
    leader.replica.high_watermark = 30
    fetch_all(fetcher, f, leader)
    assert f.log_start_offset == 0 and f.high_watermark == 30
    leader.delete_records_before(25)        # acknowledged to the admin client
    leader.replica.high_watermark = 60
    f._high_watermark = 20                  # (as if its last answer said 20): capped there
    fetcher._apply(KEY, SimpleNamespace(error_code=NONE, records=b"", high_watermark=20,
                                        log_start_offset=25), f.log_end_offset)
    assert f.log_start_offset == 20
    fetcher._apply(KEY, SimpleNamespace(error_code=NONE, records=b"", high_watermark=60,
                                        log_start_offset=25), f.log_end_offset)
    assert f.log_start_offset == 25
    assert min(records(f)) == 25 and records(f) == records(leader)
    with pytest.raises(OffsetOutOfRangeError):
        f.read(10, 1 << 20)


def test_a_compaction_pass_read_before_a_truncation_is_not_installed_after_it(tmp_path, windows_files):
    """Found by review: a compaction pass had read the segments when the follower truncated and
    fetched the new leader's records, of the same sizes; install() compared only bases and sizes,
    so it swapped in segments computed from the cut records: the new leader's records were gone
    and the cut `old-7` came back. Now the pass is dropped and the next one starts over. (The cut
    falls on a segment's base: the appends after a cut go to a new segment at the cut, so only
    then do the segments come back with the same bases and sizes.)"""
    from sandbox.log import build_batch
    from sandbox.log.compactor import Compactor

    def put(log, key, value):
        log.append(build_batch([(key, value)], timestamp_ms=1_000))

    def records(log):
        return [(o, k, v) for o, _ts, k, v, _h in iter_records(log.read(log.log_start_offset, 1 << 24).tobytes())]

    log = PartitionLog(tmp_path / "c-0", LogConfig(segment_bytes=180, index_interval_bytes=64, cleanup_policy="compact"))
    for i in range(8):
        put(log, b"a", b"old-%d" % i)
    log.housekeeping.roll()
    segments = log.housekeeping.segment_count
    c = Compactor(log)
    for _ in range(len(c.cleanable(10**13))):
        assert c.step(10**13) is True        # every segment read, its .cleaned written; install next
    assert 4 in log._bases
    log.truncate_to(4)                       # a new leader: cut at 4, its records 4..7 fetched
    for i in range(4, 8):
        put(log, b"b", b"new-%d" % i)        # the same sizes as the records cut
    log.housekeeping.roll()
    assert log.housekeeping.segment_count == segments
    while c.step(10**13):
        pass
    got = records(log)
    assert [r for r in got if r[1] == b"b"][-1] == (7, b"b", b"new-7")
    assert (7, b"a", b"old-7") not in got
    offsets = [o for o, _k, _v in got]
    assert offsets == sorted(set(offsets)) and offsets[-4:] == [4, 5, 6, 7]


def test_a_new_replica_of_a_compacted_partition_copies_it_past_the_gaps(tmp_path, windows_files):
    """Found by review: the leader's compaction had removed its first batches, so its first batch
    started past 0; a new replica (a reassignment, a broker whose journal was quarantined) refused
    it as "not at the log end" on every fetch and never caught up. Kafka's follower takes a batch
    starting past its log end."""
    from sandbox.log import build_batch
    from sandbox.log.compactor import Compactor

    leader = PartitionLog(tmp_path / "l", LogConfig(segment_bytes=1 << 20, cleanup_policy="compact"))
    for key, value in ((b"k", b"old"), (b"x", b"1"), (b"k", b"new")):
        leader.append(build_batch([(key, value)], timestamp_ms=1_000), leader_epoch=1)
    leader.housekeeping.roll()
    leader.append(build_batch([(b"z", b"1")], timestamp_ms=1_000), leader_epoch=1)
    c = Compactor(leader)
    while c.step(10**13):
        pass
    assert min(records(leader)) == 1   # the first batch went
    f = follower(tmp_path / "f")
    fetcher, _ = fetcher_of(f, leader, 1)
    fetcher._truncate.clear()
    fetch_all(fetcher, f, leader)
    assert records(f) == records(leader) and f.log_end_offset == leader.log_end_offset == 4


def test_a_cut_on_a_segment_base_after_compaction_took_the_end_before_it_keeps_the_log_end_and_producers(tmp_path):
    """Found by review: a follower's cut at its high watermark, a segment's base, dropped that
    segment; the segment before ended earlier (compaction had removed its last batch, a
    producer's), so the log end and the high watermark fell below the cut, the snapshot at the cut
    was removed as past the log end, and the producer was forgotten: its retry was written twice."""
    from sandbox.log import build_batch
    from sandbox.log.compactor import Compactor

    log = PartitionLog(tmp_path / "c-0", LogConfig(segment_bytes=1 << 20, cleanup_policy="compact",
                                                   delete_retention_ms=0))
    log.replica.set_replicated(True)
    log.append(build_batch([(b"z", b"1")], timestamp_ms=1_000))
    retry = build_batch([(b"k", None)], timestamp_ms=1_000, producer_id=7, producer_epoch=0, base_sequence=0)
    log.append(retry)                    # a tombstone, the segment's last batch: compaction removes it
    log.housekeeping.roll()              # (not the producer's last batch, which compaction keeps)
    log.append(build_batch([(b"y", b"diverged")], timestamp_ms=1_000, producer_id=7, producer_epoch=0,
                           base_sequence=1))
    log.replica.high_watermark = 2
    c = Compactor(log)
    while c.step(10**13):
        pass
    assert log._segments[0].next_offset == 1   # the tombstone went
    log.truncate_to(2)                   # the follower cuts at its high watermark, the second segment's base
    assert log.log_end_offset == 2 and log.high_watermark == 2
    again = log.append(retry)
    assert again.duplicate and again.first_offset == 1


def test_an_epoch_first_seen_past_a_compacted_gap_begins_at_the_gap_so_no_follower_keeps_uncommitted_records(
        tmp_path, windows_files):
    """Found by review: a new replica B copied a compacted leader A whose epoch 6 began at 10, but
    10..14 had been compacted away, so B noted epoch 6 as beginning at 15. Once B led, C (which,
    leading epoch 5 alone, had written 10..12 that were never committed) asked where epoch 5 ended,
    was told 15, cut nothing, and kept 10..12 for good: records no leader ever had."""
    from sandbox.log import build_batch
    from sandbox.log.compactor import Compactor

    def rec(k, v):
        return build_batch([(k, v)], timestamp_ms=1_000)

    cc = LogConfig(segment_bytes=1 << 20, cleanup_policy="compact")
    a = PartitionLog(tmp_path / "a", cc)
    a.replica.set_replicated(True)
    c = PartitionLog(tmp_path / "c", cc)
    c.replica.set_replicated(True)
    for i in range(10):
        a.append(rec(b"k%d" % i, b"v"), leader_epoch=5)
    c.replica.append(a.read(0, 1 << 30).tobytes())
    for i in range(3):   # C led epoch 5 and wrote 10..12 alone, then went away
        c.append(rec(b"div%d" % i, b"never-committed"), leader_epoch=5)
    a.replica.begin_epoch(6)   # A elected in epoch 6 at 10
    for i in range(5):
        a.append(rec(b"x", b"old%d" % i), leader_epoch=6)   # 10..14, superseded by 15
    a.append(rec(b"x", b"new"), leader_epoch=6)
    a.housekeeping.roll()
    a.append(rec(b"z", b"1"), leader_epoch=6)
    a.replica.high_watermark = a.log_end_offset
    comp = Compactor(a)
    while comp.step(10**13):
        pass
    assert 10 not in records(a) and 15 in records(a)
    b = follower(tmp_path / "b")   # a new replica of A
    fb, _ = fetcher_of(b, a, 6)
    fb._truncate.clear()
    fetch_all(fb, b, a)
    b.replica.begin_epoch(7)       # A gone: B leads
    b.append(rec(b"w", b"1"), leader_epoch=7)
    b.replica.high_watermark = b.log_end_offset
    fc, _ = fetcher_of(c, b, 7)
    truncate(fc)
    fetch_all(fc, c, b)
    kept, leader = records(c), records(b)
    assert {o: kept[o] for o in kept if o not in leader} == {}
    assert kept == leader


def test_a_segment_emptied_by_a_cut_on_its_base_counts_segment_ms_from_its_next_append(tmp_path):
    """Found by review: the emptied segment kept its first roll time, so the append after the cut
    rolled at once on segment.ms, leaving one-batch segments behind each such cut."""
    log = PartitionLog(tmp_path / "t-0", LogConfig(segment_bytes=1 << 20, segment_ms=1_000))
    log.replica.set_replicated(True)
    log.append(batch(2, tag="a"), now_ms=0)
    log.housekeeping.roll()
    log.append(batch(2, tag="b"), now_ms=0)          # the second segment's time starts at 0
    log.truncate_to(2)                               # a cut on its base: kept, emptied
    log.append(batch(2, tag="c"), now_ms=60_000)
    log.append(batch(2, tag="d"), now_ms=60_001)     # 1 ms later: no roll
    assert log._bases == [0, 2] and log.log_end_offset == 6


def test_a_follower_whose_epochs_are_all_newer_than_the_leaders_answer_cuts_where_its_first_began(tmp_path):
    """Kafka's endOffsetFor: an epoch older than every one a log knows ended where the first
    known epoch began. Here all of f's records are of epoch 2, newer than the epoch the leader
    answers (0), so none of them is the leader's: f cuts at its first epoch's start. Before, f's
    own lookup answered "unknown" and f cut at the leader's answer, keeping epoch 2's records at
    offsets where the leader has epoch 0's (a partition put back after the coordinator's journal
    was lost starts at a leader epoch above 0)."""
    leader = PartitionLog(tmp_path / "l", cfg())
    leader.append(batch(10, tag="leader0"), leader_epoch=0)
    f = follower(tmp_path / "f")
    f.replica.begin_epoch(2)                                   # f led epoch 2 alone, wrote 0..14
    for i in range(3):
        f.append(batch(5, tag=f"f2-{i}-"), leader_epoch=2)
    assert f.replica.end_offset_for_epoch(0) == (0, 0)
    leader.replica.begin_epoch(3)                              # the leader comes back in epoch 3
    leader.replica.high_watermark = leader.log_end_offset
    fetcher, conn = fetcher_of(f, leader, 3)
    truncate(fetcher)
    assert conn.asked[0] == 2 and f.log_end_offset == 0
    fetch_all(fetcher, f, leader)
    assert records(f) == records(leader)


def test_offset_for_leader_epoch_answers_as_kafkas_end_offset_for(tmp_path):
    """Only current_leader_epoch is checked against the partition's epoch; the epoch asked about
    is answered from the cache: newer than any known -1/-1 (error NONE), older than all of them
    the first one's start."""
    leader = PartitionLog(tmp_path / "l", cfg())
    leader.replica.begin_epoch(2)
    leader.append(batch(10, tag="x"), leader_epoch=2)
    leader.replica.begin_epoch(3)
    leader.append(batch(5, tag="y"), leader_epoch=3)
    state = LeaderState(leader, 3)

    def ask(epoch, current=-1):
        out = k23._one(state, "t", SimpleNamespace(partition=0, leader_epoch=epoch, current_leader_epoch=current))
        return out["error_code"], out["leader_epoch"], out["end_offset"]

    assert ask(3) == (NONE, 3, 15) and ask(2, 3) == (NONE, 2, 10)
    assert ask(5) == ask(5, 3) == (NONE, -1, -1)          # before: UNKNOWN_LEADER_EPOCH, asked again for ever
    assert ask(0) == (NONE, 0, 0)                         # before: -1/-1, a consumer's reset
    assert ask(3, 4)[0] == UNKNOWN_LEADER_EPOCH and ask(3, 2)[0] == FENCED_LEADER_EPOCH
