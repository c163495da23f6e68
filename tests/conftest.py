"""Shared fixtures: a real broker process on a free port, always stopped."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import BrokerProcess


@pytest.fixture
def broker_factory(tmp_path):
    started: list[BrokerProcess] = []

    def make(options: list[str] | None = None, data_dir: Path | None = None) -> BrokerProcess:
        b = BrokerProcess(data_dir or tmp_path / f"broker-data-{len(started)}", options=options,
                          log_path=tmp_path / f"broker-{len(started)}.stderr")
        started.append(b)
        return b.start()

    yield make
    for b in started:
        try:
            b.stop()
        except Exception:
            pass


@pytest.fixture
def broker(broker_factory) -> BrokerProcess:
    return broker_factory()
