"""Shared fixtures: a real broker process on a free port, always stopped."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import BrokerProcess

# Files whose tests run alone (scripts/test.sh runs them after the rest, one at a time): fault
# campaigns and failover tests pause, kill and starve processes against session timeouts and
# heal times, and the Docker tests build images; sharing the 2 cores with another test's stack
# would make their figures (and, at worst, their verdicts) depend on what ran beside them.
SERIAL_FILES = {
    "tests/integration/test_chaos.py",
    "tests/integration/test_self_healing.py",
    "tests/integration/test_replication.py",
    "tests/integration/test_replication_health.py",
    "tests/integration/test_restart_at_scale.py",
    "tests/integration/test_health_stack.py",
    "tests/integration/test_windows_files.py",
}
SERIAL_DIRS = ("tests/docker/",)


def pytest_collection_modifyitems(config, items):
    for item in items:
        rel = item.nodeid.split("::", 1)[0]   # the file, relative to the project's root
        if rel in SERIAL_FILES or rel.startswith(SERIAL_DIRS):
            item.add_marker(pytest.mark.serial)


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
