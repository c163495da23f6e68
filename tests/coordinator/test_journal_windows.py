"""The coordinator journal under simulated Windows file semantics (the log package's fixture:
removing or renaming a file that is still open raises PermissionError)."""
from __future__ import annotations

import pytest

from sandbox.coordinator import Coordinator

windows_conftest = pytest.importorskip("log.conftest")
windows_files = windows_conftest.windows_files  # autouse fixture: applies to this module


def test_lifecycle_with_windows_file_semantics(tmp_path, windows_files):
    clock_now = [1000.0]
    c = Coordinator(tmp_path, clock=lambda: clock_now[0], snapshot_every=3)
    c.register_broker(1, "127.0.0.1", 9092)
    for i in range(5):  # several snapshots: tmp file replaced while the log stays open
        c.create_topic(f"t{i}", 2, 1, {"retention.ms": "1000"})
    c.delete_topic("t0")
    state = c.state()
    c.close()  # final snapshot + lock removal
    c = Coordinator(tmp_path, clock=lambda: clock_now[0])
    assert c.state() == state
    c.close()
    assert windows_files.vetoes == 0
    with open(tmp_path / "held", "w"), pytest.raises(PermissionError):
        (tmp_path / "held").unlink()  # the simulation is really on
