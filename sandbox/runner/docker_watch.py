"""The supervisor's loop in docker mode: containers restart by their own policy; this watches them
through the engine (die/start events, health, logs) and applies the same RecoveryPolicy as natively:
crash events, crash loop or exit code 4 -> the journal volume quarantined (kept) and a fresh one,
topics re-created, unhealthy -> restart. Same snapshot/events/state file as the native Supervisor."""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path
from typing import Any, Callable

import psutil

from sandbox.runner.docker_follow import followed_event
from sandbox.runner.docker_service import Engine, WatchedContainer
from sandbox.runner.docker_plan import HEALTH_INTERVAL_S, docker_time
from sandbox.runner.logscan import FOLDER_EVENTS, GROUP_EVENTS, LOGIN_EVENTS, describe_event, parse_events
from sandbox.lifecycle import EXIT_CONFIG
from sandbox.runner.policy import EXIT_UNREPAIRABLE, EXIT_USAGE, RecoveryPolicy
from sandbox.runner.probe import api_versions_round_trip
from sandbox.runner.service import (
    EventLog, all_ready, catalog_epoch, iso_utc, recreate_off_pass, recreate_topics, shown_problem,
)
from sandbox.runner.statefile import StatePublisher, supervisor_identity

log = logging.getLogger("sandbox.runner")

MAX_EVENTS = 200
MEASURE_EVERY_S = 5.0
FOLLOW_EVERY_S = 3.0    # how often a running container's log is read for the events status shows
STATE_REFRESH_S = 1.0   # the state file's heartbeat (readers call it stale after a few seconds)


