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
        self._closing, self.coordinator = False, None


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
