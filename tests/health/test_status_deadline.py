"""A broker that hangs between two supervisor probes (its state still says healthy): one status
build asks it once, leaves it alone for the rest of the build and reports it; the build keeps to
an overall deadline (an injected clock, no wall-clock assertion)."""

from __future__ import annotations

from collections import Counter
from types import SimpleNamespace as NS

from sandbox.client import KafkaClient, KafkaClientError
from sandbox.client.base import LIST_GROUPS, LIST_OFFSETS, LIST_TRANSACTIONS, METADATA
from sandbox.health.deadline import Budget, BoundedMixin
from sandbox.health.status import build_status

B1, B2 = ("127.0.0.1", 39101), ("127.0.0.1", 39102)


class Wire(KafkaClient):
    """A KafkaClient whose wire is faked: broker 1 answers, broker 2 hangs (every request to it
    fails as a timed-out one would, after `hang_s` on the test's clock)."""

    def __init__(self, clock=None, hang_s: float = 2.0) -> None:
        super().__init__([B2, B1], client_id="t", timeout=5.0)
        self.calls: Counter = Counter()
        self.clock, self.hang_s = clock, hang_s

    def _send(self, addr, api_key, data):
        self.calls[addr] += 1
        if addr == B2:
            if self.clock is not None:
                self.clock.now += self.hang_s
            raise KafkaClientError(f"127.0.0.1:{B2[1]} did not answer within 2s")
        if api_key == METADATA:
            parts = [NS(partition_index=i, leader_id=i + 1, replica_nodes=[i + 1], isr_nodes=[i + 1],
                        leader_epoch=0, error_code=0) for i in range(2)]
            return NS(brokers=[NS(node_id=1, host=B1[0], port=B1[1]), NS(node_id=2, host=B2[0], port=B2[1])],
                      topics=[NS(name="orders", topic_id=None, partitions=parts, is_internal=False, error_code=0)],
                      cluster_id="c", controller_id=1), 12
        if api_key == LIST_OFFSETS:
            return NS(topics=[NS(name=t["name"], partitions=[NS(partition_index=p["partition_index"], error_code=0,
                                                                 offset=100) for p in t["partitions"]])
                              for t in data["topics"]]), 7
        if api_key == LIST_GROUPS:
            return NS(error_code=0, groups=[]), 4
        if api_key == LIST_TRANSACTIONS:
            return NS(error_code=0, transaction_states=[]), 1
        raise KafkaClientError("not in this fake", 35)


class BoundedWire(BoundedMixin, Wire):
    pass


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def state() -> dict:
    svc = {"state": "running", "healthy": True, "pid": None, "uptime_s": 3.0, "restarts": 0}
    return {"events": [], "services": [{**svc, "name": "broker-1", "role": "broker", "port": B1[1]},
                                       {**svc, "name": "broker-2", "role": "broker", "port": B2[1]}]}


def test_a_hung_broker_is_asked_once_then_left_alone_and_reported():
    wire = BoundedWire()
    st = build_status(name="n", mode="native", bootstrap="x", state=state(), client=wire)
    assert wire.calls[B2] == 1, wire.calls   # not once per Metadata, ListOffsets, ListGroups, ...
    assert wire.calls[B1] >= 3
    assert not st["healthy"]
    b2 = next(s for s in st["services"] if s["name"] == "broker-2")
    assert b2["healthy"] is False
    assert any("broker-2 did not answer" in p for p in st["problems"]), st["problems"]
    (t,) = st["topics"]
    assert t["partition_offsets"] == [{"partition": 0, "end_offset": 100}] and t["end_offsets"] is None
    assert wire.budget is None   # a shared client is left without the build's budget


def test_a_build_asks_nothing_past_its_deadline():
    clock = Clock()
    wire = BoundedWire(clock, hang_s=10.0)   # the first request to the hung broker eats the whole budget
    st = build_status(name="n", mode="native", bootstrap="x", state=state(), client=wire,
                      budget=Budget(6.0, clock=clock))
    assert wire.calls[B2] == 1 and wire.calls[B1] == 0, wire.calls
    assert any("took longer than 6s" in p for p in st["problems"]), st["problems"]
    assert not st["healthy"]


def test_a_plain_client_is_asked_through_a_bounded_copy(monkeypatch):
    """build_status given a plain KafkaClient (the CLI's) still keeps to a budget."""
    import sandbox.health.deadline as deadline

    made = []

    class Copy(BoundedMixin, Wire):
        def __init__(self, *a, **kw) -> None:
            Wire.__init__(self)
            made.append(self)

    monkeypatch.setattr(deadline, "BoundedClient", Copy)
    st = build_status(name="n", mode="native", bootstrap="x", state=state(), client=Wire())
    assert made and made[0].calls[B2] == 1
    assert any("broker-2 did not answer" in p for p in st["problems"])
