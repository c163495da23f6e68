"""A partition log opened at its first use (LogDir.open: one segment) whose segment another
program holds without write sharing (Windows: a backup agent) cannot be opened. Found by the
fault campaign with such holders and by review: each Fetch for it dropped the connection, and
leading it raised out of the metadata update, leaving the partitions after it without a role
and acks=all writes acknowledged unreplicated. It is now not led until it opens (tried again
every second), and the requests and checkpoints that touch it answer without opening it."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from winfiles import install

from sandbox.broker.replication.manager import ReplicaManager
from sandbox.log import LogConfig, LogDir
from sandbox.log.batch import build_batch


def _held_dir(tmp_path, monkeypatch):
    listing = tmp_path.parent / f"{tmp_path.name}-held.txt"
    listing.write_text("")
    sem = install(tmp_path, monkeypatch.setattr, held_by=str(listing))
    root = tmp_path / "journal"
    ld = LogDir(root, LogConfig())
    ld.open()
    for index in (0, 1):
        ld.create("t", index).append(build_batch([(b"k", b"v")] * 3, timestamp_ms=1_000), leader_epoch=0)
    ld.close()
    return sem, listing, root


def _topics(epoch=1):
    parts = [SimpleNamespace(index=i, replicas=[1, 2], isr=[1, 2], leader=1, leader_epoch=epoch,
                             partition_epoch=epoch) for i in (0, 1)]
    return [SimpleNamespace(name="t", topic_id=None, configs={}, partitions=parts)]


def test_a_held_unopened_log_is_not_led_and_the_others_are_until_it_opens(tmp_path, monkeypatch):
    sem, listing, root = _held_dir(tmp_path, monkeypatch)
    try:
        ld = LogDir(root, LogConfig())
        logs = ld.open()
        assert not logs[("t", 0)].opened and not logs[("t", 1)].opened
        listing.write_text(f"exclusive\t{next((root / 't-0').glob('*.log'))}\n")
        state = SimpleNamespace(node_id=1, partitions=logs, logs=None, leaders={},
                                notifier=SimpleNamespace(notify=lambda key: None))
        rm = ReplicaManager(state)
        rm.on_metadata(_topics())                       # no exception out of the metadata update
        assert set(rm.leading) == {("t", 1)}             # the other partition is led
        assert rm.unopened == {("t", 0)}
        listing.write_text("")                           # let go
        rm.on_metadata(_topics())
        assert set(rm.leading) == {("t", 0), ("t", 1)} and rm.unopened == set()
        ld.close()
    finally:
        sem.active = False


def test_checkpoints_and_log_dir_sizes_go_on_while_a_followed_log_cannot_be_opened(tmp_path, monkeypatch):
    """Found by review: the checkpoint files follow every replicated partition's high watermark,
    and reading it opened a followed log that a held file kept shut: no checkpoint file was
    written for any partition while it was held. DescribeLogDirs (which a restore after a lost
    coordinator journal asks every broker) dropped the connection."""
    from sandbox.broker.durability import Durability
    from sandbox.broker.handlers.k35_describe_log_dirs import _size

    sem, listing, root = _held_dir(tmp_path, monkeypatch)
    try:
        ld = LogDir(root, LogConfig())
        logs = ld.open()
        segment = next((root / "t-0").glob("*.log"))
        listing.write_text(f"exclusive\t{segment}\n")
        d = Durability()
        d.partitions = logs
        d.replicas = SimpleNamespace(leading={}, following={("t", 0): (2, 1), ("t", 1): (2, 1)})
        points, hws = d._checkpointed()
        assert set(points) == {("t", 0), ("t", 1)} and set(hws) == {("t", 0), ("t", 1)}
        assert not logs[("t", 0)].opened
        assert _size(logs[("t", 0)]) == segment.stat().st_size > 0
        listing.write_text("")
        ld.close()
    finally:
        sem.active = False


def test_a_reassignment_that_replicates_a_held_unopened_log_leaves_every_other_role_in_place(tmp_path, monkeypatch):
    """Found by review: a one-replica log not opened yet, given more replicas while its segment
    was held, raised out of the metadata update before the guard, and the partitions after it
    were left without a role."""
    sem, listing, root = _held_dir(tmp_path, monkeypatch)
    try:
        ld = LogDir(root, LogConfig())
        logs = ld.open()
        state = SimpleNamespace(node_id=1, partitions=logs, logs=None, leaders={},
                                notifier=SimpleNamespace(notify=lambda key: None))
        rm = ReplicaManager(state)
        alone = [SimpleNamespace(index=i, replicas=[1], isr=[1], leader=1, leader_epoch=1, partition_epoch=1)
                 for i in (0, 1)]
        rm.on_metadata([SimpleNamespace(name="t", topic_id=None, configs={}, partitions=alone)])
        assert not logs[("t", 0)].opened   # one replica: not opened by the roles
        listing.write_text(f"exclusive\t{next((root / 't-0').glob('*.log'))}\n")
        follow = [SimpleNamespace(index=i, replicas=[2, 1], isr=[2, 1], leader=2, leader_epoch=2,
                                  partition_epoch=2) for i in (0, 1)]

        async def take_up():
            rm.on_metadata([SimpleNamespace(name="t", topic_id=None, configs={}, partitions=follow)])
            for f in rm.fetchers.values():
                f.stop()
        state.coordinator = SimpleNamespace(broker=lambda n: None)
        asyncio.run(take_up())
        assert rm.unopened == {("t", 0)} and set(rm.following) == {("t", 1)}
        listing.write_text("")
        ld.close()
    finally:
        sem.active = False


def test_the_each_second_retry_runs_on_a_broker_with_nothing_held(tmp_path):
    """Found by review: retry_unopened looked for the transaction coordinator's `refused` on the
    coordinator instead of its store, and raised AttributeError every second on every broker."""
    from sandbox.broker.config import BrokerConfig
    from sandbox.broker.state import BrokerState

    loop = asyncio.new_event_loop()
    state = BrokerState(BrokerConfig(data_dir=tmp_path / "b", port=19093))
    loop.run_until_complete(state.open())
    try:
        state.retry_unopened()
        state.txns.store.refused.add(0)   # a load a held file refused: tried again, no error
        state.retry_unopened()
    finally:
        loop.run_until_complete(state.close())
        loop.close()


def _led_while_held(root, listing):
    """The broker's logs opened, t-0's segment then held against writers, and the roles taken up
    as leader of both partitions: t-0 stays unopened."""
    ld = LogDir(root, LogConfig())
    logs = ld.open()
    listing.write_text(f"exclusive\t{next((root / 't-0').glob('*.log'))}\n")
    state = SimpleNamespace(node_id=1, partitions=logs, logs=None, leaders={},
                            notifier=SimpleNamespace(notify=lambda key: None))
    rm = ReplicaManager(state)
    rm.on_metadata(_topics())
    assert rm.unopened == {("t", 0)}
    return ld, rm


def test_a_held_log_no_longer_this_brokers_is_forgotten(tmp_path, monkeypatch):
    """Found by review: a key kept for a retry stayed after the metadata moved the partition
    away, and the each-second retry then ran a roles pass over every partition each second."""
    sem, listing, root = _held_dir(tmp_path, monkeypatch)
    try:
        ld, rm = _led_while_held(root, listing)
        moved = [SimpleNamespace(index=i, replicas=[2, 3], isr=[2, 3], leader=2, leader_epoch=2,
                                 partition_epoch=2) for i in (0, 1)]
        rm.on_metadata([SimpleNamespace(name="t", topic_id=None, configs={}, partitions=moved)])
        assert rm.unopened == set() and rm.leading == {}
        listing.write_text("")
        ld.close()
    finally:
        sem.active = False


def test_a_held_log_whose_leadership_moved_away_stays_unopened_and_is_not_followed_until_it_opens(
        tmp_path, monkeypatch):
    """Its broker reports it offline with each heartbeat (KIP-858) and the coordinator moves the
    leadership to another in-sync replica: the log must stay counted as unopened here (else the
    next heartbeat would call it openable again and the coordinator make it eligible), and is
    followed once it opens."""
    sem, listing, root = _held_dir(tmp_path, monkeypatch)
    try:
        ld, rm = _led_while_held(root, listing)
        moved = [SimpleNamespace(index=0, replicas=[1, 2], isr=[2], leader=2, leader_epoch=2, partition_epoch=2),
                 _topics()[0].partitions[1]]
        rm.on_metadata([SimpleNamespace(name="t", topic_id=None, configs={}, partitions=moved)])
        assert rm.unopened == {("t", 0)} and ("t", 0) not in rm.following
        listing.write_text("")                           # let go: followed from the next roles pass

        async def follow() -> None:   # a fetcher needs the event loop
            rm.on_metadata([SimpleNamespace(name="t", topic_id=None, configs={}, partitions=moved)])
            assert rm.unopened == set() and rm.following.get(("t", 0)) == (2, 2)
            rm.close()
        asyncio.run(follow())
        ld.close()
    finally:
        sem.active = False
