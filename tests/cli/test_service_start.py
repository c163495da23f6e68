"""Starting `sandbox broker` / `sandbox coordinator` as real processes on free 127.0.0.1 ports:
a bind that fails leaves nothing on disk (the data folder is created only once the listeners are
bound), and the `EVENT start` line is routine, logged at INFO (a WARNING is for what needs a look)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from helpers import BrokerProcess, free_port

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def test_a_broker_that_cannot_bind_creates_no_data_folder(tmp_path):
    data = tmp_path / "never-made"
    r = subprocess.run([sys.executable, "-m", "sandbox", "broker", "--host", "192.0.2.1", "--port",
                        str(free_port()), "--data-dir", str(data)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 78, r.stderr
    assert "Traceback" not in r.stderr and "EVENT config-error" in r.stderr
    assert not data.exists()


def test_a_coordinator_that_cannot_bind_creates_no_data_folder(tmp_path):
    data = tmp_path / "never-made"
    r = subprocess.run([sys.executable, "-m", "sandbox", "coordinator", "--host", "192.0.2.1", "--port",
                        str(free_port()), "--data-dir", str(data)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 78, r.stderr
    assert not data.exists()


def test_event_start_is_logged_at_info(tmp_path):
    b = BrokerProcess(tmp_path / "data", log_path=tmp_path / "broker.log").start()
    try:
        lines = [ln for ln in b.log_text().splitlines() if "EVENT start" in ln]
    finally:
        b.stop()
    assert lines and all(" INFO " in ln for ln in lines), lines
