"""RemoteCoordinator against a real coordinator service: the mirror follows changes made by
anyone, writes go over the wire and are visible on return, errors map to CoordinatorError, and
reads keep working while the coordinator is away. LocalCoordinator offers the same async API."""
from __future__ import annotations

import asyncio
import time

import pytest

from coordinator.server_helpers import RawClient, ThreadedCoordinator, create_topics_request
from helpers import wait_for

from coordinator.server_helpers import RawClient, ThreadedCoordinator, create_topics_request

from sandbox.coordinator import CoordinatorError
from sandbox.coordinator.changes import TopicChanged, TopicRemoved
from sandbox.coordinator.client import LocalCoordinator, RemoteCoordinator, parse_address
from sandbox.protocol import build, request_class
from sandbox.protocol import errors as E


@pytest.fixture
def server(tmp_path):
    srv = ThreadedCoordinator(tmp_path / "coordinator", tick_interval_s=0.05).start()
    yield srv
    srv.stop()


async def eventually(predicate, what: str, timeout: float = 5.0) -> float:
    """wait_for off the event loop (the client under test runs on it); returns the seconds waited."""
    t0 = time.monotonic()
    await asyncio.to_thread(wait_for, predicate, timeout, interval=0.02, what=what)
    return time.monotonic() - t0


def test_parse_address():
    assert parse_address("127.0.0.1:9093") == ("127.0.0.1", 9093)
    assert parse_address("localhost") == ("localhost", 9093)
    assert parse_address("[::1]:7") == ("::1", 7)


def test_mirror_follows_changes_made_by_others(server):
    async def main():
        rc = RemoteCoordinator(("127.0.0.1", server.port))
        seen: list = []
        rc.watch(seen.extend)
        try:
            epoch = await rc.start(1, "127.0.0.1", 9101)
            assert epoch >= 0 and rc.connected
            assert rc.cluster_id == server.coordinator.cluster_id
            assert [b.broker_id for b in rc.brokers()] == [1]
            with RawClient(server.port) as admin:  # another party changes the metadata
                await asyncio.to_thread(admin.request, create_topics_request(("orders", 3)))
                took = await eventually(lambda: rc.topic("orders") is not None, "topic orders in the mirror")
                assert took < 2
                info = rc.topic("orders")
                assert rc.topic_by_id(info.topic_id).name == "orders"
                assert [p.leader for p in info.partitions] == [1, 1, 1]
                assert TopicChanged("orders") in seen   # typed changes, not journal records
                body = build(request_class(44, 1), {"validate_only": False, "resources": [{
                    "resource_type": 2, "resource_name": "orders", "configs": [
                        {"name": "retention.ms", "config_operation": 0, "value": "1234"}]}]})
                await asyncio.to_thread(admin.request, body)
                await eventually(lambda: rc.topic("orders").configs.get("retention.ms") == "1234",
                                 "retention.ms=1234 in the mirror")
                assert rc.describe_configs("orders")["retention.ms"] == ("1234", False)
                await asyncio.to_thread(admin.request, build(request_class(20, 5), {
                    "topic_names": ["orders"], "timeout": 5000}))
                await eventually(lambda: rc.topic("orders") is None, "topic orders gone from the mirror")
                assert TopicRemoved("orders", info.topic_id) in seen
            assert rc.metadata_offset == server.coordinator.metadata_offset
        finally:
            await rc.stop()
        # stop() unregisters: the broker is fenced at once
        assert server.coordinator.broker(1).fenced

    asyncio.run(main())


