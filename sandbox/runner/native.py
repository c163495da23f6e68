"""The native supervisor behind `sandbox up`: starts services in order (coordinator, then brokers),
restarts them with backoff, spots crash loops and unhealthy services, and recovers journals
(repair, or quarantine + clean start + re-created topics) as the RecoveryPolicy says."""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterable

from sandbox.runner.logscan import describe_repair, log_size, scan_events, tail_lines
from sandbox.runner.policy import EXIT_UNREPAIRABLE, EXIT_USAGE, RecoveryPolicy
from sandbox.runner.probe import ProbeResult, kafka_probe, port_owner
from sandbox.runner.process import Handle, RealSpawner, ServiceSpec, Spawner, stop_escalating
from sandbox.runner.quarantine import QuarantineError, has_data, prune, quarantine
from sandbox.runner.service import EventLog, ServiceRecord, catalog_epoch, iso_utc, recreate_topics
from sandbox.runner.statefile import write_state

__all__ = ["Supervisor", "ServiceSpec", "RecoveryPolicy", "ProbeResult", "RealSpawner", "Spawner", "Handle",
           "kafka_probe", "port_owner", "STATES", "EVENT_KINDS"]

log = logging.getLogger("sandbox.runner")

STATES = ("starting", "running", "recovering", "crashed", "stopped")
EVENT_KINDS = ("start", "stop", "crash", "restart", "repair", "wipe", "topics-recreated", "unhealthy",
               "healthy", "crash-loop")
MAX_EVENTS = 200
LOG_TAIL_LINES = 20
STATE_REFRESH_S = 5.0  # rewrite the state file at least this often (latency, uptime)


