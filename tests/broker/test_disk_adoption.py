"""How a broker puts back a topic the metadata lost (DiskFolders._adopt_topic), with a stand-in
coordinator: every broker holding its folders becomes a replica, each partition led by the
replica with the newest history (the newest leader epoch in its log, then the longest log), the
replication factor is the most copies any partition had (brokers holding nothing fill the rest),
and the leader epochs go on above every epoch the logs hold."""

from __future__ import annotations

import asyncio
import uuid
from types import SimpleNamespace

from sandbox.broker.disk_folders import DiskFolders
from sandbox.protocol.extensions import RESTORE_LEADER_EPOCH, RESTORE_TOPIC_ID


class FakeCoordinator:
    def __init__(self, brokers: list[int]) -> None:
        self._brokers = [SimpleNamespace(broker_id=b, fenced=False) for b in brokers]
        self.created: list[tuple[str, dict, dict]] = []

    def brokers(self):
        return self._brokers

    async def create_topic(self, name, partitions, replication_factor, configs, *, assignments):
        self.created.append((name, dict(configs), {i: list(r) for i, r in assignments.items()}))


class Folders(DiskFolders):
    def __init__(self, node_id: int, brokers: list[int], partitions: dict) -> None:
        self.node_id = node_id
        self.coordinator = FakeCoordinator(brokers)
        self.partitions = partitions


def test_every_holder_is_a_replica_and_the_newest_history_leads():
    tid = uuid.uuid4()
    here = {("t", i): SimpleNamespace(topic_id=tid) for i in range(2)}
    f = Folders(2, [1, 2, 3, 4], here)
    held = {0: {1: (10, 2), 2: (12, 1), 3: (5, 2)},   # epoch 2 beats the longer log of epoch 1
            1: {2: (7, 4)}}                          # one copy only: padded with brokers holding nothing
    assert asyncio.run(f._adopt_topic("t", held)) == 2
    [(name, configs, assignments)] = f.coordinator.created
    assert name == "t"
    assert assignments == {0: [1, 3, 2], 1: [2, 1, 3]}
    assert configs[RESTORE_LEADER_EPOCH] == "5" and configs[RESTORE_TOPIC_ID] == str(tid)


def test_a_broker_that_did_not_answer_is_never_a_filler():
    """A broker that did not say what it holds may hold the newest copy: made a replica that
    holds nothing, it would cut its log to follow an older one."""
    here = {("t", 0): SimpleNamespace(topic_id=None)}
    f = Folders(2, [1, 2, 3, 4], here)
    asyncio.run(f._adopt_topic("t", {0: {2: (7, 4), 3: (7, 4)}, 1: {2: (3, 1)}}, silent={1}))
    [(_name, _configs, assignments)] = f.coordinator.created
    assert assignments == {0: [2, 3], 1: [2, 3]}


def test_an_internal_topic_put_back_stays_compacted():
    here = {("__consumer_offsets", 0): SimpleNamespace(topic_id=None)}
    f = Folders(1, [1], here)
    asyncio.run(f._adopt_topic("__consumer_offsets", {0: {1: (3, 0)}}))
    [(_name, configs, assignments)] = f.coordinator.created
    assert configs["cleanup.policy"] == "compact" and RESTORE_TOPIC_ID not in configs
    assert assignments == {0: [1]}
