"""Shared fixtures for coordinator tests: a fake clock and a Coordinator on a temp dir."""
from __future__ import annotations

import pytest

from sandbox.coordinator import Coordinator

from coordinator.coordinator_helpers import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def events() -> list:
    return []


@pytest.fixture
def make_coordinator(tmp_path, clock, events):
    opened: list[Coordinator] = []

    def make(**kw) -> Coordinator:
        kw.setdefault("clock", clock)
        kw.setdefault("on_event", lambda kind, detail: events.append((kind, detail)))
        c = Coordinator(tmp_path / "coordinator", **kw)
        opened.append(c)
        return c

    yield make
    for c in opened:
        try:
            c.close()
        except Exception:
            pass