class Supervisor:
    """A honcho-like manager: `step()` is one deterministic pass; `run()` loops it in a thread."""

    def __init__(self, services: Iterable[ServiceSpec], recovery: RecoveryPolicy | None = None, *,
                 spawner: Spawner | None = None, clock: Callable[[], float] = time.monotonic,
                 wall_clock: Callable[[], float] = time.time,
                 probe: Callable[[ServiceSpec], ProbeResult] | None = None,
                 on_event: Callable[[dict], None] | None = None, quarantine_root: Path | None = None,
                 recreate_topics: Callable[[str], list[str]] | None = None, state_path: Path | None = None,
                 sleep: Callable[[float], None] = time.sleep, probe_interval_s: float = 1.0) -> None:
        specs = list(services)
        names = [s.name for s in specs]
        if len(set(names)) != len(names):
            raise ValueError(f"service names must be unique: {names}")
        self.policy = recovery or RecoveryPolicy()
        # coordinators first: they start first and their health gates the brokers
        specs.sort(key=lambda s: 0 if s.role == "coordinator" else 1)
        self._services = [ServiceRecord(s, self.policy) for s in specs]
        self._spawner = spawner or RealSpawner()
        self._clock = clock
        self._wall = wall_clock
        self._probe = probe
        if quarantine_root is None:
            base = specs[0].data_dir.parent if specs else Path(".sandbox")
            quarantine_root = base / "quarantine"
        self.quarantine_root = Path(quarantine_root)
        self._recreate_topics = recreate_topics
        self.state_path = Path(state_path) if state_path else None
        self._sleep = sleep
        self._probe_interval = probe_interval_s
        self._events = EventLog(wall_clock, on_event, MAX_EVENTS)
        self._lock = threading.RLock()
        self._started_wall = wall_clock()
        self._last_written_key: str | None = None
        self._last_written_at: float | None = None

    # ------------------------------------------------------------------ public

    @property
    def events(self) -> list[dict]:
        with self._lock:
            return list(self._events)

    def record_event(self, service: str, kind: str, detail: str, **extra: Any) -> dict:
        """An event from outside the loop (manifest reload, topic re-creation) in the same stream."""
        with self._lock:
            svc = next((s for s in self._services if s.name == service), None)
            event = self._emit(svc, kind, detail, **extra)
            if svc is None:
                event["service"] = service
            self._flush(force=True)
            return event

    def service(self, name: str) -> dict:
        """The status of one service (as in snapshot()["services"])."""
        with self._lock:
            return self._status(self._get(name), self._clock())

    def step(self) -> None:
        """One pass: reap exits, scan logs, probe, restart or recover, start what is due, save state."""
        with self._lock:
            now = self._clock()
            for svc in self._services:
                if svc.handle is not None:
                    code = svc.handle.poll()
                    if code is None:
                        self._scan_log(svc)
                    else:
                        self._on_exit(svc, code, now)
            for svc in self._services:
                if svc.handle is not None:
                    self._check_health(svc, now)
            self._start_due(now)
            self._flush()

    def run(self, stop: threading.Event, interval: float = 0.2, *, stop_services: bool = True) -> None:
        """Loop step() until `stop` is set; then (by default) stop every service."""
        try:
            while not stop.is_set():
                try:
                    self.step()
                except Exception:  # one bad pass must not take the supervisor down
                    log.exception("supervisor step failed")
                stop.wait(interval)
        finally:
            if stop_services:
                self.stop_all()

    def stop_all(self, grace_s: float | None = None) -> None:
        """Brokers first, then the coordinator: stop file, then terminate, then kill. Leaves no process."""
        grace = self.policy.grace_s if grace_s is None else grace_s
        with self._lock:
            for svc in self._services:
                svc.wanted = False
                svc.next_start = None
            self._stop_group([s for s in self._services if s.spec.role == "broker"], grace)
            self._stop_group([s for s in self._services if s.spec.role == "coordinator"], grace)
            for svc in self._services:
                svc.state = "stopped"
            self._flush(force=True)

    def restart(self, name: str | None = None, grace_s: float | None = None) -> None:
        """Graceful restart of one service (or all); also revives a service that gave up (crashed)."""
        grace = self.policy.grace_s if grace_s is None else grace_s
        with self._lock:
            targets = [self._get(name)] if name else list(self._services)
            self._stop_group([s for s in targets if s.spec.role == "broker"], grace)
            self._stop_group([s for s in targets if s.spec.role == "coordinator"], grace)
            now = self._clock()
            for svc in targets:
                svc.wanted = True
                svc.state = "starting"
                svc.next_start = now
                svc.restart_reason = "requested"
                svc.window.clear()
                svc.looping = svc.repair_attempted = False
            self._start_due(now)
            self._flush(force=True)

    def catalog_epoch(self) -> int | None:
        """See service.catalog_epoch: None while the topic catalog must not be refreshed."""
        with self._lock:
            return catalog_epoch(self._events, self._services)

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            now = self._clock()
            return {
                "supervisor_pid": os.getpid(),
                "started_at": iso_utc(self._started_wall),
                "updated_at": iso_utc(self._wall()),
                "services": [self._status(s, now) for s in self._services],
                "events": list(self._events),
            }

    # ------------------------------------------------------------------ internals

    def _get(self, name: str) -> ServiceRecord:
        for svc in self._services:
            if svc.name == name:
                return svc
        known = ", ".join(s.name for s in self._services)
        raise KeyError(f"no service named {name!r}; the services are: {known}")

    def _status(self, svc: ServiceRecord, now: float) -> dict[str, Any]:
        running = svc.handle is not None and svc.started_mono is not None
        return {
            "name": svc.name, "role": svc.spec.role, "state": svc.state, "healthy": svc.healthy,
            "pid": svc.pid, "port": svc.spec.port,
            "started_at": iso_utc(svc.started_at) if running and svc.started_at is not None else None,
            "uptime_s": round(now - svc.started_mono, 3) if running else None,
            "restarts": svc.restarts, "last_exit_code": svc.last_exit_code,
            "latency_ms": None if svc.latency_ms is None else round(svc.latency_ms, 3),
            "data_dir": str(svc.spec.data_dir), "log_path": str(svc.spec.log_path),
        }

    def _emit(self, svc: ServiceRecord | None, kind: str, detail: str, **extra: Any) -> dict:
        return self._events.emit(svc.name if svc else "supervisor", kind, detail, **extra)

    def _flush(self, force: bool = False) -> None:
        if self.state_path is None:
            return
        snap = self.snapshot()
        stable = {k: v for k, v in snap.items() if k != "updated_at"}
        stable["services"] = [{k: v for k, v in s.items() if k not in ("uptime_s", "latency_ms")}
                              for s in snap["services"]]
        key = json.dumps(stable, sort_keys=True, default=str)
        now = self._clock()
        stale = self._last_written_at is None or now - self._last_written_at >= STATE_REFRESH_S
        if not force and key == self._last_written_key and not stale:
            return
        try:
            write_state(self.state_path, snap, sleep=self._sleep)
        except OSError as e:
            log.warning("could not write the state file %s: %s", self.state_path, e)
            return
        self._last_written_key, self._last_written_at = key, now

    def _coordinators_healthy(self) -> bool:
        return all(s.handle is not None and s.healthy for s in self._services if s.spec.role == "coordinator")

    def _start_due(self, now: float) -> None:
        for svc in self._services:  # coordinators come first in this list
            if svc.handle is not None or not svc.wanted or svc.next_start is None or now < svc.next_start:
                continue
            # a first start overlaps the coordinator's (brokers wait for it themselves); a restart
            # waits for it, so a broker that died for want of a coordinator does not loop into a wipe
            if svc.spec.role == "broker" and svc.ever_started and not self._coordinators_healthy():
                continue
            self._spawn(svc, now)

    def _spawn(self, svc: ServiceRecord, now: float) -> None:
        spec = svc.spec
        try:
            spec.stop_file.unlink()  # a stop file left by a killed run would stop it at once
        except OSError:
            pass
        spec.data_dir.mkdir(parents=True, exist_ok=True)
        svc.start_offset = svc.log_offset = log_size(spec.log_path)
        try:
            handle = self._spawner.spawn(spec)
        except OSError as e:
            svc.state, svc.next_start = "crashed", None
            self._emit(svc, "crash", f"could not start {spec.argv[0]}: {e}", exit_code=None, log_tail=[])
            return
        svc.handle, svc.pid = handle, handle.pid
        svc.started_at, svc.started_mono = self._wall(), now
        svc.state, svc.healthy, svc.latency_ms = "starting", False, None
        svc.failing_since = svc.last_probe_at = None
        svc.next_start = None
        if svc.ever_started:
            self._emit(svc, "restart", f"pid {handle.pid}" + (f" ({svc.restart_reason})" if svc.restart_reason else ""),
                       pid=handle.pid, restarts=svc.restarts)
        else:
            self._emit(svc, "start", f"pid {handle.pid}", pid=handle.pid)
        svc.ever_started = True

    def _scan_log(self, svc: ServiceRecord) -> None:
        found, svc.log_offset = scan_events(svc.spec.log_path, svc.log_offset)
        for kind, detail in found:
            extra = {"bytes": detail["bytes"]} if "bytes" in detail else {}
            self._emit(svc, "repair", describe_repair(kind, detail), source=kind, **extra)

    def _check_health(self, svc: ServiceRecord, now: float) -> None:
        if self._probe is None:
            result = ProbeResult(True, "process", "process running", None)
        else:
            if svc.healthy and svc.last_probe_at is not None and now - svc.last_probe_at < self._probe_interval:
                return
            try:
                result = self._probe(svc.spec)
            except Exception as e:  # a broken probe is a failing probe, not a dead supervisor
                result = ProbeResult(False, getattr(self._probe, "__name__", "probe"), f"probe raised {e!r}")
        svc.last_probe_at = now
        svc.latency_ms = result.latency_ms
        if result.ok:
            svc.failing_since = None
            if not svc.healthy:
                svc.healthy, svc.state, svc.fresh_journal = True, "running", False
                self._emit(svc, "healthy", result.detail, probe=result.probe, latency_ms=result.latency_ms)
            if svc.recreate_pending:
                self._recreate(svc)
            return
        if svc.failing_since is None:
            svc.failing_since = now
        svc.healthy = False
        failing_for = now - svc.failing_since
        if failing_for < self.policy.unhealthy_after_s or failing_for == 0:
            return
        self._emit(svc, "unhealthy", f"probe {result.probe} failing for {failing_for:.1f}s: {result.detail}",
                   probe=result.probe)
        code = self._stop_group([svc], self.policy.grace_s, reason="unhealthy")[svc.name]
        self._after_exit(svc, code, now, cause="unhealthy")

    def _on_exit(self, svc: ServiceRecord, code: int, now: float) -> None:
        self._scan_log(svc)  # repair lines it wrote before dying come first
        tail = tail_lines(svc.spec.log_path, LOG_TAIL_LINES, since=svc.start_offset)
        svc.handle, svc.pid, svc.healthy, svc.last_exit_code = None, None, False, code
        detail = f"exit code {code}"
        if code == EXIT_UNREPAIRABLE:
            detail += " (its journal cannot be repaired)"
        if any("already in use" in line for line in tail):
            owner = port_owner(svc.spec.port)
            if owner:
                detail += f"; port {svc.spec.port} is held by {owner}"
        self._emit(svc, "crash", detail, exit_code=code, log_tail=tail)
        self._after_exit(svc, code, now)

    def _after_exit(self, svc: ServiceRecord, code: int | None, now: float, cause: str = "crash") -> None:
        """Decide what follows an exit: nothing, a restart with backoff, a crash-loop, or a wipe."""
        policy = self.policy
        if not svc.wanted:
            svc.state = "stopped"
            return
        if policy.on_crash == "off":
            svc.state, svc.next_start = "crashed", None
            return
        count = svc.window.record(now)
        looping = count > policy.max_restarts
        unrepairable = code == EXIT_UNREPAIRABLE
        if not looping and not unrepairable:
            svc.looping = svc.repair_attempted = False
        wipe = False
        if looping or unrepairable:
            why = (f"journal cannot be repaired (exit code {code})" if unrepairable
                   else f"{count} exits within {policy.restart_window_s:g}s")
            mode = policy.on_corrupt_journal
            if mode == "wipe" or (mode == "repair-then-wipe" and (unrepairable or svc.repair_attempted)):
                wipe = True
            elif mode == "repair-then-wipe":
                svc.repair_attempted = svc.looping = True
                self._emit(svc, "crash-loop", f"{why}; restarting once more so it can repair its journal, "
                                              f"then its journal will be quarantined", exits=count)
            elif not svc.looping:
                svc.looping = True
                self._emit(svc, "crash-loop", f"{why}; on_corrupt_journal=repair keeps restarting it; "
                                              f"`sandbox recover --wipe` quarantines the journal", exits=count)
            if wipe and code == EXIT_USAGE:
                wipe = False
                if not svc.looping:
                    svc.looping = True
                    self._emit(svc, "crash-loop", f"{why}; exit code {EXIT_USAGE} is a usage error (see its log), "
                                                  f"wiping the journal would not help", exits=count)
        if wipe:
            if svc.fresh_journal:
                svc.state, svc.next_start = "crashed", None
                self._emit(svc, "crash-loop", f"{why}; it keeps failing with a fresh journal, so this is not a "
                                              f"journal problem: giving up (see {svc.spec.log_path})", exits=count)
                return
            if not self._wipe(svc):
                svc.state, svc.next_start = "crashed", None
                return
            svc.window.clear()
            svc.looping = svc.repair_attempted = False
            svc.restarts += 1
            svc.state, svc.next_start, svc.restart_reason = "recovering", now, "clean journal"
            return
        svc.restarts += 1
        delay = policy.backoff(count)
        svc.state, svc.next_start = "recovering", now + delay
        svc.restart_reason = f"after {cause}, backoff {delay:g}s"

    def _wipe(self, svc: ServiceRecord) -> bool:
        spec = svc.spec
        svc.fresh_journal = svc.recreate_pending = True
        svc.recreate_failed_reported = False
        if not has_data(spec.data_dir):
            self._emit(svc, "wipe", f"journal {spec.data_dir} was already empty: nothing to quarantine", path=None)
            return True
        try:
            where, how = quarantine(spec.data_dir, self.quarantine_root, spec.name, self._wall(), sleep=self._sleep)
        except QuarantineError as e:
            svc.recreate_pending = False
            self._emit(svc, "crash-loop", f"{e}; giving up, fix it and run `sandbox recover --wipe`")
            return False
        pruned = prune(self.quarantine_root, spec.name, self.policy.keep_quarantines, sleep=self._sleep)
        detail = f"journal quarantined: {where}" + ("" if how == "renamed" else f" ({how})")
        if pruned:
            detail += f"; deleted {len(pruned)} older quarantine(s) (keep_quarantines={self.policy.keep_quarantines})"
        self._emit(svc, "wipe", detail, path=str(where), pruned=[str(p) for p in pruned])
        return True

    def _recreate(self, svc: ServiceRecord) -> None:
        recreate_topics(self._events, svc, self._recreate_topics)

    def _stop_group(self, svcs: list[ServiceRecord], grace: float, reason: str = "stop") -> dict[str, int | None]:
        """Stop file, wait grace/2, terminate, wait grace/2, kill. Returns exit codes by name."""
        live = [s for s in svcs if s.handle is not None]
        done = stop_escalating([(s.name, s.handle, s.spec.stop_file) for s in live], grace, self._clock, reason)
        for s in live:
            self._scan_log(s)
            code, how = done[s.name]
            s.handle, s.pid, s.healthy, s.last_exit_code, s.state = None, None, False, code, "stopped"
            self._emit(s, "stop", f"{how}, exit code {code}", exit_code=code, reason=reason)
        return {name: code for name, (code, _) in done.items()}