class DockerWatcher:
    def __init__(self, engine: Engine, recovery: RecoveryPolicy | None = None, *,
                 host: str = "127.0.0.1", state_path=None, on_event: Callable[[dict], None] | None = None,
                 recreate_topics: Callable[[str], list[str]] | None = None,
                 clock: Callable[[], float] = time.monotonic, wall_clock: Callable[[], float] = time.time,
                 probe=api_versions_round_trip, recreate_in_thread: bool = False) -> None:
        self.engine = engine
        self.policy = recovery or RecoveryPolicy()
        folder = Path(state_path).parent if state_path else None
        self._svcs = [WatchedContainer(p.service, p.role, p.host_port, p.name, self.policy,
                           folder / f"{p.service}.restore-owed" if folder else None) for p in engine.plans.values()]
        self._recreating: dict[str, tuple[Any, int]] = {}   # service -> (its restore's Future, wipes then)
        self.recreate_in_thread = recreate_in_thread        # restores off the pass (service.recreate_off_pass)
        self._host = host
        self.state_path = state_path
        self._recreate_topics = recreate_topics
        self._clock, self._wall = clock, wall_clock
        self._probe = probe
        self._events = EventLog(wall_clock, on_event, MAX_EVENTS)
        self._lock = threading.RLock()
        self._started_wall = wall_clock()
        self._identity = supervisor_identity()
        self._was_ready = False   # every service healthy at some time (the snapshot's events get trimmed)
        self._since = self._started_wall - 1
        self._seen: dict[tuple, float] = {}
        self._writer = StatePublisher(state_path, clock, wall=wall_clock, refresh_s=STATE_REFRESH_S)

    # ---------------------------------------------------------------- the Supervisor interface
    @property
    def events(self) -> list[dict]:
        with self._lock:
            return list(self._events)

    def record_event(self, service: str, kind: str, detail: str, **extra: Any) -> dict:
        with self._lock:
            ev = self._emit(service, kind, detail, **extra)
            self._flush(force=True)
            return ev

    def catalog_epoch(self) -> int | None:
        """See service.catalog_epoch: None while the topic catalog must not be refreshed."""
        with self._lock:
            return catalog_epoch(self._events, self._svcs)

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            wall = self._wall()
            services = [self._status(s, wall) for s in self._svcs]
            self._was_ready = self._was_ready or all_ready(services)
            return {**self._identity, "mode": "docker", "started_at": iso_utc(self._started_wall),
                    "updated_at": iso_utc(wall), "heartbeat": wall, "services": services,
                    "was_ready": self._was_ready, "events": list(self._events)}

    def run(self, stop: threading.Event, interval: float = 0.5, *, stop_services: bool = False) -> None:
        """Loop step() until `stop`; the containers outlive the watcher (`sandbox down` removes them)."""
        try:
            while not stop.is_set():
                try:
                    self.step()
                except Exception:
                    log.exception("docker watcher step failed")
                stop.wait(interval)
        finally:
            self.release_pauses()

    def release_pauses(self) -> None:
        """Unpause what `sandbox pause --for` froze: its resume time lives in this watcher only, so a
        watcher that ends (replaced, stopped) would leave the container frozen for good."""
        with self._lock:
            for s in self._svcs:
                if s.paused_until is not None:
                    try:
                        self._resume(s)
                    except Exception as e:   # noqa: BLE001 - the next one tries (create/start unpause)
                        log.info("could not unpause %s: %s", s.name, e)
            self._flush(force=True)

    def stop_all(self, grace_s: float | None = None) -> None:
        with self._lock:
            for s in self._svcs:
                self._resume(s, quiet=True)
                s.wanted = False
                self._ours(s, lambda s=s: self.engine.stop(s.name))
                s.state, s.healthy = "stopped", False
            self._flush(force=True)

    def restart(self, name: str | None = None, grace_s: float | None = None) -> None:
        with self._lock:
            targets = [self._get(name)] if name else list(self._svcs)
        for s in sorted(targets, key=lambda s: s.role != "coordinator"):
            with self._lock:
                s.wanted, s.state, s.healthy, s.problem = True, "starting", False, None
                s.window.clear()
                s.looping = s.repair_attempted = False
            self._ours(s, lambda s=s: self.engine.restart(s.name))
            self.record_event(s.name, "restart", "container restarted (requested)", restarts=s.restarts)

    def kill(self, name: str) -> None:
        """`sandbox kill`: the container killed now; its die event is a crash like any other."""
        with self._lock:
            svc = self._get(name)
            self._resume(svc, quiet=True)
            self.engine.kill(name)
            self._emit(name, "kill", f"container {svc.container} killed on request")

    def pause(self, name: str, seconds: float) -> None:
        """`sandbox pause`: the container frozen until a deadline this watcher keeps (see step)."""
        with self._lock:
            svc = self._get(name)
            if svc.paused_until is None:
                self.engine.pause(name)
            svc.paused_until = self._clock() + seconds
            svc.state, svc.healthy, svc.unhealthy_since = "paused", False, None
            self._emit(name, "pause", f"container {svc.container} paused for {seconds:g}s on request", seconds=seconds)
            self._flush(force=True)

    def _resume(self, svc: WatchedContainer, quiet: bool = False) -> None:
        if svc.paused_until is None:
            return
        svc.paused_until = None
        self.engine.unpause(svc.name)
        svc.state, svc.healthy, svc.unhealthy_since = "starting", False, None
        svc.frozen_until = self._clock()
        if not quiet:
            self._emit(svc.name, "resume", f"container {svc.container} resumed")

    # ---------------------------------------------------------------- one pass
    def step(self) -> None:
        with self._lock:
            wall = self._wall()
            evs = [e for e in self.engine.events(self._since, wall) if self._new(e)]
            self._since = wall - 1   # overlap: the engine's times are whole seconds
            for ev in sorted(evs, key=lambda e: e["time_ns"]):
                svc = next((s for s in self._svcs if s.name == ev.get("service")), None)
                if svc is not None:
                    self._on_engine_event(svc, ev)
            for svc in self._svcs:
                if svc.paused_until is not None and self._clock() >= svc.paused_until:
                    self._resume(svc)
                if svc.paused_until is None:   # a paused container is neither probed nor restarted
                    self._check(svc)
            self._flush()

    def _new(self, ev: dict) -> bool:
        key = (ev.get("id"), ev.get("time_ns"), ev.get("action"))
        if key in self._seen:
            return False
        now = self._clock()
        self._seen[key] = now
        if len(self._seen) > 2000:
            self._seen = {k: t for k, t in self._seen.items() if now - t < 60}
        return True

    def _ours(self, svc: WatchedContainer, action: Callable[[], None]) -> None:
        try:
            action()
        finally:
            svc.ours_until_ns = int(self._wall() * 1e9) + 500_000_000

    def _on_engine_event(self, svc: WatchedContainer, ev: dict) -> None:
        action, ours = ev["action"], ev["time_ns"] <= svc.ours_until_ns
        if action == "oom":
            svc.oom = True
        elif action == "kill":
            # `docker stop` sends SIGTERM (a kill event, signal 15) before the die and a stop event
            # after it; `sandbox kill` and `docker kill` send SIGKILL (9): those are crashes
            if not ours and svc.wanted and str(ev.get("signal") or "") not in ("", "9", "SIGKILL", "KILL"):
                svc.stopping_by_hand = True
        elif action == "stop":
            if not ours and svc.wanted:
                self._stopped_by_hand(svc)
        elif action == "die":
            svc.healthy, svc.last_exit_code = False, ev.get("exit_code")
            if ours or not svc.wanted:
                return
            if svc.stopping_by_hand:
                self._stopped_by_hand(svc)
                return
            self._crash(svc, ev.get("exit_code"))
        elif action == "start":
            svc.started_wall, svc.exited_seen, svc.scanned_start = ev["time_ns"] / 1e9, 0, None
            svc.exit_counted = svc.stopping_by_hand = svc.oom = False
            by_hand = not ours and not svc.wanted and svc.problem == _stopped_problem(svc.name)
            if by_hand:   # `docker start` or `docker restart` by hand: watched again
                svc.wanted, svc.problem = True, None
            if svc.ever_started and not ours:
                how = "started again outside the sandbox (docker start or docker restart)" if by_hand \
                    else "restarted by its restart policy"
                self._emit(svc.name, "restart", f"container {how}", restarts=svc.restarts)
            elif not svc.ever_started:
                self._emit(svc.name, "start", f"container {svc.container}")
            svc.ever_started = True

    def _stopped_by_hand(self, svc: WatchedContainer) -> None:
        """Stopped through the engine by someone else (`docker stop`, Docker Desktop's stop button):
        what they asked for, not a crash. Its restart policy leaves it stopped until it is started
        by hand (Docker docs, restart policies: "if you manually stop a container, the restart
        policy is ignored until ... the container is manually restarted"); so does this watcher."""
        svc.stopping_by_hand = False
        if not svc.wanted:
            return
        svc.wanted, svc.healthy, svc.state = False, False, "stopped"
        svc.problem = _stopped_problem(svc.name)
        self._emit(svc.name, "stop", f"container {svc.container} stopped outside the sandbox (docker stop); "
                                     f"left stopped: `sandbox restart {svc.name}` starts it again")

    def _crash(self, svc: WatchedContainer, code: int | None) -> None:
        tail = self.engine.logs(svc.name, tail=20)
        if code == EXIT_CONFIG:
            # it cannot run as configured: its restart policy would only loop; stop it and say why
            said = [d for k, d in parse_events(tail) if k == "config-error"]
            svc.problem = (said[-1].get("message") if said else None) or f"exit code {code}: see `sandbox logs {svc.name}`"
            svc.wanted = False
            self._ours(svc, lambda: self.engine.stop(svc.name))
            svc.state = "crashed"
            self._emit(svc.name, "config-error", svc.problem, exit_code=code,
                       reason=said[-1].get("reason") if said else None, log_tail=tail[-20:])
            return
        st = self.engine.inspect(svc.name)
        oom, svc.oom = svc.oom or bool(getattr(st, "oom_killed", False)), False
        detail = f"exit code {code}" + (" (its journal cannot be repaired)" if code == EXIT_UNREPAIRABLE else "")
        if oom:   # the kernel's OOM killer (the container's memory limit, or Docker Desktop's VM)
            detail += ", killed for want of memory (OOM)"
        self._emit(svc.name, "crash", detail, exit_code=code, log_tail=tail[-20:], oom=oom)
        p, now = self.policy, self._clock()
        svc.state = "recovering"
        if p.on_crash == "off":
            svc.wanted = False
            self._ours(svc, lambda: self.engine.stop(svc.name))
            svc.state = "crashed"
            return
        count = svc.window.record(now)
        looping, unrepairable = count > p.max_restarts, code == EXIT_UNREPAIRABLE
        svc.restarts += 1
        svc.exit_counted = True   # its start (by policy, or by _check after a docker kill) is this restart
        if not (looping or unrepairable):
            svc.looping = svc.repair_attempted = False
            return
        why = (f"journal cannot be repaired (exit code {code})" if unrepairable
               else f"{count} exits within {p.restart_window_s:g}s")
        wipe = p.on_corrupt_journal == "wipe" or (p.on_corrupt_journal == "repair-then-wipe"
                                                   and (unrepairable or svc.repair_attempted))
        if code == EXIT_USAGE:
            wipe = False
        if not wipe:
            if p.on_corrupt_journal == "repair-then-wipe" and code != EXIT_USAGE:
                svc.repair_attempted = True
                self._emit(svc.name, "crash-loop", f"{why}; one more restart so it can repair its journal, "
                                                   f"then its journal volume will be quarantined", exits=count)
            elif not svc.looping:
                svc.looping = True
                self._emit(svc.name, "crash-loop", f"{why}; its restart policy keeps restarting it "
                                                   f"(see `sandbox logs {svc.name}`)", exits=count)
            return
        if svc.fresh_journal:
            svc.wanted = False
            self._ours(svc, lambda: self.engine.stop(svc.name))
            svc.state = "crashed"
            self._emit(svc.name, "crash-loop", f"{why}; it keeps failing with a fresh journal, so this is not "
                                               f"a journal problem: stopped it (see `sandbox logs {svc.name}`)")
            return
        result: dict = {}
        self._ours(svc, lambda: result.update(zip(("old", "new"), self.engine.quarantine(svc.name, self._wall()))))
        pruned = self.engine.prune_quarantines(svc.name, p.keep_quarantines)
        detail = f"journal volume {result.get('old')} quarantined (kept); started on a fresh volume {result.get('new')}"
        if pruned:
            detail += f"; deleted {len(pruned)} older quarantined volume(s) (keep_quarantines={p.keep_quarantines})"
        self._emit(svc.name, "wipe", f"{detail} ({why})", path=result.get("old"), volume=result.get("new"),
                   pruned=pruned, rule="unrepairable-journal" if unrepairable else "crash-loop")
        svc.window.clear()
        svc.looping = svc.repair_attempted = False
        svc.fresh_journal = svc.recreate_pending = True
        svc.recreate_failed_reported = False
        svc.started_wall, svc.scanned_start = self._wall(), None
        self._emit(svc.name, "restart", "container re-created on the fresh volume", restarts=svc.restarts)

    def _emit_followed(self, svc: WatchedContainer, kind: str, detail: dict) -> None:
        sentence, fields = followed_event(kind, detail)
        self._emit(svc.name, kind, sentence, **fields)

    def _check(self, svc: WatchedContainer) -> None:
        st = self.engine.inspect(svc.name)
        now = self._clock()
        if st is None:
            if svc.wanted:
                self._ours(svc, lambda: self.engine.start(svc.name))
                self._emit(svc.name, "restart", f"container {svc.container} was removed; created it again")
            return
        svc.volume = st.volume
        svc.host_pid = st.pid if st.status == "running" else None
        if st.started_at and svc.started_wall is None:   # adopted: started before the watcher
            svc.ever_started, svc.started_wall = True, docker_time(st.started_at)
        running = st.status == "running"
        if st.status in ("exited", "dead", "created") and svc.wanted:
            svc.exited_seen += 1
            svc.healthy, svc.state = False, "crashed"
            if svc.exited_seen >= 3:   # not coming back by its policy (docker kill disables it, or gave up)
                svc.exited_seen = 0
                # a `docker kill`/`sandbox kill` stops the restart policy until the next start: the
                # crash path counted this exit already; one kill is one restart, not two
                if not svc.exit_counted:
                    svc.restarts += 1
                svc.exit_counted = False
                self._ours(svc, lambda: self.engine.start(svc.name))
                self._emit(svc.name, "restart", f"container was {st.status} (exit code {st.exit_code}) and its "
                                                f"restart policy did not bring it back: started it",
                           restarts=svc.restarts)
            return
        svc.exited_seen = 0
        if st.status == "restarting":
            svc.state, svc.healthy = "recovering", False
            return
        if st.status == "paused" and svc.wanted:
            # paused through the engine (`docker pause`; the sandbox's own pauses are not checked):
            # the engine says so, so it is no hang to cure by a restart, as a frozen process in
            # native mode may be; shown paused until it is unpaused (it showed "starting")
            svc.state, svc.healthy, svc.latency_ms, svc.unhealthy_since = "paused", False, None, None
            svc.frozen_until = now
            return
        if not running:
            gave_up = "crashed" if svc.state == "crashed" else "stopped"   # a config error stays shown
            svc.state, svc.healthy = (gave_up if not svc.wanted else "starting"), False
            return
        result = self._probe(self._host, svc.port, 1.0)
        svc.latency_ms = result.latency_ms if result.ok else None
        # "starting": the engine's first check runs one healthcheck interval (10 s) after the start;
        # our own ApiVersions round trip answering is the same test, taken sooner
        # an "unhealthy" the engine's checks found while the container was frozen (an exec into a
        # paused container fails) is stale until its next check has run after the resume: not a
        # reason to restart a service that answers (it restarted one `sandbox pause` had frozen)
        stale = st.health == "unhealthy" and now - svc.frozen_until < HEALTH_INTERVAL_S * 1.5
        healthy = result.ok and (st.health in (None, "healthy", "starting") or stale)
        if healthy:
            svc.unhealthy_since = None
            if not svc.healthy:
                svc.healthy, svc.state, svc.fresh_journal = True, "running", False
                self._emit(svc.name, "healthy", result.detail, probe=result.probe, latency_ms=result.latency_ms)
            if svc.scanned_start != st.started_at:
                svc.scanned_start = st.started_at
                svc.follow.restart(svc.started_wall)
                for kind, detail, at in svc.follow.new_events(self.engine.logs, svc.name, svc.started_wall, now):
                    if kind in FOLDER_EVENTS:   # those of the broker's start (adoption comes later)
                        self._emit(svc.name, kind, describe_event(kind, detail), topic=detail.get("topic"),
                                   partition=detail.get("partition"))
                        continue
                    if kind in GROUP_EVENTS + LOGIN_EVENTS:
                        # logged before this watcher started: told by the one before it (native
                        # mode, too, reads an adopted service's log from its end)
                        if at is None or at >= self._started_wall - 2:
                            self._emit_followed(svc, kind, detail)
                        continue
                    if not kind.startswith(("repair", "stale-lock")):
                        continue
                    extra = {"bytes": detail["bytes"]} if "bytes" in detail else {}
                    self._emit(svc.name, "repair", describe_event(kind, detail), source=kind, **extra)
            elif now - svc.follow.at >= FOLLOW_EVERY_S:
                # while it runs: what status shows as it happens (expired offsets, refused SASL
                # logins), as native mode reads them from the log file
                for kind, detail, _ in svc.follow.new_events(self.engine.logs, svc.name, svc.follow.next_since(), now):
                    if kind in GROUP_EVENTS + LOGIN_EVENTS:
                        self._emit_followed(svc, kind, detail)
            if svc.recreate_pending:
                self._recreate(svc)
        else:
            was = svc.healthy
            svc.healthy = False
            svc.state = "starting" if st.health == "starting" and not was else svc.state
            if st.health == "starting" and not was:
                return
            if svc.unhealthy_since is None:
                svc.unhealthy_since = now
            failing = now - svc.unhealthy_since
            if failing >= self.policy.unhealthy_after_s and failing > 0:
                probe = "docker healthcheck" if st.health == "unhealthy" else result.probe
                self._emit(svc.name, "unhealthy", f"probe {probe} failing for {failing:.1f}s: {result.detail}",
                           probe=probe)
                svc.unhealthy_since, svc.restarts = None, svc.restarts + 1
                self._ours(svc, lambda: self.engine.restart(svc.name))
                self._emit(svc.name, "restart", "after unhealthy", restarts=svc.restarts)
        if now - svc.measured_at >= MEASURE_EVERY_S:
            svc.measured_at = now
            try:
                svc.figures = self.engine.measure(svc.name)
            except Exception as e:
                log.info("could not measure %s: %s", svc.name, e)

    def _recreate(self, svc: WatchedContainer) -> None:
        if self.recreate_in_thread:
            recreate_off_pass(self._recreating, self._events, svc, self._recreate_topics)
        else:
            recreate_topics(self._events, svc, self._recreate_topics)

    # ---------------------------------------------------------------- helpers
    def _get(self, name: str) -> WatchedContainer:
        for s in self._svcs:
            if s.name == name:
                return s
        raise KeyError(f"no service named {name!r}; the services are: {', '.join(s.name for s in self._svcs)}")

    def _status(self, s: WatchedContainer, wall: float) -> dict[str, Any]:
        up = s.state in ("running", "starting") and s.started_wall is not None
        return {"name": s.name, "role": s.role, "state": s.state, "healthy": s.healthy, "pid": None,
                "container": s.container, "volume": s.volume, "port": s.port,
                "host_pid": s.host_pid if s.host_pid and psutil.pid_exists(s.host_pid) else None,
                "started_at": iso_utc(s.started_wall) if up else None,
                "started_wall": s.started_wall,
                "uptime_s": round(wall - s.started_wall, 3) if up else None,
                "restarts": s.restarts, "last_exit_code": s.last_exit_code, "problem": shown_problem(s),
                "latency_ms": None if s.latency_ms is None else round(s.latency_ms, 3),
                "data_dir": None, "log_path": None, **s.figures}

    def _emit(self, service: str, kind: str, detail: str, **extra: Any) -> dict:
        return self._events.emit(service, kind, detail, **extra)

    def _flush(self, force: bool = False) -> None:
        key = json.dumps([(s.state, s.healthy, s.restarts) for s in self._svcs] + [self._events.count])
        self._writer.publish(self.snapshot(), key, force)


def _stopped_problem(name: str) -> str:
    return f"stopped outside the sandbox (docker stop); `sandbox restart {name}` starts it again"
