"""Helpers for coordinator tests: a fake clock and machine builders (imported by tests)."""
from __future__ import annotations

import uuid

from sandbox.coordinator import MetadataMachine


class FakeClock:
    def __init__(self, start: float = 1_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def run(machine: MetadataMachine, records: list[dict]) -> list[dict]:
    for record in records:
        machine.apply(record)
    return records


def machine_with_brokers(*ids: int, now_ms: int = 0) -> MetadataMachine:
    m = MetadataMachine()
    run(m, m.set_cluster_id("test-cluster"))
    for b in ids:
        run(m, m.register_broker(b, "127.0.0.1", 9090 + b, None, uuid.uuid4(), now_ms=now_ms))
    return m
