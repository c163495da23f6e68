"""Service specs and how a service becomes a process: the Spawner/Handle protocols and the real,
subprocess-based spawner (new process group, output appended to the service's log, no shell)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol

ROLES = ("coordinator", "broker")
STOP_FILE = "stop"


@dataclass
class ServiceSpec:
    name: str
    role: str
    argv: list[str]
    port: int
    data_dir: Path
    log_path: Path
    env: dict[str, str] | None = None  # extra variables, layered over the supervisor's environment

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"service {self.name!r}: role must be one of {', '.join(ROLES)}, not {self.role!r}")
        self.data_dir = Path(self.data_dir)
        self.log_path = Path(self.log_path)
        self.argv = [str(a) for a in self.argv]

    @property
    def stop_file(self) -> Path:
        return self.data_dir / STOP_FILE


class Handle(Protocol):
    pid: int

    def poll(self) -> int | None: ...
    def terminate(self) -> None: ...
    def kill(self) -> None: ...
    def wait(self, timeout: float | None = None) -> int | None:
        """The exit code, or None if the process still runs after `timeout` seconds."""


class Spawner(Protocol):
    def spawn(self, spec: ServiceSpec) -> Handle: ...


class PopenHandle:
    """A Handle over subprocess.Popen; terminate() is SIGTERM on POSIX, CTRL_BREAK_EVENT on Windows."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.proc = proc
        self.pid = proc.pid

    def poll(self) -> int | None:
        return self.proc.poll()

    def terminate(self) -> None:
        if self.proc.poll() is not None:
            return
        try:
            if sys.platform == "win32":
                self.proc.send_signal(signal.CTRL_BREAK_EVENT)
            else:
                self.proc.send_signal(signal.SIGTERM)
                self.proc.send_signal(signal.SIGCONT)   # a paused process handles SIGTERM only once resumed
        except (ProcessLookupError, OSError):
            pass

    def kill(self) -> None:
        if self.proc.poll() is not None:
            return
        try:
            self.proc.kill()
        except (ProcessLookupError, OSError):
            pass

    def wait(self, timeout: float | None = None) -> int | None:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None


def child_env(extra: dict[str, str] | None) -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("PYTHONUNBUFFERED", "1")  # log lines reach the log file as they are written
    env.update(extra or {})
    return env


def new_group_kwargs() -> dict:
    """Popen keywords giving the child its own process group and, on Windows, no console window."""
    if sys.platform == "win32":
        flags = subprocess.CREATE_NEW_PROCESS_GROUP | subprocess.CREATE_NO_WINDOW
        return {"creationflags": flags}
    return {"start_new_session": True}


class RealSpawner:
    """Starts each service with subprocess.Popen, stdout and stderr appended to its log file."""

    def spawn(self, spec: ServiceSpec) -> PopenHandle:
        spec.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(spec.log_path, "ab") as log:
            proc = subprocess.Popen(spec.argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                    env=child_env(spec.env), close_fds=True, **new_group_kwargs())
        return PopenHandle(proc)


def stop_escalating(targets: list[tuple[str, Handle, Path]], grace: float, clock: Callable[[], float],
                    reason: str = "stop") -> dict[str, tuple[int | None, str]]:
    """Stop several processes together: write each stop file, wait grace/2, terminate the rest, wait
    grace/2, kill the rest. Returns {name: (exit code, how it stopped)}."""
    result: dict[str, tuple[int | None, str]] = {}
    for _, _, stop_file in targets:
        try:
            stop_file.write_text(reason, encoding="utf-8")
        except OSError:
            pass  # the signals below still stop it
    pending = _wait_all(targets, grace / 2, clock, result, "stopped (stop file)")
    for _, handle, _ in pending:
        handle.terminate()
    pending = _wait_all(pending, grace / 2, clock, result, "terminated")
    for name, handle, _ in pending:
        handle.kill()
        result[name] = (handle.wait(5.0), f"killed after {grace:g}s")
    for _, _, stop_file in targets:
        try:
            stop_file.unlink()  # a killed service never removed it
        except OSError:
            pass
    return result


def _wait_all(targets, budget: float, clock, result: dict, label: str) -> list:
    deadline = clock() + budget
    pending = []
    for t in targets:
        name, handle, _ = t
        code = handle.poll()
        if code is None:
            code = handle.wait(max(0.0, deadline - clock()))
        if code is None:
            pending.append(t)
        else:
            result[name] = (code, label)
    return pending