def test_remote_writes_are_visible_on_return_and_errors_raise(server):
    async def main():
        rc = RemoteCoordinator(f"127.0.0.1:{server.port}")
        try:
            await rc.start(1, "127.0.0.1", 9101)
            dry = await rc.create_topic("t", 2, validate_only=True)
            assert len(dry.partitions) == 2 and rc.topic("t") is None
            info = await rc.create_topic("t", 2, configs={"cleanup.policy": "compact"})
            assert rc.topic("t") == info and info.configs == {"cleanup.policy": "compact"}
            manual = await rc.create_topic("m", assignments={0: [1], 1: [1]})
            assert len(manual.partitions) == 2
            with pytest.raises(CoordinatorError) as e:
                await rc.create_topic("t", 1)
            assert e.value.error_code == 36
            with pytest.raises(CoordinatorError) as e:
                await rc.create_topic("x", 1, configs={"bogus": "1"})
            assert e.value.error_code == 40
            grown = await rc.create_partitions("t", 4)
            assert len(grown.partitions) == 4 and len(rc.topic("t").partitions) == 4
            with pytest.raises(CoordinatorError) as e:
                await rc.create_partitions("t", 1)
            assert e.value.error_code == 37
            await rc.alter_configs("t", {"retention.ms": "10"})
            assert rc.topic("t").configs == {"cleanup.policy": "compact", "retention.ms": "10"}
            await rc.alter_configs("t", delete=["cleanup.policy"])
            assert rc.topic("t").configs == {"retention.ms": "10"}
            await rc.alter_configs("t", {"segment.ms": "99"}, incremental=False)
            assert rc.topic("t").configs == {"segment.ms": "99"}
            await rc.alter_configs("t", {"segment.ms": "1"}, validate_only=True)
            assert rc.topic("t").configs == {"segment.ms": "99"}
            first = await rc.allocate_producer_ids(1000)
            assert await rc.allocate_producer_ids(10) >= first + 1000
            # a name given twice: created for neither, answered once (Kafka's ControllerApis)
            results = await rc.create_topics([{"name": "a"}, {"name": "a"}, {"name": "b"}])
            assert [(r.name, r.error_code, r.error_message) for r in results] == [
                ("a", 42, "Duplicate topic name."), ("b", 0, None)]
            assert rc.topic("a") is None
            await rc.delete_topic(rc.topic("b").topic_id)
            await rc.delete_topic("t")
            assert rc.topic("t") is None and rc.topic("b") is None
            with pytest.raises(CoordinatorError) as e:
                await rc.delete_topic("t")
            assert e.value.error_code == 3
        finally:
            await rc.stop()

    asyncio.run(main())


def test_reads_survive_and_writes_fail_fast_while_coordinator_is_down(tmp_path):
    srv = ThreadedCoordinator(tmp_path / "c", tick_interval_s=0.05).start()
    port = srv.port

    async def main():
        rc = RemoteCoordinator(("127.0.0.1", port), request_timeout=1.0, connect_timeout=0.5)
        try:
            await rc.start(1, "127.0.0.1", 9101)
            await rc.create_topic("kept", 2)
            srv.stop()
            await eventually(lambda: not rc.connected, "the client to notice the coordinator is gone")
            assert rc.topic("kept") is not None and len(rc.topics()) == 1
            t0 = time.monotonic()
            with pytest.raises(CoordinatorError) as e:
                await rc.create_topic("new", 1)
            assert e.value.error_code in (7, 15) and time.monotonic() - t0 < 3
            with pytest.raises(CoordinatorError):
                await rc.allocate_producer_ids()
        finally:
            await rc.stop()  # best effort: the coordinator is gone

    asyncio.run(main())


def test_start_gives_up_after_its_timeout_when_nobody_answers(tmp_path):
    from coordinator.server_helpers import free_port

    async def main():
        rc = RemoteCoordinator(("127.0.0.1", free_port()), connect_timeout=0.2)
        t0 = time.monotonic()
        with pytest.raises(CoordinatorError) as e:
            await rc.start(1, "127.0.0.1", 9101, timeout=1.0)
        assert e.value.error_code == 15 and time.monotonic() - t0 < 3
        await rc.stop()

    asyncio.run(main())


def test_local_coordinator_has_the_same_async_api(tmp_path):
    async def main():
        lc = LocalCoordinator(tmp_path / "embedded", heartbeat_interval=0.05)
        try:
            assert lc.connected
            epoch = await lc.start(1, "127.0.0.1", 9092)
            assert lc.broker(1).epoch == epoch
            info = await lc.create_topic("t", 2)
            assert lc.topic("t") == info
            assert len((await lc.create_partitions("t", 3)).partitions) == 3
            await lc.alter_configs("t", {"retention.ms": "5"})
            assert lc.topic("t").configs == {"retention.ms": "5"}
            first = await lc.allocate_producer_ids(5)
            assert await lc.allocate_producer_ids(5) >= first + 5
            results = await lc.create_topics([{"name": "u"}, {"name": "u"}])
            assert [(r.name, r.error_code, r.error_message) for r in results] == [("u", 42, "Duplicate topic name.")]
            assert lc.topic("u") is None
            await lc.delete_topic("t")
            assert lc.topic("t") is None
            with pytest.raises(CoordinatorError):
                await lc.delete_topic("t")
        finally:
            await lc.stop()
        lc.close()  # idempotent

    asyncio.run(main())


