"""Files held by another program, with real processes under Windows' file rules: a virus scanner,
the search indexer or an editor holds a file the sandbox must remove or rename, and Windows
refuses until it lets go (tests/winfiles.py reads what is held from SANDBOX_TEST_HELD_FILES).

Found by the fault campaign's `--held-files` (scripts/chaos.py): a broker killed while a scanner
held its stale `.lock` exited at its restart with "the data folder cannot be used; choose another
data_dir", and the supervisor never started it again. Now the start is tried every second until
the file is let go, the broker comes back on its own journal, and nothing is quarantined."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from .kit import consume_topic, produce_all, producer
from .stack_kit import all_running_healthy, events, service, wait_status
from .test_self_healing import create_topic

SITE = Path(__file__).resolve().parents[1] / "winfiles_site"


def test_a_broker_restarted_while_another_program_holds_its_stale_lock_starts_once_it_lets_go(
        projects, tmp_path, monkeypatch):
    held = tmp_path / "held-files.txt"
    proj = projects("held", brokers=1)
    monkeypatch.setenv("SANDBOX_TEST_WINDOWS_FILES", str(proj.root))
    monkeypatch.setenv("SANDBOX_TEST_HELD_FILES", str(held))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in (str(SITE), os.environ.get("PYTHONPATH")) if p))
    assert proj.up().returncode == 0
    create_topic(proj.bootstrap, "t", 1)
    produce_all(producer(proj.bootstrap, acks="all"), "t", [(None, f"v{i}".encode()) for i in range(20)])
    lock = proj.data_dir / "broker-1" / ".lock"
    assert lock.exists()
    held.write_text(f"{lock}\n")   # a scanner opens the lock file just as the broker dies
    os.kill(proj.service_pid("broker-1"), signal.SIGKILL)
    _, st = wait_status(proj, lambda c, s: events(s, service="broker-1", kind="file-in-use"), 30,
                        "the held file told")
    told = events(st, service="broker-1", kind="file-in-use")
    assert str(lock) in told[0]["detail"] and "another program" in told[0]["detail"], told
    # several refused starts later: still waiting, never given up on, nothing moved aside
    _, st = wait_status(proj, lambda c, s: proj.log_text("broker-1").count("is held by another program") >= 3,
                        30, "three refused starts")
    b1 = service(st, "broker-1")
    assert not st["healthy"] and b1["state"] != "crashed", b1
    assert (b1.get("problem") or "").startswith("a file is held by another program"), b1
    held.write_text("")            # the scanner lets go
    _, st = wait_status(proj, lambda c, s: c == 0 and all_running_healthy(s), 30, "the broker back")
    assert service(st, "broker-1").get("problem") is None
    assert events(st, service="broker-1", kind="file-in-use")[-1].get("resolved")
    for kind in ("wipe", "crash-loop", "config-error"):
        assert not events(st, kind=kind), events(st, kind=kind)
    quarantine = proj.data_dir / "quarantine"
    assert not quarantine.exists() or not any(quarantine.iterdir())
    got = consume_topic(proj.bootstrap, "t", 20)
    assert sorted(m.value() for m in got) == sorted(f"v{i}".encode() for i in range(20))
    assert "Traceback" not in proj.log_text("broker-1")
