"""`sandbox status` when the disk holding the data folder is full: the supervisor cannot write
its state file, which then goes stale; that is told as a full disk, not as a wedged supervisor
(found by review: "does not answer (paused or wedged)" sent users to kill a healthy stack)."""

from __future__ import annotations

import errno
import json
import subprocess
import sys

from sandbox.cli.status_cmds import status_once
from sandbox.config import load_config
from sandbox.runner import quarantine, stack
from sandbox.runner.detach import write_pid_file


def test_a_stale_state_file_on_a_full_disk_is_told_as_a_full_disk(tmp_path, monkeypatch, capsys):
    cfg = load_config(None, cwd=tmp_path)
    cfg.data_dir.mkdir(parents=True)
    supervisor = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        write_pid_file(cfg.data_dir / stack.PID_FILE, supervisor.pid)   # alive, no fresh state file
        status_once(cfg, True, print)
        first = json.loads(capsys.readouterr().out)
        assert "does not answer" in first["problems"][0]
        def full(folder, size=2):
            raise OSError(errno.ENOSPC, "No space left on device")
        monkeypatch.setattr(quarantine, "try_write", full)
        status_once(cfg, True, print)
        st = json.loads(capsys.readouterr().out)
        assert not st["healthy"]
        assert st["problems"][0].startswith("the supervisor cannot write its state file: disk full")
        assert "free space" in st["problems"][0] and "wedged" not in st["problems"][0]
        status_once(cfg, False, lambda st: print("sandbox is not running"))   # the table's printer
        out = capsys.readouterr().out
        assert "the supervisor cannot write its state file: disk full" in out and "not running" not in out
    finally:
        supervisor.kill()
        supervisor.wait()

