"""What the supervisor knows about one service (owned by the Supervisor, touched under its lock)
and the ISO-8601 UTC timestamps of its status and events."""

from __future__ import annotations

import logging
import threading
from concurrent.futures import Future
from collections import deque
from dataclasses import dataclass
from typing import Protocol, runtime_checkable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from sandbox.runner.policy import RecoveryPolicy, RestartWindow
from sandbox.runner.process import Handle, ServiceSpec


def iso_utc(wall_time: float) -> str:
    return datetime.fromtimestamp(wall_time, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@runtime_checkable
class StackSupervising(Protocol):
    """What the stack process (runner/stack.py), status and /healthz need of a supervisor; the
    native Supervisor and the DockerWatcher both are one, and publish through one StatePublisher."""

    def step(self) -> None: ...
    def run(self, stop: Any, interval: float = ..., *, stop_services: bool = ...) -> None: ...
    def stop_all(self, grace_s: float | None = None) -> None: ...
    def restart(self, name: str | None = None, grace_s: float | None = None) -> None: ...
    def kill(self, name: str) -> None: ...
    def pause(self, name: str, seconds: float) -> None: ...
    def snapshot(self) -> dict[str, Any]: ...
    def record_event(self, service: str, kind: str, detail: str, **extra: Any) -> dict: ...
    def catalog_epoch(self) -> int | None: ...


@dataclass
class StopPlan:
    """A stop in progress: the phase it is in (queued, stop file, terminate, kill), when it moves
    on, and what follows once the process is gone (restart, after-unhealthy, stopped)."""
    reason: str
    then: str
    grace: float
    phase: str
    deadline: float


class OwesRestore:
    """`recreate_pending` (a wiped journal's topics, offsets and settings still to be put back) of
    a service record (native and docker), mirrored in a marker file beside its journal: a restore
    owed by a supervisor killed meanwhile is finished by the next one (owed_marker)."""

    name: str
    _owed: Path | None = None
    _recreate_pending = False

    def owe_from(self, marker: Path | None) -> None:
        """Where the marker lives (None: nowhere, in memory only), and whether one is owed now."""
        self._owed = marker
        self._recreate_pending = marker is not None and marker.exists()

    @property
    def recreate_pending(self) -> bool:
        return self._recreate_pending

    @recreate_pending.setter
    def recreate_pending(self, owed: bool) -> None:
        if owed == self._recreate_pending:
            return
        self._recreate_pending = owed
        if self._owed is None:
            return
        try:
            if owed:
                self._owed.touch()
            else:
                self._owed.unlink(missing_ok=True)
        except OSError as e:   # kept in memory: only a supervisor killed now would forget it
            logging.getLogger("sandbox.runner").warning("%s: could not %s %s: %s", self.name,
                                                        "write" if owed else "remove", self._owed, e)


class ServiceRecord(OwesRestore):
    """Runtime state of one service: process, health, restart accounting, recovery flags."""

    @property
    def role(self) -> str:
        return self.spec.role

    def __init__(self, spec: ServiceSpec, policy: RecoveryPolicy) -> None:
        self.spec = spec
        self.handle: Handle | None = None
        self.state = "starting"
        self.pid: int | None = None
        self.started_at: float | None = None      # wall clock
        self.started_mono: float | None = None
        self.restarts = 0
        self.healthy = False
        self.last_exit_code: int | None = None
        self.latency_ms: float | None = None
        self.wanted = True                         # False once stopped on purpose
        self.next_start: float | None = 0.0        # monotonic time of the next (re)start, None = not scheduled
        self.restart_reason = ""
        self.ever_started = False
        self.window = RestartWindow(policy.restart_window_s, policy.max_restarts)
        self.start_offset = 0                      # log size when it was last started
        self.log_offset = 0                        # how far its log was scanned for repair events
        self.failing_since: float | None = None
        self.been_healthy = False                  # healthy at least once since it was (re)started or adopted
        self.served = False                        # healthy at least once under this supervisor: its port was ours
        self.held_address: tuple[str, int] | None = None   # (host, port) another program held at its last start
        self.last_probe_at: float | None = None
        self.looping = False                       # a crash-loop event was emitted for the current loop
        self.repair_attempted = False              # repair-then-wipe: the one extra repair restart was given
        self.fresh_journal = False                 # wiped and not healthy since: wiping again won't help
        self.owe_from(owed_marker(spec))
        self.recreate_failed_reported = False
        self.stop: StopPlan | None = None          # being stopped (a state, advanced by step())
        self.problem: str | None = None            # one sentence shown by status (config error, disk full)
        self.config_error: dict | None = None      # the service's own EVENT config-error line, until it exits
        self.last_fault: str | None = None         # the last supervisor error on it (reported once)
        self.adopted_at: float | None = None       # taken over from an earlier supervisor, not yet healthy
        self.paused_until: float | None = None     # frozen on request (sandbox pause) until then
        self.killed_on_request = False             # `sandbox kill`: its exit is no crash to count
        self.journal_reached = True                # its last run logged that it opened its journal

    @property
    def name(self) -> str:
        return self.spec.name



def owed_marker(spec: ServiceSpec) -> Path:
    """The file, beside the service's journal folder, that says a restore is owed after a wipe:
    the next supervisor (after this one was killed) finishes it before the topic catalog may be
    refreshed from a cluster that lacks what is being put back."""
    return spec.data_dir.with_name(spec.data_dir.name + ".restore-owed")


class EventLog:
    """A supervisor's recent events (the oldest dropped past `limit`): each one logged and handed
    to `on_event`, whose errors never reach the supervisor."""

    def __init__(self, wall_clock: Callable[[], float], on_event: Callable[[dict], None] | None = None,
                 limit: int = 200) -> None:
        self._events: deque[dict] = deque(maxlen=limit)
        self._wall = wall_clock
        self._on_event = on_event
        self.count = 0   # every event ever emitted (len() stops at the limit)
        self.wipes = 0   # journals quarantined so far

    def emit(self, service: str, kind: str, detail: str, **extra: Any) -> dict:
        event = {"time": iso_utc(self._wall()), "service": service, "kind": kind, "detail": detail, **extra}
        self._events.append(event)
        self.count += 1
        self.wipes += kind == "wipe"
        logging.getLogger("sandbox.runner").info("%s %s: %s", service, kind, detail)
        if self._on_event is not None:
            try:
                self._on_event(event)
            except Exception:
                logging.getLogger("sandbox.runner").exception("on_event callback failed")
        return event

    def __iter__(self):
        return iter(self._events)

    def __len__(self) -> int:
        return len(self._events)


def catalog_epoch(events: EventLog, services) -> int | None:
    """The topic catalog may be refreshed from the cluster only while the coordinator is healthy,
    some broker is, and no wiped journal is still waiting for its topics: otherwise the metadata
    would be the empty one of a fresh journal and would overwrite the very list the re-creation
    reads. A broker down or paused leaves the metadata whole: the catalog goes on learning topics
    made meanwhile (it stood still while one was down, so a coordinator journal destroyed then
    lost them: found by the fault campaign, churn-through-lost-journal). Returns the wipe count to
    compare after the read (a wipe in between voids it), or None when unsafe."""
    services = list(services)
    if any(s.recreate_pending for s in services):
        return None
    if all(s.healthy for s in services if s.role == "coordinator") and any(
            s.healthy for s in services if s.role != "coordinator"):
        return events.wipes
    return None


RECREATING = "its journal was moved aside: its topics, offsets and settings are being put back"


def all_ready(services: list[dict]) -> bool:
    """Every service (of a state file's list, at least one) running and healthy."""
    return bool(services) and all(s.get("state") == "running" and s.get("healthy") for s in services)


def shown_problem(svc) -> str | None:
    """What status shows as the service's problem: its own, or the re-creation still owed after a
    wipe (until then the cluster answers, but without the topics it had: not healthy)."""
    return svc.problem or (RECREATING if svc.recreate_pending else None)


def recreate_topics(events: EventLog, svc, recreate: Callable[[str], list[str]] | None) -> None:
    """After a wipe, once `svc` is healthy: put every known topic back through `recreate`. On
    failure it stays pending (retried next pass) and the failure is reported once."""
    if recreate is None:
        svc.recreate_pending = False
        return
    try:
        topics = list(recreate(svc.name))
    except Exception as e:
        if not svc.recreate_failed_reported:
            svc.recreate_failed_reported = True
            events.emit(svc.name, "topics-recreated", f"failed, will retry: {e}", topics=[], ok=False)
        return
    svc.recreate_pending = False
    events.emit(svc.name, "topics-recreated", ", ".join(topics) if topics else "no topics to re-create",
                topics=topics, ok=True)


def recreate_off_pass(jobs: dict, events: EventLog, svc, recreate: Callable[[str], list[str]] | None) -> None:
    """recreate_topics with the restore, network calls with timeouts of seconds, on a thread of
    its own (`jobs`: the supervisor's service -> (Future, wipes then)): a pass never waits for it,
    so a crash elsewhere is still healed at once and the heartbeat stays fresh; a later pass takes
    its answer. A wipe meanwhile voids that answer and the restore is asked again."""
    if recreate is None:
        recreate_topics(events, svc, None)
        return
    job = jobs.get(svc.name)
    if job is not None and not job[0].done():
        return
    if job is None or job[1] != events.wipes:
        future: Future = Future()

        def work(name: str = svc.name) -> None:
            try:
                future.set_result(list(recreate(name)))
            except BaseException as e:   # noqa: BLE001 - handed to the pass that takes the answer
                future.set_exception(e)
        jobs[svc.name] = (future, events.wipes)
        threading.Thread(target=work, name=f"restore-{svc.name}", daemon=True).start()
        return
    del jobs[svc.name]
    recreate_topics(events, svc, lambda _name: job[0].result())
