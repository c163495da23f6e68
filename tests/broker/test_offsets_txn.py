"""Transactional offset commits in `__consumer_offsets`: pending per (group, producer) until the
marker, materialised by a commit, dropped by an abort, a later plain commit kept over an older
transactional one, and a new leader reading the log back: offsets of committed transactions
count, of aborted or still open ones do not (the open one stays pending)."""

from __future__ import annotations

import pytest

from test_offsets_topic import OFFSETS, T, FakeState, store_for   # the same fake broker state

from sandbox.broker.offsets_records import partition_for
from sandbox.broker.offsets_topic import OffsetsNotWritable
from sandbox.protocol.errors import INVALID_PRODUCER_EPOCH


@pytest.fixture
def state(tmp_path):
    s = FakeState(tmp_path / "data")
    yield s
    s.logs.close()


def marker(state, group: str, pid: int, commit: bool, epoch: int = 0) -> int:
    index = partition_for(group, 4)
    state.partitions[(OFFSETS, index)].append_marker(pid, epoch, commit, 0)
    return index


def test_pending_until_the_commit_marker_then_committed(state):
    s = store_for(state)
    s.commit_txn("g", 7, 0, [("t", 0, 10, -1, "m"), ("t", 1, 20, -1, "")])
    assert s.get("g", "t", 0) is None and s.txn_pending("g", "t", 0) and s.txn_pending("g", "t", 1)
    assert not s.txn_pending("g", "t", 2) and not s.txn_pending("other", "t", 0)
    index = marker(state, "g", 7, True)
    assert s.complete_txn(index, 7, True) == 2
    assert s.get("g", "t", 0) == (10, -1, "m", T) and s.get("g", "t", 1) == (20, -1, "", T)
    assert not s.txn_pending("g", "t", 0)
    assert s.complete_txn(index, 7, True) == 0   # a second marker (a retry) changes nothing


def test_an_abort_drops_them_and_the_committed_offset_stays(state):
    s = store_for(state)
    s.commit("g", [("t", 0, 5, -1, "")])
    s.commit_txn("g", 7, 0, [("t", 0, 10, -1, "")])
    s.complete_txn(marker(state, "g", 7, False), 7, False)
    assert s.get("g", "t", 0).offset == 5 and not s.txn_pending("g", "t", 0)


def test_a_plain_commit_after_the_transactional_one_wins(state):
    s = store_for(state)
    s.commit_txn("g", 7, 0, [("t", 0, 10, -1, "")])
    s.commit("g", [("t", 0, 3, -1, "")])
    s.complete_txn(marker(state, "g", 7, True), 7, True)
    assert s.get("g", "t", 0).offset == 3
    assert store_for(state).get("g", "t", 0).offset == 3   # and so reads the next leader


def test_producers_are_kept_apart(state):
    s = store_for(state)
    s.commit_txn("g", 7, 0, [("t", 0, 10, -1, "")])
    s.commit_txn("g", 8, 0, [("t", 1, 30, -1, "")])
    s.complete_txn(marker(state, "g", 8, True), 8, True)
    assert s.get("g", "t", 1).offset == 30 and s.get("g", "t", 0) is None and s.txn_pending("g", "t", 0)


def test_a_new_leader_reads_committed_aborted_and_open_transactions_back(state):
    s = store_for(state)
    s.commit("g", [("t", 0, 1, -1, ""), ("t", 1, 1, -1, ""), ("t", 2, 1, -1, "")])
    s.commit_txn("g", 7, 0, [("t", 0, 10, -1, "x")])
    marker(state, "g", 7, True)
    s.commit_txn("g", 8, 0, [("t", 1, 20, -1, "")])
    marker(state, "g", 8, False)
    s.commit_txn("g", 9, 0, [("t", 2, 30, -1, "")])   # still open at the failover
    again = store_for(state)
    assert again.group_offsets("g") == {("t", 0): (10, -1, "x", T), ("t", 1): (1, -1, "", T), ("t", 2): (1, -1, "", T)}
    assert again.txn_pending("g", "t", 2) and not again.txn_pending("g", "t", 1)
    again.complete_txn(marker(state, "g", 9, True), 9, True)
    assert again.get("g", "t", 2).offset == 30


def test_a_stale_producer_epoch_is_refused(state):
    s = store_for(state)
    s.commit_txn("g", 7, 3, [("t", 0, 10, -1, "")])
    with pytest.raises(OffsetsNotWritable) as e:
        s.commit_txn("g", 7, 2, [("t", 0, 11, -1, "")])
    assert e.value.error_code == INVALID_PRODUCER_EPOCH


def test_deleting_the_group_drops_its_pending_commits(state):
    s = store_for(state)
    s.commit("g", [("t", 0, 1, -1, "")])
    s.commit_txn("g", 7, 0, [("t", 1, 10, -1, "")])
    assert s.delete_group("g")
    assert not s.txn_pending("g", "t", 1)
