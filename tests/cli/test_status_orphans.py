"""`sandbox status` when services run without a supervisor that answers: the services table is
printed (README: the orphaned services are listed), "not running" only when none run; and
"orphaned" means alive while the supervisor is not (a full disk, a supervisor alive: not orphaned)."""

from __future__ import annotations

import errno
import json
import subprocess
import sys

import pytest

from sandbox.cli.render import print_status
from sandbox.cli.status_cmds import status_once
from sandbox.config import load_config
from sandbox.runner import orphans, quarantine, stack
from sandbox.runner.detach import write_pid_file


class Proc:
    def __init__(self, pid: int) -> None:
        self.pid = pid

    def is_running(self) -> bool:
        return True


@pytest.fixture
def sleeper():
    p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield p
    p.kill()
    p.wait()


def test_services_left_by_a_killed_supervisor_are_listed(tmp_path, monkeypatch, capsys, sleeper):
    cfg = load_config(None, cwd=tmp_path)
    cfg.data_dir.mkdir(parents=True)
    monkeypatch.setattr(orphans, "live_services",
                        lambda specs: {"coordinator": Proc(sleeper.pid), "broker-1": Proc(sleeper.pid)})
    code = status_once(cfg, False, print_status)
    out = capsys.readouterr().out
    assert code == 1
    assert "2 service(s) still running" in out
    assert "broker-1" in out and "orphaned" in out and str(sleeper.pid) in out
    assert "is not running" not in out


def test_with_the_supervisor_alive_on_a_full_disk_services_are_not_orphaned(tmp_path, monkeypatch, capsys,
                                                                           sleeper):
    cfg = load_config(None, cwd=tmp_path)
    cfg.data_dir.mkdir(parents=True)
    write_pid_file(cfg.data_dir / stack.PID_FILE, sleeper.pid)   # the supervisor: alive, no fresh state file
    monkeypatch.setattr(orphans, "live_services",
                        lambda specs: {"coordinator": Proc(sleeper.pid), "broker-1": Proc(sleeper.pid)})

    def full(folder, size=2):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(quarantine, "try_write", full)
    status_once(cfg, True, print)
    st = json.loads(capsys.readouterr().out)
    assert st["problems"][0].startswith("the supervisor cannot write its state file: disk full")
    assert st["running"] is True and not st["healthy"]
    assert {s["state"] for s in st["services"]} == {"running"}, st["services"]
