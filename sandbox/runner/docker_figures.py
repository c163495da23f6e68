"""Figures of a Docker-mode service for status and /metrics: its process's cpu, memory and open
files where the engine's process ids are this machine's (a local Linux engine), the engine's memory
figure elsewhere, and its journal volume's size, free space and writability (a real write)."""

from __future__ import annotations

import sys
from typing import Any

import psutil

from sandbox.runner.docker_plan import JOURNAL_MOUNT, docker_time


class ContainerFigures:
    """Measures containers of one engine; remembers the engine's kind and each process (psutil's
    cpu_percent compares with the previous call on the same Process object)."""

    def __init__(self, client) -> None:
        self.client = client
        self._procs: dict[int, psutil.Process] = {}
        self._local: bool | None = None   # pids_local(), asked of the engine once

    def pids_local(self) -> bool:
        """Whether the engine's process ids are this machine's: a Linux engine on this kernel. Docker
        Desktop (Windows, macOS, and Linux too) runs containers in a VM, whose pids name unrelated
        host processes or none (its `docker info` OperatingSystem is "Docker Desktop")."""
        if self._local is None:
            try:
                os_name = str(self.client.info().get("OperatingSystem", ""))
            except Exception:
                os_name = ""
            self._local = sys.platform.startswith("linux") and bool(os_name) and "Docker Desktop" not in os_name
        return self._local

    def host_process(self, c) -> psutil.Process | None:
        """The container's main process on this machine, only when its start time is the container's
        (a pid alone may name another process: a remote engine, a VM, a reused pid)."""
        st = c.attrs.get("State", {})
        pid = st.get("Pid")
        if not pid or not self.pids_local():
            return None
        started = docker_time(st.get("StartedAt") or "")
        try:
            proc = psutil.Process(pid)
            if started is None or abs(proc.create_time() - started) > 2.0:
                return None
            proc.cpu_percent(None)
            return proc
        except (psutil.Error, OSError):
            return None

    def measure(self, c, service: str) -> dict[str, Any]:
        """cpu, memory and open files of the service's process, and its journal volume's size, free
        space and whether it takes a write (a real write, from inside the container)."""
        out: dict[str, Any] = {"cpu_percent": None, "rss_bytes": None, "open_files": None, "disk_bytes": None,
                               "disk_free_bytes": None, "journal_writable": None, "journal_problem": None}
        if c is None or c.status != "running":
            return out
        pid = c.attrs.get("State", {}).get("Pid")
        proc = self._procs.get(pid) if pid else None
        try:
            if pid and proc is None:   # a local Linux engine's process, started with the container
                proc = self.host_process(c)
                if proc is not None:
                    self._procs[pid] = proc
            if proc is not None:
                with proc.oneshot():
                    out["cpu_percent"], out["rss_bytes"] = proc.cpu_percent(None), proc.memory_info().rss
                    # num_fds is POSIX only (psutil has none on Windows: AttributeError)
                    out["open_files"] = proc.num_fds() if hasattr(proc, "num_fds") else None
        except (psutil.Error, OSError):
            self._procs.pop(pid, None)
        if out["rss_bytes"] is None:   # Docker Desktop: the process is inside a VM
            try:
                out["rss_bytes"] = c.stats(stream=False, one_shot=True).get("memory_stats", {}).get("usage")
            except Exception:
                pass
        probe = (f"df -Pk {JOURNAL_MOUNT} | tail -n 1; du -sk {JOURNAL_MOUNT} | cut -f1; "
                 f"(echo ok > {JOURNAL_MOUNT}/.write-probe && rm -f {JOURNAL_MOUNT}/.write-probe && echo writable) "
                 f"|| echo not-writable")
        try:
            res = c.exec_run(["sh", "-c", probe], demux=False)
            lines = res.output.decode(errors="replace").splitlines()
            out["disk_free_bytes"] = int(lines[0].split()[3]) * 1024
            out["disk_bytes"] = int(lines[1]) * 1024
            out["journal_writable"] = lines[2].strip() == "writable"
            if not out["journal_writable"]:
                out["journal_problem"] = f"{service}'s journal volume is not writable"
            elif out["disk_free_bytes"] < 200 * 1024 * 1024:
                out["journal_problem"] = f"{service}'s journal volume has only {out['disk_free_bytes'] >> 20} MB free"
        except Exception:
            pass
        return out
