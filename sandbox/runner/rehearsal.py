"""Failure rehearsal in the native supervisor (`sandbox kill`, `sandbox pause`): kill a service at
once (it is then restarted as after any crash), or freeze it without ending it (SIGSTOP; Windows:
the process suspended) until a deadline the supervisor owns, so it resumes whatever happens to the
command that asked. A paused service is neither probed nor counted as crashed, and never restarted."""

from __future__ import annotations

from sandbox.runner.process import Handle
from sandbox.runner.service import ServiceRecord


def freeze(handle: Handle, frozen: bool) -> None:
    """Suspend (frozen) or resume the handle's process: its own suspend()/resume() when it has
    them, else psutil's (SIGSTOP/SIGCONT on POSIX, NtSuspendProcess/NtResumeProcess on Windows)."""
    own = getattr(handle, "suspend" if frozen else "resume", None)
    if own is not None:
        own()
        return
    import psutil

    proc = psutil.Process(handle.pid)
    proc.suspend() if frozen else proc.resume()


class Rehearsal:
    """Mixed into Supervisor (it owns the services, events, command queue and clocks these use)."""

    def kill(self, name: str) -> None:
        """Ask for `name` to be killed (SIGKILL; Windows: TerminateProcess) at the next step."""
        with self._lock:
            self._get(name)   # an unknown name is the caller's error, now
        self._commands.put(("kill", name, None))

    def pause(self, name: str, seconds: float) -> None:
        """Ask for `name` to be frozen for `seconds` from the next step (a second pause moves the deadline)."""
        if not seconds > 0:
            raise ValueError(f"a pause lasts more than 0 seconds, not {seconds!r}")
        with self._lock:
            self._get(name)
        self._commands.put(("pause", name, float(seconds)))

    def _rehearse(self, kind: str, svc: ServiceRecord, seconds: float | None, now: float) -> None:
        if svc.handle is None or svc.stop is not None:
            self._emit(svc, "error", f"cannot {kind} {svc.name}: it is {svc.state}, not running")
            return
        if kind == "kill":
            self._unpause(svc, now, quiet=True)
            self._emit(svc, "kill", f"pid {svc.pid} killed on request", pid=svc.pid)
            svc.killed_on_request = True   # restarted as after a crash, but not counted as one
            svc.handle.kill()   # the next pass sees it exit and restarts it as after any crash
            return
        if svc.paused_until is None:
            freeze(svc.handle, True)
        svc.paused_until = now + seconds
        svc.state, svc.healthy, svc.failing_since = "paused", False, None
        svc.latency_ms = None   # frozen, it answers nothing: no round trip to show
        self._emit(svc, "pause", f"pid {svc.pid} paused for {seconds:g}s on request", pid=svc.pid, seconds=seconds)

    def _resume_due(self, now: float) -> None:
        for svc in self._services:
            if svc.paused_until is not None and now >= svc.paused_until:
                self._unpause(svc, now)

    def _unpause(self, svc: ServiceRecord, now: float, quiet: bool = False) -> None:
        """Resume a paused service (at its deadline; quietly before it is stopped or killed); it is
        probed again at once."""
        if svc.paused_until is None:
            return
        svc.paused_until = None
        if svc.handle is not None:
            try:
                freeze(svc.handle, False)
            except Exception as e:   # gone meanwhile: the next pass sees its exit
                self._emit(svc, "error", f"could not resume pid {svc.pid}: {e}")
            if not quiet:
                self._emit(svc, "resume", f"pid {svc.pid} resumed", pid=svc.pid)
        # starting until it answers again; before a stop or kill, still a running process (so it is
        # stopped gracefully through its stop file, not terminated as one that never started)
        svc.state, svc.healthy = ("running" if quiet else "starting"), False
        svc.failing_since = svc.last_probe_at = None
