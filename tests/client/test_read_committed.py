"""The CLI consumer's read_committed filter (sandbox.protocol.records.decode_batches with the
Fetch reply's aborted transactions), as Kafka's consumer applies it: control batches never
surface, aborted transactional batches are skipped from their transaction's first offset up to
its abort marker, the same producer's later transactions and other producers' are kept."""

from __future__ import annotations

from sandbox.log.batch import ATTR_TRANSACTIONAL, build_batch, build_control_batch
from sandbox.protocol.records import decode_batches, encode_batch


def at(base: int, batch: bytes) -> bytes:
    """The batch with its base offset set (what the log stamps)."""
    return base.to_bytes(8, "big") + batch[8:]


def txn(base: int, pid: int, *values: bytes) -> bytes:
    return at(base, build_batch([(None, v) for v in values], producer_id=pid, producer_epoch=0, base_sequence=base,
                                attributes=ATTR_TRANSACTIONAL))


def marker(base: int, pid: int, commit: bool) -> bytes:
    return at(base, build_control_batch(pid, 0, commit, 0, 0))


# offsets: 0 plain, 1-2 pid 7 (aborted), 3 pid 8 (committed), 4 abort(7), 5 commit(8),
# 6 pid 7 again (committed: a later transaction of the aborted producer), 7 commit(7)
LOG = b"".join([at(0, encode_batch(0, [b"plain"])), txn(1, 7, b"a1", b"a2"), txn(3, 8, b"c1"),
                marker(4, 7, False), marker(5, 8, True), txn(6, 7, b"c2"), marker(7, 7, True)])


def values(records) -> list[bytes]:
    return [r.value for r in records]


def test_read_uncommitted_sees_every_data_record_and_no_marker():
    assert values(decode_batches(LOG)) == [b"plain", b"a1", b"a2", b"c1", b"c2"]


def test_read_committed_skips_the_aborted_transaction_only():
    assert values(decode_batches(LOG, aborted=[(7, 1)])) == [b"plain", b"c1", b"c2"]


def test_an_empty_aborted_list_keeps_everything():
    assert values(decode_batches(LOG, aborted=[])) == [b"plain", b"a1", b"a2", b"c1", b"c2"]


def test_an_aborted_transaction_that_started_before_the_fetch_offset():
    tail = LOG[len(at(0, encode_batch(0, [b"plain"]))) + len(txn(1, 7, b"a1", b"a2")):]   # from offset 3
    extra = txn(8, 9, b"x")
    assert values(decode_batches(tail + extra, aborted=[(7, 1), (9, 8)])) == [b"c1", b"c2"]
