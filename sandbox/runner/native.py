"""The native supervisor behind `sandbox up`: starts services in order (coordinator, then brokers),
restarts them with backoff, spots crash loops and unhealthy services, and recovers journals
(repair, or quarantine + clean start + re-created topics) as the RecoveryPolicy says."""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterable

from sandbox.runner.logscan import FOLDER_EVENTS, GROUP_EVENTS, LOGIN_EVENTS, describe_event, log_size, scan_events
from sandbox.runner.policy import RecoveryPolicy
from sandbox.runner.probe import ProbeResult, kafka_probe, port_bindable, port_owner
from sandbox.runner.process import Handle, RealSpawner, ServiceSpec, Spawner
from sandbox.runner.rehearsal import Rehearsal
from sandbox.runner.service import (
    EventLog, ServiceRecord, StopPlan, all_ready, catalog_epoch, iso_utc, shown_problem,
)
from sandbox.runner.recovery import FILE_HELD, PORT_HELD, Recovery
from sandbox.runner.stopping import Stopping
from sandbox.runner.statefile import StatePublisher, supervisor_identity

__all__ = ["Supervisor", "ServiceSpec", "RecoveryPolicy", "ProbeResult", "RealSpawner", "Spawner", "Handle",
           "kafka_probe", "port_owner", "STATES", "EVENT_KINDS"]

log = logging.getLogger("sandbox.runner")

STATES = ("starting", "running", "recovering", "crashed", "stopped", "paused")
EVENT_KINDS = ("start", "stop", "crash", "restart", "repair", "wipe", "topics-recreated", "unhealthy",
               "healthy", "crash-loop", "config-error", "disk-full", "file-in-use", "port-in-use", "adopt", "error", "kill", "pause",
               "resume")
MAX_EVENTS = 200
LOG_TAIL_LINES = 20
STATE_REFRESH_S = 1.0  # rewrite the state file at least this often: its heartbeat (readers call it
                       # stale after HEARTBEAT_STALE_S) and uptimes
ADOPT_GRACE_S = 1.0    # an adopted process that does not answer its probe this long is replaced
STARTUP_ALLOWANCE = 3    # a service not yet healthy since its start gets this many times unhealthy_after_s


