"""The coordinator as a real process: stop file and SIGTERM stop it cleanly (exit 0); a SIGKILL
and restart on the same port and data keeps topics, and brokers re-register by themselves;
a taken port and a corrupt journal are errors that propagate with a clear message."""
from __future__ import annotations

import asyncio
import json
import os
import socket
import time

import pytest

from coordinator.server_helpers import (
    CoordinatorProcess, RawClient, metadata_request,
)

from sandbox.coordinator import CoordinatorError, JournalCorruptError
from sandbox.coordinator.client import RemoteCoordinator
from sandbox.coordinator.server import CoordinatorConfig, CoordinatorServer


@pytest.fixture
def processes():
    started: list[CoordinatorProcess] = []

    def make(*args, **kw) -> CoordinatorProcess:
        p = CoordinatorProcess(*args, **kw)
        started.append(p)
        return p.start()

    yield make
    for p in started:
        try:
            p.kill()
        except Exception:
            pass


def events(text: str) -> list[tuple[str, dict]]:
    out = []
    for line in text.splitlines():
        if "EVENT " in line:
            kind, _, detail = line.split("EVENT ", 1)[1].partition(" ")
            out.append((kind, json.loads(detail)))
    return out


def test_stop_file_stops_the_process_cleanly(tmp_path, processes):
    data = tmp_path / "coordinator"
    proc = processes(data)
    (data / "stop").write_text("")
    assert proc.proc.wait(10) == 0
    assert not (data / "stop").exists()
    kinds = [k for k, _ in events(proc.log_text())]
    assert kinds[0] == "start" and kinds[-1] == "stop"
    assert (data / "snapshot.json").exists()  # clean stop snapshots the journal
    assert not (data / "coordinator.lock").exists()


def test_sigterm_stops_cleanly(tmp_path, processes):
    if os.name == "nt":
        pytest.skip("POSIX signal")
    proc = processes(tmp_path / "coordinator")
    assert proc.stop() == 0
    assert events(proc.log_text())[-1][0] == "stop"


def test_kill_and_restart_brokers_reregister_and_topics_survive(tmp_path, processes):
    data = tmp_path / "coordinator"
    first = processes(data, session_timeout_ms=3000)
    port = first.port

    async def main():
        rc = RemoteCoordinator(("127.0.0.1", port), request_timeout=1.0, connect_timeout=0.5)
        try:
            epoch = await rc.start(1, "127.0.0.1", 9201)
            await rc.create_topic("orders", 3)
            await rc.alter_configs("orders", {"retention.ms": "60000"})
            first.kill()  # SIGKILL: no snapshot, no goodbye
            t0 = time.monotonic()
            while rc.connected and time.monotonic() - t0 < 5:
                await asyncio.sleep(0.05)
            assert not rc.connected
            # the broker keeps serving from its mirror
            assert [p.leader for p in rc.topic("orders").partitions] == [1, 1, 1]
            with pytest.raises(CoordinatorError) as e:
                await rc.create_topic("other", 1)
            assert e.value.error_code in (7, 15)

            second = await asyncio.to_thread(processes, data, port=port,
                                             session_timeout_ms=3000)
            t0 = time.monotonic()
            while (rc.broker_epoch == epoch or not rc.connected) and time.monotonic() - t0 < 10:
                await asyncio.sleep(0.05)
            assert rc.connected and rc.broker_epoch > epoch  # re-registered by itself
            with RawClient(second.port) as c:
                meta = await asyncio.to_thread(c.request, metadata_request(["orders"]))
            assert [b.node_id for b in meta.brokers] == [1]
            assert [p.leader_id for p in meta.topics[0].partitions] == [1, 1, 1]
            assert rc.topic("orders").configs == {"retention.ms": "60000"}
            info = await rc.create_topic("other", 1)  # writes work again
            assert rc.topic("other") == info
            # the session stays alive well past the session timeout: heartbeats flow
            await asyncio.sleep(3.5)
            assert not rc.broker(1).fenced
        finally:
            await rc.stop()

    asyncio.run(main())


def test_port_in_use_raises_oserror_and_leaves_the_journal_alone(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        server = CoordinatorServer(CoordinatorConfig(data_dir=tmp_path / "c", port=port))
        with pytest.raises(OSError):
            asyncio.run(server.start())
    assert not (tmp_path / "c" / "coordinator.lock").exists()


def test_corrupt_journal_raises_a_clear_error(tmp_path):
    data = tmp_path / "c"
    data.mkdir()
    (data / "snapshot.json").write_text("{not json")

    async def main():
        server = CoordinatorServer(CoordinatorConfig(data_dir=data, port=0))
        await server.start()

    with pytest.raises(JournalCorruptError, match="snapshot.json is corrupt"):
        asyncio.run(main())


def test_a_wiped_coordinator_is_followed_from_scratch(tmp_path, processes):
    import shutil

    data = tmp_path / "coordinator"
    first = processes(data)

    async def main():
        rc = RemoteCoordinator(("127.0.0.1", first.port), request_timeout=1.0,
                               connect_timeout=0.5)
        try:
            await rc.start(1, "127.0.0.1", 9201)
            for i in range(5):
                await rc.create_topic(f"old-{i}", 1)
            old_cluster = rc.cluster_id
            first.kill()
            shutil.rmtree(data)
            await asyncio.to_thread(processes, data, port=first.port)
            t0 = time.monotonic()
            while rc.cluster_id == old_cluster and time.monotonic() - t0 < 10:
                await asyncio.sleep(0.05)
            assert rc.cluster_id != old_cluster
            assert rc.topics() == []
            # the broker registers again with the fresh coordinator (its session heartbeat) before
            # a topic can be placed on it
            while not (rc.connected and [b.broker_id for b in rc.brokers()] == [1]) and time.monotonic() - t0 < 10:
                await asyncio.sleep(0.05)
            info = await rc.create_topic("fresh", 1)
            assert rc.topic("fresh") == info and [b.broker_id for b in rc.brokers()] == [1]
        finally:
            await rc.stop()

    asyncio.run(main())
