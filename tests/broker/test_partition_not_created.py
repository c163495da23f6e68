"""A partition whose folder cannot be made (a full disk, no file handles left) while the metadata
is applied: the rest of the metadata still applies (other partitions, leaders), and the folder is
tried again each second. It used to abort the whole update: every later partition and every
leader change of that update was ignored, and the partition was never made until the next
metadata change."""

from __future__ import annotations

import errno

from test_handlers_inprocess import broker  # noqa: F401  (the fixture)
from sandbox.log import manager
from sandbox.protocol import errors as E


def test_a_partition_that_cannot_be_made_does_not_stop_the_others_and_is_made_later(broker, monkeypatch):
    real = manager.LogDir.create
    failing = {("t", 1)}

    def create(self, topic, index, *a, **k):
        if (topic, index) in failing:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, topic, index, *a, **k)
    monkeypatch.setattr(manager.LogDir, "create", create)
    assert int(broker.create_topic("t", 3).error_code) == E.NONE
    state = broker.owner
    assert ("t", 0) in state.partitions and ("t", 2) in state.partitions   # the others: made
    assert ("t", 1) not in state.partitions and ("t", 1) in state.not_created
    assert state.storage_failing                                          # status says why
    state.retry_creations()                                               # still full: nothing yet
    assert ("t", 1) not in state.partitions
    failing.clear()                                                       # space again
    monkeypatch.setattr(state, "sync_partitions", lambda _changes: (_ for _ in ()).throw(
        AssertionError("the whole metadata applied again each second")))
    state.retry_creations()
    assert ("t", 1) in state.partitions and not state.not_created
    assert ("t", 1) in state.replicas.min_isr                             # replication knows of it


def test_only_the_partitions_not_made_are_tried_again_and_a_deleted_one_is_forgotten(broker, monkeypatch):
    real = manager.LogDir.create
    failing = {("t", 1), ("u", 0)}
    tried: list = []

    def create(self, topic, index, *a, **k):
        tried.append((topic, index))
        if (topic, index) in failing:
            raise OSError(errno.EMFILE, "Too many open files")
        return real(self, topic, index, *a, **k)
    monkeypatch.setattr(manager.LogDir, "create", create)
    broker.create_topic("t", 3)
    broker.create_topic("u", 1)
    state = broker.owner
    assert set(state.not_created) == {("t", 1), ("u", 0)} and not state.storage_failing   # not the disk
    tried.clear()
    state.retry_creations()
    assert sorted(tried) == [("t", 1), ("u", 0)]                          # those alone
    assert int(broker.call(20, 6, {"topics": [{"name": "u", "topic_id": None}], "timeout_ms": 5000})
               .responses[0].error_code) == E.NONE                        # u deleted meanwhile
    tried.clear()
    state.retry_creations()
    assert tried == [("t", 1)] and set(state.not_created) == {("t", 1)}
