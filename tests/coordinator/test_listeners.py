"""Broker listeners in the coordinator: every listener's advertised address is registered,
journaled and snapshotted; journals from before listeners load with the primary address; the
registration API carries them over the wire; the coordinator's own Metadata stays primary."""
from __future__ import annotations

import asyncio
import uuid

import pytest

from coordinator.coordinator_helpers import run
from coordinator.server_helpers import RawClient, ThreadedCoordinator

from sandbox.coordinator import Coordinator, CoordinatorError, MetadataJournal, MetadataMachine
from sandbox.coordinator.client import LocalCoordinator, RemoteCoordinator
from sandbox.coordinator.model import BrokerInfo
from sandbox.protocol import build, request_class

TWO = [("INTERNAL", "broker-1", 19092), ("EXTERNAL", "127.0.0.1", 29092)]


def test_machine_keeps_every_listener_in_order_and_through_fencing():
    m = MetadataMachine()
    run(m, m.set_cluster_id("c"))
    run(m, m.register_broker(1, "broker-1", 19092, None, uuid.uuid4(), now_ms=0, listeners=TWO))
    b = m.broker(1)
    assert (b.host, b.port) == ("broker-1", 19092)
    assert b.listeners == {"INTERNAL": ("broker-1", 19092), "EXTERNAL": ("127.0.0.1", 29092)}
    assert list(b.listeners) == ["INTERNAL", "EXTERNAL"]
    assert b.address("EXTERNAL") == ("127.0.0.1", 29092)
    assert b.address("NOPE") == b.address(None) == ("broker-1", 19092)
    run(m, m.fence_broker(1))
    assert m.broker(1).fenced and m.broker(1).listeners == b.listeners
    assert hash(m.broker(1)) != hash(b)


def test_mapping_form_and_no_listeners():
    m = MetadataMachine()
    run(m, m.set_cluster_id("c"))
    run(m, m.register_broker(1, "h", 1, None, uuid.uuid4(), listeners={"A": ("h", 1), "B": ("x", 2)}))
    assert m.broker(1).listeners == {"A": ("h", 1), "B": ("x", 2)}
    records = m.register_broker(2, "h", 2, None, uuid.uuid4())
    assert "listeners" not in [r for r in records if r["type"] == "register-broker"][0]
    run(m, records)
    assert m.broker(2).listeners == {} and m.broker(2).address("A") == ("h", 2)


@pytest.mark.parametrize("listeners", [
    [("A", "h", 1), ("A", "h", 2)],        # a name twice
    [("", "h", 1)],                        # no name
    [("A", "h", 0)],                       # bad port
    [("A", "h", 70000)],
    [("A", "", 1)],                        # no host
    [("A", "h")],                          # not a triple
])
def test_bad_listeners_are_refused(listeners):
    m = MetadataMachine()
    run(m, m.set_cluster_id("c"))
    with pytest.raises(CoordinatorError) as e:
        m.register_broker(1, "h", 1, None, uuid.uuid4(), listeners=listeners)
    assert e.value.error_code == 42


def test_listeners_survive_restart_via_journal_and_snapshot(make_coordinator):
    c = make_coordinator(snapshot_every=1_000_000)
    c.register_broker(1, "broker-1", 19092, listeners=TWO)
    state = c.state()
    c._journal._log.close()  # crash: replay from the log, no snapshot
    c._journal._log = None
    c._journal._unlock()
    c2 = make_coordinator()
    assert c2.state() == state
    assert c2.broker(1).listeners["EXTERNAL"] == ("127.0.0.1", 29092)
    c2.close()  # writes a snapshot
    c3 = make_coordinator()
    assert c3.broker(1).listeners == state.brokers[1].listeners
    assert BrokerInfo.from_dict(c3.broker(1).to_dict()) == c3.broker(1)