def test_isr_changes_asked_together_go_in_one_request_and_one_journal_append(server):
    """A broker rejoining every ISR at once (the whole stack restarted) asks for hundreds of
    changes: they go together (as Kafka's AlterPartitionManager sends them), each answered on its
    own, and the coordinator writes them with one journal append."""
    calls: list[int] = []
    controller = server.coordinator
    real = controller.alter_partitions
    appends = []
    real_append = controller._journal.append

    def spy(broker_id, changes):
        calls.append(len(changes))
        return real(broker_id, changes)

    def spy_append(records):
        records = list(records)
        appends.append(len(records))
        return real_append(records)

    async def main():
        rc1, rc2 = RemoteCoordinator(("127.0.0.1", server.port)), RemoteCoordinator(("127.0.0.1", server.port))
        try:
            await rc1.start(1, "127.0.0.1", 9101)
            await rc2.start(2, "127.0.0.1", 9102)
            info = await rc1.create_topic("t", assignments={i: [1, 2] for i in range(60)})
            server.run(setattr, controller, "alter_partitions", spy)
            server.run(setattr, controller._journal, "append", spy_append)
            answers = await asyncio.gather(*(
                rc1.alter_partition(1, info.topic_id, p.index, p.leader_epoch, p.partition_epoch, [1])
                for p in info.partitions))
            assert [(code, after.isr) for code, after in answers] == [(0, (1,))] * 60
            assert sum(calls) == 60 and len(calls) <= 2, calls
            assert len(appends) == len(calls), appends
            # a stale repeat (the partition epoch moved on) is refused, each on its own
            again = await asyncio.gather(*(
                rc1.alter_partition(1, info.topic_id, p.index, p.leader_epoch, p.partition_epoch, [1, 2])
                for p in info.partitions[:3]))
            assert [code for code, _after in again] == [E.INVALID_UPDATE_VERSION] * 3
        finally:
            await rc1.stop()
            await rc2.stop()

    asyncio.run(main())


def test_a_busy_control_connection_does_not_starve_the_heartbeats(tmp_path):
    """Heartbeats have a connection of their own: with the control connection held for longer
    than the session timeout (hundreds of ISR changes queued on it), the broker stays registered
    and its lease stays valid."""
    srv = ThreadedCoordinator(tmp_path / "coordinator", tick_interval_s=0.05, session_timeout_ms=1000).start()

    async def main():
        rc = RemoteCoordinator(("127.0.0.1", srv.port), session_timeout=1.0, heartbeat_interval=0.1)
        try:
            await rc.start(1, "127.0.0.1", 9101)
            async with rc._control._conn._lock:   # the control connection busy for 3 session timeouts
                await asyncio.sleep(3.0)
                assert rc.lease_valid() and rc.connected
            assert srv.run(lambda: not srv.coordinator.broker(1).fenced)
        finally:
            await rc.stop()

    try:
        asyncio.run(main())
    finally:
        srv.stop()


def test_closing_cancels_isr_changes_not_sent_yet(server):
    """A RemoteCoordinator closed while ISR changes wait to be sent (its sender not started yet)
    leaves no asker waiting for ever, and sends nothing later."""
    async def main():
        rc = RemoteCoordinator(("127.0.0.1", server.port))
        try:
            await rc.start(1, "127.0.0.1", 9101)
            info = await rc.create_topic("c", assignments={0: [1]})
            p = info.partitions[0]
            asker = asyncio.ensure_future(rc.alter_partition(1, info.topic_id, 0, p.leader_epoch, p.partition_epoch, [1]))
            await asyncio.sleep(0)   # queued, its sender created but not run
            rc.close()
            with pytest.raises(asyncio.CancelledError):
                await asyncio.wait_for(asker, 2.0)
            assert rc._isr_queue == []
        finally:
            await rc.stop()

    asyncio.run(main())
