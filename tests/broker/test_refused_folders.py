"""A deleted partition's folder the file system refuses to remove (Windows: another program holds
one of its files) is doomed: tried again each second with one attempt, one checkpoint per pass,
and a partition of that name is not made before it is gone (broker/refused_folders.py)."""

from __future__ import annotations

import errno
from types import SimpleNamespace

from sandbox.broker.refused_folders import DOOMED, RefusedFolders


class Logs:
    def __init__(self, refusals: int) -> None:
        self.refusals, self.calls, self.checkpoints, self.created = refusals, [], 0, []

    def delete_partition(self, topic, index, checkpoint=True, *, retries=6):
        self.calls.append(((topic, index), checkpoint, retries))
        if self.refusals:
            self.refusals -= 1
            e = PermissionError(errno.EACCES, "held by another program", f"/data/{topic}-{index}")
            e.winerror = 32
            raise e

    def checkpoint(self):
        self.checkpoints += 1

    def create(self, topic, index, cfg):
        self.created.append((topic, index))
        return SimpleNamespace(topic_id="new")


class Broker(RefusedFolders):
    def __init__(self, logs: Logs) -> None:
        self.logs, self.partitions, self.doomed, self.not_created = logs, {}, set(), {}
        self._closing, self.coordinator, self.stray_held = False, None, {}


def test_a_refused_deletion_is_doomed_retried_once_a_second_and_checkpointed_once_gone():
    b = Broker(Logs(refusals=3))
    assert not b._delete_folder(("t", 0), checkpoint=False)   # at the metadata change: refused
    assert b.doomed == {("t", 0)} and b.logs.calls[-1][2] == 6
    b.retry_creations()
    b.retry_creations()                                        # refused twice more, one try each
    assert b.doomed == {("t", 0)} and [c[2] for c in b.logs.calls[1:]] == [1, 1]
    assert b.logs.checkpoints == 0
    b.retry_creations()                                        # let go: gone, one checkpoint
    assert b.doomed == set() and b.logs.checkpoints == 1
    b.retry_creations()
    assert len(b.logs.calls) == 4                              # nothing more to do


def test_a_partition_is_not_made_while_its_old_folder_is_doomed():
    b = Broker(Logs(refusals=2))
    b._delete_folder(("t", 0), checkpoint=False)
    not_created: dict = {}
    assert not b._make_partition(("t", 0), None, "new", not_created)
    assert not_created == {("t", 0): DOOMED} and b.logs.created == []
    assert b._make_partition(("t", 0), None, "new", {})   # let go: deleted, then made
    assert b.logs.created == [("t", 0)] and b.doomed == set()


class StrayLogs(Logs):
    def __init__(self, refusals: int) -> None:
        super().__init__(0)
        self.set_aside_refusals, self.set_aside_calls = refusals, 0

    def set_aside(self, topic, index, *, retries=6):
        self.set_aside_calls += 1
        self.set_aside_retries = retries
        if self.set_aside_refusals:
            self.set_aside_refusals -= 1
            e = PermissionError(errno.EACCES, "held by another program", f"/data/{topic}-{index}")
            e.winerror = 32
            raise e
        return f"/data/{topic}-{index}.abc-stray"


def test_a_stray_folder_that_cannot_be_set_aside_is_not_followed_and_goes_once_let_go():
    """Found reading what was left alone: a folder holding another topic of that name (after a
    replaced coordinator journal) that could not be set aside was opened again as the partition
    and followed, the other topic's records kept under this one's offsets. It now stays closed,
    is tried again every second, and the partition is made once it is out of the way."""
    from sandbox.broker.disk_folders import DiskFolders
    from sandbox.broker.refused_folders import STRAY_HELD

    class StrayBroker(DiskFolders, RefusedFolders):
        def __init__(self, logs) -> None:
            self.logs, self.partitions, self.doomed, self.not_created = logs, {}, set(), {}
            self.stray_held, self._closing, self.coordinator = {}, False, None
            self.notifier = SimpleNamespace(notify=lambda key: None)

    b = StrayBroker(StrayLogs(refusals=2))
    b.partitions[("t", 0)] = SimpleNamespace(opened=True, log_end_offset=7)
    assert not b._set_aside_stray(("t", 0), "it holds another topic of that name")
    assert ("t", 0) not in b.partitions and b.logs.created == []      # not opened again
    not_created: dict = {}
    assert not b._make_partition(("t", 0), None, "new", not_created)   # refused again: not made
    assert not_created == {("t", 0): STRAY_HELD} and b.logs.created == []
    b.retry_creations()                                                # let go: set aside
    assert b.stray_held == {} and b.logs.set_aside_calls == 3
    assert b.logs.set_aside_retries == 1                               # one attempt a second: no wait
    assert ("t", 0) in b.not_created                                   # made at the next pass
    assert b._make_partition(("t", 0), None, "new", {}) and b.logs.created == [("t", 0)]
