"""Starting the supervisor in the background with no console, and knowing whether it still runs:
`spawn_detached`, `pid_alive` and the `supervisor.pid` file (pid + create time, so a recycled pid is not ours)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psutil

PID_FILE_NAME = "supervisor.pid"


def spawn_detached(argv: list[str], log_path: Path, cwd: Path | None = None) -> int:
    """Start `argv` detached from this console and session, output appended to `log_path`; its pid."""
    log_path = Path(log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    kwargs: dict = {}
    if sys.platform == "win32":
        kwargs["creationflags"] = (subprocess.DETACHED_PROCESS | subprocess.CREATE_NEW_PROCESS_GROUP
                                   | subprocess.CREATE_NO_WINDOW)
    else:
        kwargs["start_new_session"] = True
    env = dict(os.environ)
    env.setdefault("PYTHONUNBUFFERED", "1")
    with open(log_path, "ab") as log:
        proc = subprocess.Popen([str(a) for a in argv], stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, cwd=str(cwd) if cwd else None, env=env,
                                close_fds=True, **kwargs)
    return proc.pid


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return False
    except psutil.AccessDenied:
        return True


def _create_time(pid: int) -> float | None:
    try:
        return psutil.Process(pid).create_time()
    except psutil.Error:
        return None


def _cmdline(pid: int) -> list[str] | None:
    try:
        return psutil.Process(pid).cmdline()
    except psutil.Error:
        return None


def same_process(pid: int, created: float | None, cmdline: list[str] | None) -> bool:
    """Whether live `pid` is the process recorded with create time `created` and `cmdline`: the
    same create time (to the second), or, where it differs, the same command line. A create time
    is the boot time plus the process's age, and the boot time moves with the wall clock: set
    back or forward (NTP after a VM or laptop resumed, a user), every process seems to have
    started that much earlier or later, and `sandbox down` took a running supervisor for a
    stranger's recycled pid and left it running. A recycled pid runs another command."""
    now_created = _create_time(pid)
    if created is None or now_created is None or abs(now_created - float(created)) <= 1.0:
        return True
    return bool(cmdline) and _cmdline(pid) == list(cmdline)


def write_pid_file(path: Path, pid: int | None = None) -> None:
    """Record `pid` (default: this process) with its create time and command line."""
    pid = pid or os.getpid()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({"pid": pid, "create_time": _create_time(pid), "cmdline": _cmdline(pid)}),
                   encoding="utf-8")
    os.replace(tmp, path)


def read_pid_file(path: Path) -> int | None:
    """The recorded pid if that very process still runs (same_process), else None."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        pid, created, cmdline = int(data["pid"]), data.get("create_time"), data.get("cmdline")
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not pid_alive(pid):
        return None
    if not same_process(pid, created, cmdline):
        return None  # the pid was recycled by another program
    return pid


def remove_pid_file(path: Path) -> None:
    try:
        Path(path).unlink()
    except OSError:
        pass
