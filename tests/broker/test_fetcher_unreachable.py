"""A follower whose leader never answers says so in the log (after UNREACHABLE_WARN_S, then once
a minute), naming the address it tries: most often the leader's first listener advertises a host
this broker cannot reach. In-process: a fake replica manager whose connections never answer."""

from __future__ import annotations

import asyncio
import logging
from types import SimpleNamespace

from sandbox.broker.replication import fetcher as fetcher_mod
from sandbox.client.async_connection import ExchangeFailed


class DeadConnection:
    def __init__(self, host: str, port: int) -> None:
        self.host, self.port, self.connected = host, port, False
        self.asked = 0

    async def request(self, body, timeout):
        self.asked += 1
        raise ExchangeFailed("cannot connect to broker-2:19092 (gaierror: Name or service not known)", timed_out=False)

    def close(self) -> None:
        pass


def _manager():
    leader = SimpleNamespace(broker_id=2, listeners={"PLAINTEXT": ("broker-2", 19092)},
                             address=lambda name=None: ("broker-2", 19092))
    plog = SimpleNamespace(replica=SimpleNamespace(latest_epoch=3), log_end_offset=10)
    state = SimpleNamespace(node_id=1, partitions={("t", 0): plog},
                            coordinator=SimpleNamespace(brokers=lambda: [leader]))
    conns: list[DeadConnection] = []

    def connect(host, port, client_id):
        conns.append(DeadConnection(host, port))
        return conns[-1]

    return SimpleNamespace(state=state, closed=False, connect=connect), conns


def _run_for(seconds: float, monkeypatch, warn_after: float):
    monkeypatch.setattr(fetcher_mod, "UNREACHABLE_WARN_S", warn_after)
    monkeypatch.setattr(fetcher_mod, "BACKOFF_S", 0.02)
    manager, conns = _manager()

    async def main():
        f = fetcher_mod.ReplicaFetcher(manager, 2)
        f.add(("t", 0), 3)
        await asyncio.sleep(seconds)
        f.stop()

    asyncio.run(main())
    return conns


def test_a_leader_that_never_answers_is_reported_once_with_its_address(monkeypatch, caplog):
    caplog.set_level(logging.WARNING, logger="sandbox.broker")
    conns = _run_for(0.6, monkeypatch, warn_after=0.2)
    assert sum(c.asked for c in conns) >= 5   # it kept trying
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, warnings       # then once a minute, not per attempt
    assert "cannot fetch from broker 2 at broker-2:19092" in warnings[0]
    assert "Name or service not known" in warnings[0]
    assert "advertises on its first listener" in warnings[0]


def test_a_short_outage_is_not_reported(monkeypatch, caplog):
    caplog.set_level(logging.WARNING, logger="sandbox.broker")
    conns = _run_for(0.4, monkeypatch, warn_after=30.0)
    assert sum(c.asked for c in conns) >= 3
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
