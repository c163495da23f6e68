"""One supervisor per data folder: it holds `.sandbox/supervisor.lock` while it runs. Found by
review: two `sandbox up` at once in one folder both passed the "already running" check and ran two
supervisors over the same services, and the first to exit deleted the pid file naming the other.
Here the test process holds the lock (as a supervisor started a moment before would): a second
supervisor exits at once naming it, leaves its pid file alone, and `sandbox up` says "already
running", exit 0. Real `sandbox` processes in a temp project on free ports, always torn down."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from sandbox.runner.detach import read_pid_file, write_pid_file
from sandbox.runner.statefile import hold_lock, lock_holder

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]


def test_a_second_supervisor_exits_at_once_and_leaves_the_pid_file(project):
    lock = hold_lock(project.data_dir / "supervisor.lock")
    pid_file = project.data_dir / "supervisor.pid"
    write_pid_file(pid_file, os.getpid())
    try:
        r = subprocess.run([sys.executable, "-m", "sandbox", "supervise"], cwd=project.root,
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
        assert f"already running: supervisor pid {os.getpid()} holds" in r.stderr, r.stderr
        assert read_pid_file(pid_file) == os.getpid()
    finally:
        if read_pid_file(pid_file) == os.getpid():
            pid_file.unlink()   # `sandbox down` in the teardown must never take this process for the supervisor
        lock.close()


def test_up_while_another_supervisor_holds_the_lock_says_already_running(project):
    lock = hold_lock(project.data_dir / "supervisor.lock")
    try:
        r = project.up()
        assert r.returncode == 0 and "Traceback" not in r.stderr, r.stdout + r.stderr
        assert f"is already running (supervisor pid {os.getpid()})" in r.stdout, r.stdout + r.stderr
        assert not project.supervisor_pid()
    finally:
        lock.close()


def test_the_lock_is_let_go_with_its_holder(tmp_path):
    lock = hold_lock(tmp_path / "supervisor.lock")
    assert lock_holder(tmp_path / "supervisor.lock") == os.getpid()
    other = subprocess.run([sys.executable, "-c", "import sys; from sandbox.runner.statefile import hold_lock, "
                            "LockHeld\ntry:\n hold_lock(sys.argv[1])\nexcept LockHeld as e:\n print(e.holder)",
                            str(tmp_path / "supervisor.lock")], capture_output=True, text=True, timeout=60)
    assert other.stdout.strip() == str(os.getpid()), other.stdout + other.stderr
    lock.close()
    hold_lock(tmp_path / "supervisor.lock").close()
