"""The fault campaign's loads run on after the last fault until they have done enough for its
invariants to check something (scripts/chaos.py wait_for_workload): a slow machine gets more time,
never a lower bar, and a load that never gets there is said and left to the caller's checks."""

from __future__ import annotations

import importlib.util
import sys
import time
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "chaos.py"
spec = importlib.util.spec_from_file_location("sandbox_chaos_workload", SCRIPT)
chaos = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = chaos
spec.loader.exec_module(chaos)


def test_waits_until_every_count_is_past_its_floor():
    calls = []

    def counts():
        calls.append(1)
        n = len(calls)
        return {"acked": 600, "committed": 5 * n, "aborted": 1}   # 21 on the 5th look

    said: list[str] = []
    got = chaos.wait_for_workload(counts, said.append, wait_s=30.0,
                                  floor={"acked": 500, "committed": 20, "aborted": 0})
    assert got == {"acked": 600, "committed": 25, "aborted": 1}
    assert len(calls) == 5 and not said


def test_a_load_that_never_gets_there_is_said_after_the_wait():
    said: list[str] = []
    t0 = time.monotonic()
    got = chaos.wait_for_workload(lambda: {"committed": 3, "aborted": 0}, said.append, wait_s=0.5,
                                  floor={"committed": 20, "aborted": 0})
    assert time.monotonic() - t0 >= 0.5
    assert got == {"committed": 3, "aborted": 0}
    assert said == ["  the loads fell short after the faults: 3 committed (wanted more than 20), "
                    "0 aborted (wanted more than 0)"]

