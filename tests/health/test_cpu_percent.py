"""CPU figures of status, monitor and /metrics against a real busy process: the first look gives its
average since it started (a one-shot `sandbox status`), later looks the use since the previous one,
without sleeping (a sleep inside psutil's oneshot() read cached times: always 0.0%)."""

from __future__ import annotations

import subprocess
import sys
import time

from sandbox.health import status

BUSY = "import time\nend = time.monotonic() + 20\nwhile time.monotonic() < end:\n    pass\n"


def test_a_busy_process_shows_cpu_and_an_idle_one_does_not():
    busy = subprocess.Popen([sys.executable, "-c", BUSY])
    idle = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(20)"])
    try:
        time.sleep(1.0)
        first, rss, files = status._proc(busy.pid)
        assert first is not None and first > 10.0, first
        assert rss and files
        time.sleep(0.5)
        later = status._proc(busy.pid)[0]
        assert later is not None and later > 10.0, later
        status._proc(idle.pid)
        time.sleep(0.5)
        assert status._proc(idle.pid)[0] < 5.0
    finally:
        for p in (busy, idle):
            p.kill()
            p.wait(10)
    assert status._proc(busy.pid) == (None, None, None)
