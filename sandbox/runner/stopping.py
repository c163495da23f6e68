"""Stopping in the native supervisor: a state advanced by step(), never a blocking wait (stop file,
then terminate, then kill, each with its deadline), and stopping a group of services at once."""

from __future__ import annotations

from sandbox.runner.process import stop_escalating
from sandbox.runner.recovery import FILE_HELD, PORT_HELD
from sandbox.runner.service import ServiceRecord, StopPlan


class Stopping:
    """Mixed into Supervisor (it owns the services, events, policy and clocks these use)."""

    def _begin_stop(self, svc: ServiceRecord, now: float, grace: float, reason: str, then: str) -> None:
        self._unpause(svc, now, quiet=True)   # a frozen process reads no stop file
        svc.stop = StopPlan(reason=reason, then=then, grace=grace, phase="stop file", deadline=now + grace / 2)
        svc.next_start = None
        if svc.handle is None:
            self._finish_stop(svc, now, None, "was not running")
            return
        svc.healthy = False
        try:
            svc.spec.stop_file.write_text(reason, encoding="utf-8")
        except OSError:
            pass   # the signals that follow still stop it
        self._advance_stop(svc, now)

    def _advance_stop(self, svc: ServiceRecord, now: float) -> None:
        plan = svc.stop
        if plan.phase == "queued":
            if any(o.stop is not None and o.spec.role == "broker" for o in self._services):
                return
            self._begin_stop(svc, now, plan.grace, plan.reason, plan.then)
            return
        code = svc.handle.wait(0)
        if code is not None:
            how = {"stop file": "stopped (stop file)", "terminate": "terminated"}.get(
                plan.phase, f"killed after {plan.grace:g}s")
            self._finish_stop(svc, now, code, how)
            return
        if now < plan.deadline:
            return
        if plan.phase == "stop file":
            svc.handle.terminate()
            plan.phase, plan.deadline = "terminate", now + plan.grace / 2
        elif plan.phase == "terminate":
            svc.handle.kill()
            plan.phase, plan.deadline = "kill", now + 5.0
        else:   # not gone 5 s after a kill: let it go (it is reported) rather than wedge
            self._finish_stop(svc, now, None, "did not exit after kill")
            return
        if plan.grace == 0:
            self._advance_stop(svc, now)

    def _finish_stop(self, svc: ServiceRecord, now: float, code: int | None, how: str) -> None:
        plan, svc.stop = svc.stop, None
        if svc.handle is not None:
            self._scan_log(svc)
            self._emit(svc, "stop", f"{how}, exit code {code}", exit_code=code, reason=plan.reason)
            if self._on_spawn is not None:
                self._on_spawn(svc.spec, None)
        try:
            svc.spec.stop_file.unlink()
        except OSError:
            pass
        svc.handle, svc.pid, svc.healthy, svc.last_exit_code, svc.state = None, None, False, code, "stopped"
        if (svc.problem or "").startswith((FILE_HELD, PORT_HELD)):
            svc.problem = None   # "started again once ..." is no longer true of a stopped service
        if plan.then == "restart":
            svc.wanted, svc.state, svc.next_start = True, "starting", now
            svc.restart_reason = "requested"
            svc.window.clear()
            svc.looping = svc.repair_attempted = False
            svc.problem = svc.config_error = None
        elif plan.then == "after-unhealthy":
            self._after_exit(svc, code, now, cause="unhealthy")

    def _stop_group(self, svcs: list[ServiceRecord], grace: float, reason: str = "stop") -> dict[str, int | None]:
        """Stop file, wait grace/2, terminate, wait grace/2, kill. Returns exit codes by name."""
        live = [s for s in svcs if s.handle is not None]
        for s in live:
            if s.state == "starting" and not s.healthy and s.adopted_at is None:
                # not serving yet: it reads its stop file only once started (5 s of grace for
                # nothing after a Ctrl-C during `up`); its start is crash-safe, so end it now
                s.handle.terminate()
        done = stop_escalating([(s.name, s.handle, s.spec.stop_file) for s in live], grace, self._clock, reason)
        for s in live:
            self._scan_log(s)
            code, how = done[s.name]
            s.handle, s.pid, s.healthy, s.last_exit_code, s.state = None, None, False, code, "stopped"
            self._emit(s, "stop", f"{how}, exit code {code}", exit_code=code, reason=reason)
            if self._on_spawn is not None:
                self._on_spawn(s.spec, None)
        return {name: code for name, (code, _) in done.items()}