def test_journal_and_snapshot_from_before_listeners_load(tmp_path):
    inc = str(uuid.uuid4())
    old_register = {"type": "register-broker", "broker_id": 1, "host": "old-host", "port": 9092,
                    "rack": None, "incarnation_id": inc, "epoch": 1}
    j = MetadataJournal(tmp_path / "log-only")
    j.load()
    j.append([{"type": "cluster", "cluster_id": "AAAAAAAAAAAAAAAAAAAAAA"}, old_register])
    j.close()
    with Coordinator(tmp_path / "log-only") as c:
        b = c.broker(1)
        assert (b.host, b.port, b.listeners) == ("old-host", 9092, {})
        assert b.address("EXTERNAL") == ("old-host", 9092)

    old_broker = {k: v for k, v in old_register.items() if k != "type"} | {"fenced": False}
    state = {"cluster_id": "AAAAAAAAAAAAAAAAAAAAAA", "brokers": [old_broker], "topics": [],
             "next_producer_id": 0, "metadata_offset": 2}
    j = MetadataJournal(tmp_path / "snapshot")
    j.load()
    j.append([{"type": "cluster", "cluster_id": "AAAAAAAAAAAAAAAAAAAAAA"}, old_register])
    j.write_snapshot(state, 2)  # the snapshot, as an old version wrote it, replaces the log
    j.close()
    with Coordinator(tmp_path / "snapshot") as c:
        assert c.broker(1).listeners == {} and c.broker(1).port == 9092
        c.register_broker(1, "old-host", 9092, incarnation_id=inc, listeners=TWO)  # upgraded broker
        assert c.broker(1).listeners["INTERNAL"] == ("broker-1", 19092)


def test_remote_and_local_start_register_every_listener(tmp_path):
    srv = ThreadedCoordinator(tmp_path / "coordinator", tick_interval_s=0.05).start()

    async def main():
        rc = RemoteCoordinator(("127.0.0.1", srv.port))
        try:
            await rc.start(1, "broker-1", 19092, listeners=TWO)
            await rc.wait_for_offset(srv.coordinator.metadata_offset, 5)
            assert srv.run(lambda: srv.coordinator.broker(1).listeners) == dict(
                (n, (h, p)) for n, h, p in TWO)
            assert rc.broker(1).listeners["EXTERNAL"] == ("127.0.0.1", 29092)  # the mirror too
            # the coordinator's own Metadata answers with the primary address
            with RawClient(srv.port) as c:
                md = await asyncio.to_thread(c.request, build(request_class(3, 12), {
                    "topics": None, "allow_auto_topic_creation": False,
                    "include_topic_authorized_operations": False}))
            assert [(b.node_id, b.host, b.port) for b in md.brokers] == [(1, "broker-1", 19092)]
        finally:
            await rc.stop()
        rc2 = RemoteCoordinator(("127.0.0.1", srv.port))
        try:  # without listeners: one PLAINTEXT listener, as before
            await rc2.start(2, "127.0.0.1", 9092)
            assert srv.run(lambda: srv.coordinator.broker(2).listeners) == {
                "PLAINTEXT": ("127.0.0.1", 9092)}
        finally:
            await rc2.stop()

        lc = LocalCoordinator(tmp_path / "embedded", heartbeat_interval=0.05)
        try:
            await lc.start(1, "broker-1", 19092, listeners=TWO)
            assert list(lc.broker(1).listeners) == ["INTERNAL", "EXTERNAL"]
        finally:
            await lc.stop()

    try:
        asyncio.run(main())
    finally:
        srv.stop()


def test_registration_with_duplicate_listener_names_is_refused(tmp_path):
    srv = ThreadedCoordinator(tmp_path / "coordinator").start()
    try:
        with RawClient(srv.port) as c:
            resp = c.request(build(request_class(62, 3), {
                "broker_id": 1, "cluster_id": "", "incarnation_id": uuid.uuid4(),
                "listeners": [{"name": "A", "host": "h", "port": 1, "security_protocol": 0},
                              {"name": "A", "host": "h", "port": 2, "security_protocol": 0}],
                "features": [], "rack": None}))
        assert int(resp.error_code) == 42
    finally:
        srv.stop()
