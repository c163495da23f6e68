"""Property: whatever removed batches before (compaction, DeleteRecords, a restart), a replica's
idempotent producer state after a cut at C (at or above its high watermark, as a follower's
truncation is) is the state of every batch ever written below C, as Kafka's truncateAndReload
gives it (the newest snapshot at or below C, then the log above
it). A log that rebuilt its state from the batches left on disk forgot a producer whose batches
compaction or DeleteRecords had removed: its valid next batch was refused OUT_OF_ORDER_SEQUENCE,
a retry of a removed batch was written twice, and a fenced (older) epoch was taken again."""
from __future__ import annotations

import itertools

from hypothesis import HealthCheck, Phase, example, given, settings, strategies as st

from sandbox.log import LogConfig, PartitionLog, build_batch
from sandbox.log.batch import ATTR_TRANSACTIONAL
from sandbox.log.compactor import Compactor
from sandbox.log.errors import InvalidProducerEpochError

_counter = itertools.count()
PIDS = (1000, 2000)
TXN = 3000   # a transactional producer: its batches, commit and abort markers

#: (what, producer, records, key, percent): appends the most, then each fault or housekeeping step
KINDS = ["append"] * 6 + ["txn", "txn", "end", "commit", "commit", "bump", "roll", "roll", "flush", "compact",
                          "compact", "delete", "cut", "cut", "reopen"]
op = st.tuples(st.sampled_from(KINDS), st.sampled_from(PIDS), st.integers(1, 3), st.sampled_from([b"a", b"b", b"c"]),
               st.integers(1, 99))


class Model:
    """Every batch ever written and not cut: (its last offset, pid, epoch, first seq, last seq, first offset)."""

    def __init__(self) -> None:
        self.batches: list[tuple[int, int, int, int, int, int]] = []
        self.epoch = {pid: 0 for pid in PIDS + (TXN,)}      # each producer's current epoch
        self.next_seq = {pid: 0 for pid in PIDS + (TXN,)}
        self.txns: list[list] = []   # TXN's transactions: [first offset, marker offset or None, aborted]

    def open_txn(self) -> list | None:
        return next((t for t in self.txns if t[1] is None), None)

    def aborted(self, first_base: int) -> list[tuple[int, int, int]]:
        """(pid, first offset, marker) of every abort whose marker's segment the log still has."""
        return [(TXN, f, m) for f, m, a in self.txns if a and m is not None and m >= first_base]

    def expected(self) -> dict[int, tuple[int, int, tuple[int, int, int, int]]]:
        """pid -> (epoch, last sequence, its last batch (first seq, last seq, first offset, last offset))."""
        out = {}
        for last, pid, epoch, fs, ls, first in self.batches:
            out[pid] = (epoch, ls, (fs, ls, first, last))
        return out

    def cut(self, offset: int) -> None:
        self.batches = [b for b in self.batches if b[0] < offset]
        self.txns = [[f, m if m is not None and m < offset else None, a and m is not None and m < offset]
                     for f, m, a in self.txns if f < offset]   # a cut marker: the transaction is open again
        # a client would re-learn where it stands (as after OUT_OF_ORDER_SEQUENCE and an epoch bump
        # in real life): go on from what the log keeps
        for pid in PIDS + (TXN,):
            mine = [b for b in self.batches if b[1] == pid]
            if mine:
                self.epoch[pid], self.next_seq[pid] = mine[-1][2], mine[-1][4] + 1
            else:
                self.epoch[pid] += 1
                self.next_seq[pid] = 0


def _replicated(log: PartitionLog) -> PartitionLog:
    """A replica's log: its high watermark moves only when the followers confirm (commit), which
    bounds what compaction cleans and what DeleteRecords removes; a cut never goes below it
    (only an unclean election's would, whose loss Kafka accepts too)."""
    log.replica.set_replicated(True)
    return log


def _check(log: PartitionLog, model: Model) -> None:
    state = log._producers.state.producers
    for pid, (epoch, last_seq, last_batch) in model.expected().items():
        entry = state.get(pid)
        assert entry is not None, f"producer {pid} forgotten (expected epoch {epoch}, last sequence {last_seq})"
        assert (entry.epoch, entry.last_sequence) == (epoch, last_seq), (pid, entry.epoch, list(entry.batches))
        assert entry.batches[-1] == last_batch, (pid, list(entry.batches), last_batch)
    txns = log._producers.txns
    assert [(e.producer_id, e.first_offset, e.last_offset) for e in txns.entries] == model.aborted(log._bases[0])
    open_txn = model.open_txn()
    assert log._producers.state.open_txns == ({TXN: open_txn[0]} if open_txn else {})