class Supervisor(Recovery, Stopping, Rehearsal):
    """A honcho-like manager and the one owner of every service's state: `step()` is one
    deterministic pass on the injected clock (commands from other threads wait on a queue;
    stopping is a state with deadlines, never a blocking call), and each pass publishes an
    immutable snapshot that status, /healthz and the state file read without a lock."""

    def __init__(self, services: Iterable[ServiceSpec], recovery: RecoveryPolicy | None = None, *,
                 spawner: Spawner | None = None, clock: Callable[[], float] = time.monotonic,
                 wall_clock: Callable[[], float] = time.time,
                 probe: Callable[[ServiceSpec], ProbeResult] | None = None,
                 on_event: Callable[[dict], None] | None = None, quarantine_root: Path | None = None,
                 recreate_topics: Callable[[str], list[str]] | None = None, state_path: Path | None = None,
                 sleep: Callable[[float], None] = time.sleep, probe_interval_s: float = 1.0,
                 adopt: Callable[[ServiceSpec], Handle | None] | None = None,
                 on_spawn: Callable[[ServiceSpec, int | None], None] | None = None,
                 identity: dict[str, Any] | None = None, recreate_in_thread: bool = False,
                 port_free: Callable[[str, int], bool] = lambda host, port: port_bindable(port, host)) -> None:
        """adopt: the live process of a service started by an earlier supervisor, or None.
        on_spawn: told (spec, pid) when a service starts and (spec, None) when it is gone.
        port_free: whether (host, port) can be bound now (asked before starting a service whose
        port another program took)."""
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
        self._port_free = port_free
        if quarantine_root is None:
            base = specs[0].data_dir.parent if specs else Path(".sandbox")
            quarantine_root = base / "quarantine"
        self.quarantine_root = Path(quarantine_root)
        self._recreate_topics = recreate_topics
        self.recreate_in_thread = recreate_in_thread   # restores off the pass (Recovery._recreate)
        self._recreating: dict[str, tuple[Any, int]] = {}   # service -> (its restore's Future, wipes then)
        self.state_path = Path(state_path) if state_path else None
        self._sleep = sleep
        self._probe_interval = probe_interval_s
        self._adopt = adopt
        self._on_spawn = on_spawn
        self._identity = identity or supervisor_identity()
        self._was_ready = False
        self._events = EventLog(wall_clock, on_event, MAX_EVENTS)
        self._lock = threading.RLock()
        self._commands: queue.SimpleQueue = queue.SimpleQueue()
        self._started_wall = wall_clock()
        self._writer = StatePublisher(state_path, clock, wall=wall_clock, sleep=sleep, refresh_s=STATE_REFRESH_S)
        self._published: dict[str, Any] = self._build_snapshot()

    # ------------------------------------------------------------------ public

    @property
    def events(self) -> list[dict]:
        return list(self._published["events"])

    def record_event(self, service: str, kind: str, detail: str, **extra: Any) -> dict:
        """An event from outside the loop (manifest reload, topic re-creation) in the same stream."""
        with self._lock:
            svc = next((s for s in self._services if s.name == service), None)
            event = self._emit(svc, kind, detail, **extra)
            if svc is None:
                event["service"] = service
            self._publish(force=True)
            return event

    def service(self, name: str) -> dict:
        """The status of one service (as in snapshot()["services"])."""
        with self._lock:
            return self._status(self._get(name), self._clock())

    def step(self) -> None:
        """One pass: commands, reap exits, scan logs, advance stops, probe, restart or recover,
        start what is due, publish. Whatever goes wrong with one service is an event on it."""
        with self._lock:
            now = self._clock()
            if self._run_commands(now):
                self._publish(force=True)   # a kill or pause shows before this pass's probes wait
            self._resume_due(now)
            for svc in self._services:
                self._guarded(svc, now, self._observe)
            for svc in self._services:
                if svc.handle is not None and svc.stop is None and svc.paused_until is None:
                    self._guarded(svc, now, self._check_health)
            for svc in self._due(now):
                self._guarded(svc, now, self._spawn)
            self._publish()

    def run(self, stop: threading.Event, interval: float = 0.2, *, stop_services: bool = True) -> None:
        """Loop step() until `stop` is set; then (by default) stop every service."""
        try:
            while not stop.is_set():
                try:
                    self.step()
                except Exception:  # step() guards each service; this is the last line only
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
                self._unpause(svc, self._clock(), quiet=True)   # a frozen process reads no stop file
                svc.wanted = False
                svc.next_start = None
                svc.stop = None
            self._stop_group([s for s in self._services if s.spec.role == "broker"], grace)
            self._stop_group([s for s in self._services if s.spec.role == "coordinator"], grace)
            for svc in self._services:
                svc.state = "stopped"
            self._publish(force=True)

    def restart(self, name: str | None = None, grace_s: float | None = None) -> None:
        """Ask for a graceful restart of one service (or all); also revives one that gave up. It
        happens over the next steps: brokers stop before the coordinator, then everything starts."""
        if name is not None:
            with self._lock:
                self._get(name)   # an unknown name is the caller's error, now
        self._commands.put(("restart", name, self.policy.grace_s if grace_s is None else grace_s))

    def catalog_epoch(self) -> int | None:
        """See service.catalog_epoch: None while the topic catalog must not be refreshed."""
        with self._lock:
            return catalog_epoch(self._events, self._services)

    def snapshot(self) -> dict[str, Any]:
        """The last published state (no lock: readers never wait for a step or a stop)."""
        return self._published

    # ------------------------------------------------------------------ internals

    def _get(self, name: str) -> ServiceRecord:
        for svc in self._services:
            if svc.name == name:
                return svc
        known = ", ".join(s.name for s in self._services)
        raise KeyError(f"no service named {name!r}; the services are: {known}")

    def _guarded(self, svc: ServiceRecord, now: float, action: Callable[[ServiceRecord, float], None]) -> None:
        try:
            action(svc, now)
        except Exception as e:
            self._fault(svc, e, now)

    def _fault(self, svc: ServiceRecord, e: Exception, now: float) -> None:
        """Something went wrong handling this service: one event (not repeated while it recurs),
        and if it is not running, another try after the usual backoff."""
        text = f"{type(e).__name__}: {e}"
        if text != svc.last_fault:
            svc.last_fault = text
            log.warning("handling %s failed", svc.name, exc_info=True)
            self._emit(svc, "error", f"the supervisor could not handle it: {text}; retrying")
        if svc.handle is None and svc.wanted:
            svc.state = "recovering"
            svc.next_start = now + self.policy.backoff(svc.window.record(now))

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
            "problem": shown_problem(svc),
        }

    def _emit(self, svc: ServiceRecord | None, kind: str, detail: str, **extra: Any) -> dict:
        return self._events.emit(svc.name if svc else "supervisor", kind, detail, **extra)

    def _build_snapshot(self) -> dict[str, Any]:
        now = self._clock()
        services = [self._status(s, now) for s in self._services]
        self._was_ready = self._was_ready or all_ready(services)
        return {
            **self._identity,
            "started_at": iso_utc(self._started_wall),
            "updated_at": iso_utc(self._wall()),
            "heartbeat": self._wall(),
            "services": services,
            "was_ready": self._was_ready,   # every service healthy at some time (events get trimmed)
            "events": list(self._events),
        }

    def _publish(self, force: bool = False) -> None:
        snap = self._build_snapshot()
        self._published = snap
        stable = {k: v for k, v in snap.items() if k not in ("updated_at", "heartbeat")}
        stable["services"] = [{k: v for k, v in s.items() if k not in ("uptime_s", "latency_ms")}
                              for s in snap["services"]]
        self._writer.publish(snap, json.dumps(stable, sort_keys=True, default=str), force)

    def _coordinators_healthy(self) -> bool:
        return all(s.handle is not None and s.healthy for s in self._services if s.spec.role == "coordinator")

    # ---- commands

    def _run_commands(self, now: float) -> bool:
        """Carry out the queued commands; returns whether there were any."""
        ran = False
        while True:
            try:
                kind, name, arg = self._commands.get_nowait()
            except queue.Empty:
                return ran
            ran = True
            if kind in ("kill", "pause"):
                self._guarded(self._get(name), now, lambda svc, now: self._rehearse(kind, svc, arg, now))
            elif kind == "restart":
                grace = arg
                targets = [self._get(name)] if name else list(self._services)
                for svc in targets:   # brokers first; a coordinator waits for them (see _advance_stop)
                    if svc.spec.role == "coordinator" and len(targets) > 1:
                        svc.stop = StopPlan("restart", "restart", grace, "queued", now)
                        svc.next_start = None
                    else:
                        self._begin_stop(svc, now, grace, "restart", then="restart")

    # ---- observing processes

    def _observe(self, svc: ServiceRecord, now: float) -> None:
        if svc.handle is None:
            if not svc.ever_started and self._adopt is not None and svc.wanted:
                self._try_adopt(svc, now)
            if svc.stop is not None and svc.handle is None:
                self._finish_stop(svc, now, None, "was not running")
            return
        if svc.stop is not None:
            self._advance_stop(svc, now)
            return
        code = svc.handle.poll()
        if code is None:
            self._scan_log(svc)
        else:
            svc.paused_until = None   # killed while paused: an exit like any other
            self._on_exit(svc, code, now)

    def _try_adopt(self, svc: ServiceRecord, now: float) -> None:
        handle = self._adopt(svc.spec)
        if handle is None:
            return
        svc.handle, svc.pid = handle, handle.pid
        # its uptime counts from its start, not from the adoption (SPEC: seconds since it started)
        started = getattr(handle, "started_wall", None)
        wall = self._wall()
        svc.started_at = started if started is not None and started <= wall else wall
        svc.started_mono = now - (wall - svc.started_at)
        svc.state, svc.healthy, svc.adopted_at, svc.been_healthy = "starting", False, now, False
        svc.ever_started, svc.next_start = True, None
        svc.start_offset = svc.log_offset = log_size(svc.spec.log_path)
        self._emit(svc, "adopt", f"pid {handle.pid}, started by an earlier supervisor", pid=handle.pid)

    def _due(self, now: float) -> list[ServiceRecord]:
        due = []
        for svc in self._services:  # coordinators come first in this list
            if svc.handle is not None or not svc.wanted or svc.next_start is None or now < svc.next_start:
                continue
            # a first start overlaps the coordinator's (brokers wait for it themselves); a restart
            # waits for it, so a broker that died for want of a coordinator does not loop into a wipe
            if svc.spec.role == "broker" and svc.ever_started and not self._coordinators_healthy():
                continue
            if any(o.stop is not None and o.stop.then == "restart" for o in self._services):
                continue   # a requested restart starts everything once everything has stopped
            due.append(svc)
        return due

    def _spawn(self, svc: ServiceRecord, now: float) -> None:
        spec = svc.spec
        if self._port_still_held(svc, now) or not self._journal_usable(svc, now):
            return
        try:
            spec.stop_file.unlink()  # a stop file left by a killed run would stop it at once
        except OSError:
            pass
        svc.start_offset = svc.log_offset = log_size(spec.log_path)
        try:
            handle = self._spawner.spawn(spec)
        except OSError as e:
            if isinstance(e, PermissionError) and e.filename in (str(spec.log_path), spec.log_path):
                # its log file refused (Windows: held by another program; an immutable or read-only
                # file): nothing is wrong with the service; started again every second until it opens
                self._wait_for_held_file(svc, f"{spec.log_path} cannot be opened ({e.strerror or e}); make it "
                                              f"writable if another program does not let go of it", now, started=False)
                return
            svc.state, svc.next_start = "crashed", None
            svc.problem = f"could not start {spec.argv[0]}: {e}"
            self._emit(svc, "crash", svc.problem, exit_code=None, log_tail=[])
            return
        svc.handle, svc.pid = handle, handle.pid
        svc.started_at, svc.started_mono = self._wall(), now
        svc.state, svc.healthy, svc.latency_ms = "starting", False, None
        svc.failing_since = svc.last_probe_at = svc.adopted_at = None
        svc.next_start, svc.last_fault, svc.been_healthy = None, None, False
        # a held file's or port's problem stays until the service is healthy: said once, not at every try
        svc.problem = svc.problem if (svc.problem or "").startswith((FILE_HELD, PORT_HELD)) else None
        if self._on_spawn is not None:
            self._on_spawn(spec, handle.pid)
        if svc.ever_started and (svc.problem or "").startswith(FILE_HELD):
            pass   # tried every second while a file is held: its file-in-use event said so once
        elif svc.ever_started:
            self._emit(svc, "restart", f"pid {handle.pid}" + (f" ({svc.restart_reason})" if svc.restart_reason else ""),
                       pid=handle.pid, restarts=svc.restarts)
        else:
            self._emit(svc, "start", f"pid {handle.pid}", pid=handle.pid)
        svc.ever_started = True

    def _scan_log(self, svc: ServiceRecord) -> None:
        found, svc.log_offset = scan_events(svc.spec.log_path, svc.log_offset)
        for kind, detail in found:
            if kind == "config-error":
                svc.config_error = detail
                continue   # reported with the exit that follows it
            if kind in ("storage-error", "storage-ok"):
                self._storage_event(svc, kind, detail)
                continue
            if kind in FOLDER_EVENTS:
                self._emit(svc, kind, describe_event(kind, detail), topic=detail.get("topic"),
                           partition=detail.get("partition"))
                continue
            if kind in GROUP_EVENTS:
                self._emit(svc, kind, describe_event(kind, detail), group=detail.get("group"))
                continue
            if kind in LOGIN_EVENTS:
                self._emit(svc, kind, describe_event(kind, detail), listener=detail.get("listener"))
                continue
            extra = {"bytes": detail["bytes"]} if "bytes" in detail else {}
            self._emit(svc, "repair", describe_event(kind, detail), source=kind, **extra)

    def _storage_event(self, svc: ServiceRecord, kind: str, detail: dict) -> None:
        if kind == "storage-error":
            problem = f"disk full or failing: {detail.get('message', 'writes fail')}; free space on that disk"
            if svc.problem != problem:   # a broker says it again until its line is written: one event
                svc.problem = problem
                self._emit(svc, "disk-full", svc.problem, path=detail.get("path"))
        elif svc.problem and svc.problem.startswith("disk full"):
            svc.problem = None
            self._emit(svc, "disk-full", "writes succeed again", resolved=True)

    def _check_health(self, svc: ServiceRecord, now: float) -> None:
        if self._probe is None:
            result = ProbeResult(True, "process", "process running", None)
        else:
            if svc.healthy and svc.last_probe_at is not None and now - svc.last_probe_at < self._probe_interval:
                if svc.recreate_pending:   # asked every pass, not once a probe: brokers register soon
                    self._recreate(svc)
                return
            try:
                result = self._probe(svc.spec)
            except Exception as e:  # a broken probe is a failing probe, not a dead supervisor
                result = ProbeResult(False, getattr(self._probe, "__name__", "probe"), f"probe raised {e!r}")
        svc.last_probe_at = now
        svc.latency_ms = result.latency_ms
        if result.ok:
            failed_for = None if svc.failing_since is None or not svc.been_healthy else now - svc.failing_since
            svc.failing_since = svc.adopted_at = None
            svc.been_healthy = svc.served = True
            if not svc.healthy:
                svc.healthy, svc.state, svc.fresh_journal = True, "running", False
                # a failure shorter than unhealthy_after_s has no "unhealthy" event of its own: this
                # one says how long the service did not answer
                detail = result.detail if failed_for is None else \
                    f"answering again after {failed_for:.1f}s of failed probes ({result.detail})"
                self._emit(svc, "healthy", detail, probe=result.probe, latency_ms=result.latency_ms)
            if svc.problem and svc.problem.startswith(FILE_HELD):
                svc.problem = None
                self._emit(svc, "file-in-use", "the file was let go: running again", resolved=True)
            if svc.problem and svc.problem.startswith(PORT_HELD):
                svc.problem = None
                self._emit(svc, "port-in-use", f"port {svc.spec.port} is free again: running", resolved=True)
            if svc.recreate_pending:
                self._recreate(svc)
            return
        if svc.failing_since is None:
            svc.failing_since = now
        svc.healthy = False
        failing_for = now - svc.failing_since
        if svc.adopted_at is not None and now - svc.adopted_at >= ADOPT_GRACE_S:
            # taken over from a dead supervisor and not answering (paused, wedged): replace it now
            self._emit(svc, "unhealthy", f"adopted process does not answer ({result.detail}): replacing it",
                       probe=result.probe)
            self._begin_stop(svc, now, 0.0, "unhealthy", then="after-unhealthy")
            return
        # a service not yet healthy since it was started may be replaying a long journal on a loaded
        # machine: killing it then only starts the replay again (Docker's start_period, likewise)
        # (a paused and resumed one has been healthy: it gets the usual allowance)
        starting = not svc.been_healthy
        allowed = self.policy.unhealthy_after_s * (STARTUP_ALLOWANCE if starting else 1)
        if failing_for < allowed or failing_for == 0:
            return
        since = " since it was started" if starting else ""
        self._emit(svc, "unhealthy", f"probe {result.probe} failing for {failing_for:.1f}s{since}: {result.detail}",
                   probe=result.probe)
        self._begin_stop(svc, now, self.policy.grace_s, "unhealthy", then="after-unhealthy")