# shrinking a failing run of file writes takes minutes: the run is reported as generated
@settings(max_examples=300, deadline=None, database=None, phases=[Phase.explicit, Phase.generate],
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(ops=st.lists(op, min_size=10, max_size=50), segment_bytes=st.integers(150, 600))
# compaction removed a producer's batch (not its last), then a cut of the tail: its next batch was
# refused OUT_OF_ORDER_SEQUENCE and a retry of the removed batch written twice
@example(ops=[("append", 1000, 1, b"a", 0), ("append", 1000, 1, b"b", 0), ("roll", 0, 0, b"", 0),
              ("append", 2000, 1, b"b", 0), ("roll", 0, 0, b"", 0), ("append", 2000, 1, b"c", 0),
              ("commit", 0, 0, b"", 75), ("compact", 0, 0, b"", 0), ("cut", 0, 0, b"", 0)], segment_bytes=100_000)
# DeleteRecords removed a producer's only segment, then a cut of the tail: the producer was
# forgotten and a batch of its fenced epoch written
@example(ops=[("bump", 1000, 0, b"", 0), ("append", 1000, 1, b"a", 0), ("append", 1000, 1, b"a", 0),
              ("roll", 0, 0, b"", 0), ("append", 2000, 1, b"b", 0), ("append", 2000, 1, b"b", 0),
              ("commit", 0, 0, b"", 75), ("delete", 0, 0, b"", 67), ("cut", 0, 0, b"", 0)], segment_bytes=100_000)
def test_producer_state_after_any_cut_is_that_of_every_batch_below_it(tmp_path_factory, ops, segment_bytes):
    d = tmp_path_factory.mktemp("pstate") / f"p-{next(_counter)}"
    cfg = LogConfig(cleanup_policy="compact", segment_bytes=segment_bytes)
    log = _replicated(PartitionLog(d, cfg))
    model = Model()
    try:
        for o in ops:
            kind, pid, n, key, pct = o
            if kind == "append":
                seq, epoch = model.next_seq[pid], model.epoch[pid]
                batch = build_batch([(key, b"v")] * n, producer_id=pid, producer_epoch=epoch, base_sequence=seq)
                info = log.append(batch)
                assert not info.duplicate, f"a new batch of producer {pid} (seq {seq}) answered as a duplicate"
                model.batches.append((info.last_offset, pid, epoch, seq, seq + n - 1, info.first_offset))
                model.next_seq[pid] = seq + n
                again = log.append(batch)   # the client's retry of it: deduplicated, never written twice
                assert again.duplicate and (again.first_offset, again.last_offset) == (info.first_offset, info.last_offset)
            elif kind == "txn":   # a transactional batch: it begins TXN's transaction, or adds to it
                seq, epoch = model.next_seq[TXN], model.epoch[TXN]
                batch = build_batch([(key, b"t")] * n, producer_id=TXN, producer_epoch=epoch, base_sequence=seq,
                                    attributes=ATTR_TRANSACTIONAL)
                info = log.append(batch)
                assert not info.duplicate
                model.batches.append((info.last_offset, TXN, epoch, seq, seq + n - 1, info.first_offset))
                model.next_seq[TXN] = seq + n
                if model.open_txn() is None:
                    model.txns.append([info.first_offset, None, False])
            elif kind == "end":   # the coordinator's marker: commit or abort
                txn = model.open_txn()
                if txn is not None:
                    info = log.append_marker(TXN, model.epoch[TXN], pct >= 50, 0)
                    txn[1], txn[2] = info.first_offset, pct < 50
            elif kind == "bump":
                model.epoch[pid] += 1
                model.next_seq[pid] = 0
            elif kind == "roll":
                log.housekeeping.roll()
            elif kind == "flush":
                log.housekeeping.flush()
            elif kind == "compact":
                c = Compactor(log)
                for _ in range(20):
                    if not c.step(10**13):
                        break
            elif kind == "delete":
                start, stable = log.log_start_offset, log.last_stable_offset
                log.delete_records_before(start + max(0, stable - start) * pct // 100)
            elif kind == "commit":   # the followers confirmed up to here: a log end of theirs, a batch's end
                hw, leo = log.high_watermark, log.log_end_offset
                want = hw + (leo - hw) * pct // 100
                log.replica.high_watermark = max([hw] + [b[0] + 1 for b in model.batches if b[0] < want])
            elif kind == "cut":   # a follower's truncation: never below the high watermark
                hw, leo = log.high_watermark, log.log_end_offset
                target = hw + (leo - hw) * pct // 100
                log.truncate_to(target)
                model.cut(log.log_end_offset)   # a batch straddling the target goes whole
            elif kind == "reopen":
                hw = log.high_watermark
                log.close()
                log = _replicated(PartitionLog(d, cfg, high_watermark=hw))
            _check(log, model)
        # a producer fenced by a newer epoch stays fenced
        for pid, (epoch, _ls, _b) in model.expected().items():
            if epoch > 0 and pid != TXN:
                try:
                    log.append(build_batch([(b"z", b"v")], producer_id=pid, producer_epoch=epoch - 1, base_sequence=999))
                except InvalidProducerEpochError:
                    continue
                raise AssertionError(f"producer {pid}: a batch of the fenced epoch {epoch - 1} was written")
    finally:
        log.close()
