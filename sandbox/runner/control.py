"""The supervisor's control protocol, from the side of a command: stop it, restart, kill or pause a
service (request files in the data folder that runner/stack.py reads every 0.25 s), wait until the
stack is ready, and find the services a dead supervisor left (to adopt or stop). Every wait runs on
an injected clock and sleep, so it is unit-tested without real time (tests/runner/test_control.py)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

from sandbox.config import SandboxConfig
from sandbox.runner import inbox, orphans, stack
from sandbox.runner.detach import pid_alive
from sandbox.runner.service import all_ready

NOT_RUNNING = 3


class ControlError(Exception):
    """What went wrong, as one sentence for the user, and the exit code a command gives it."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.message, self.code = message, code


class NotReady(ControlError):
    """wait_ready's timeout (or the death of the supervisor it waited for); `detail`: the services
    not healthy and the supervisor log's last lines."""

    def __init__(self, detail: str) -> None:
        super().__init__("the sandbox did not become healthy in time:\n" + detail)
        self.detail = detail


class Interrupted(Exception):
    """The wait was given up because its stop event was set (Ctrl-C)."""


@dataclass
class Waiter:
    """The clock, sleep and liveness check a wait uses (fakes in unit tests)."""
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    alive: Callable[[int | None], bool] = pid_alive


REAL = Waiter()


def _services(state: dict | None) -> list[dict]:
    return (state or {}).get("services", [])


def ready(state: dict | None) -> bool:
    """Every service of a state file running and healthy (and at least one)."""
    return all_ready(_services(state))


def was_ready(state: dict | None) -> bool:
    """The stack of a state file was healthy as a whole at some time (so one not healthy now is
    degraded, not still starting). A state file without the flag (written by an older supervisor
    still running): every service has a `healthy` event among those kept."""
    state = state or {}
    if "was_ready" in state:
        return bool(state["was_ready"])
    svcs = _services(state)
    seen = {e.get("service") for e in state.get("events", []) if e.get("kind") == "healthy"}
    return bool(svcs) and all(s.get("name") in seen for s in svcs)


def wait_ready(cfg: SandboxConfig, pid: int, timeout: float, stop: Any = None, waiter: Waiter = REAL) -> dict:
    """The state file once every service of the supervisor `pid` is running and healthy. Raises
    Interrupted when `stop` (an Event) is set, ControlError (exit 1) on a configuration error no
    restart fixes, on the supervisor's death, or at the timeout (naming what is not healthy)."""
    deadline = waiter.clock() + timeout
    state: dict = {}
    while True:   # looked at once at least: a timeout spent by the caller's own steps is 0 here
        if stop is not None and stop.is_set():
            raise Interrupted()
        state = stack.read_status_file(cfg) or {}
        if state.get("supervisor_pid") not in (None, pid):
            state = {}   # left by an earlier supervisor: it says nothing about this one
        if ready(state):
            return state
        svcs = _services(state)
        blocked = [s for s in svcs if s.get("state") == "crashed" and s.get("problem")]
        if blocked:   # a configuration error: no restart will fix it, so do not wait for one
            raise ControlError("the sandbox cannot start: " + "; ".join(f"{s['name']}: {s['problem']}" for s in blocked))
        if not waiter.alive(pid) or waiter.clock() >= deadline:
            break
        waiter.sleep(0.1)
    lines = [f"  {s['name']}: {s.get('state')} (see `sandbox logs {s['name']}`)"
             for s in _services(state) if not s.get("healthy")]
    log = cfg.logs_dir / "supervisor.log"
    tail = log.read_text(errors="replace").splitlines()[-5:] if log.exists() else []
    raise NotReady("\n".join(lines + tail))


def left_running(cfg: SandboxConfig) -> dict:
    """This sandbox's services that run without a supervisor (a killed one left them): what `up`
    adopts and `down` stops."""
    if cfg.mode == "docker" or stack.running_pid(cfg):
        return {}
    return orphans.live_services(stack.service_specs(cfg))


def stop_stale(cfg: SandboxConfig) -> str:
    """Before `up`: stop this sandbox's services a killed supervisor left running with a command
    line sandbox.toml no longer gives (its ports, brokers or defaults were edited since), so they
    start as the file says now instead of holding their old ports for ever. Returns who was
    stopped ('' for nobody)."""
    if cfg.mode == "docker" or stack.running_pid(cfg):
        return ""
    stale = orphans.stale_services(stack.service_specs(cfg))
    if not stale:
        return ""
    described = orphans.describe({n: p for n, (p, _) in stale.items()})
    orphans.stop_processes(stale, grace=stack.policy(cfg).grace_s)
    return described


def orphaned_state(cfg: SandboxConfig, left: dict) -> dict:
    """A state for status when no supervisor runs but services do: each live one 'orphaned'.
    left: name -> (process, the spec it was started with), as orphans.left_running finds them;
    one started with an older sandbox.toml shows the port it holds, and one the file no longer
    has (fewer brokers) is listed too."""
    services = []
    today = stack.service_specs(cfg)
    extra = [spec for _, spec in left.values() if spec.name not in {s.name for s in today}]
    for spec in today + extra:
        p, started = left.get(spec.name, (None, spec))
        services.append({"name": spec.name, "role": spec.role, "state": "orphaned" if p else "stopped",
                         "healthy": False, "pid": p.pid if p else None, "port": started.port,
                         "data_dir": str(spec.data_dir)})
    return {"services": services, "events": []}


@dataclass
class Stopped:
    """What stop() found: the supervisor's pid (None: not running) and the services it had left."""
    supervisor_pid: int | None
    left: dict = field(default_factory=dict)
    left_described: str = ""

    @property
    def anything(self) -> bool:
        return bool(self.supervisor_pid or self.left)


def _psutil_process(pid: int):
    import psutil

    try:
        return psutil.Process(pid)
    except psutil.Error:
        return None


def stop(cfg: SandboxConfig, timeout: float = 60.0, waiter: Waiter = REAL) -> Stopped:
    """Stop the supervisor (which stops its services) through its stop file, by force after
    `timeout`; then, natively, any service of this sandbox still running without it."""
    import psutil

    pid = stack.running_pid(cfg)
    if pid:
        proc = _psutil_process(pid)
        try:
            if proc is not None and proc.status() == psutil.STATUS_STOPPED:
                proc.resume()   # a paused supervisor never reads its stop file
        except psutil.Error:
            pass
        try:
            (cfg.data_dir / stack.STOP_FILE).write_text("stop", encoding="utf-8")
        except OSError:
            # the disk takes nothing (full): the supervisor cannot be asked; it goes now, and its
            # services are stopped below one by one, as those of a killed supervisor
            deadline = waiter.clock()
        else:
            deadline = waiter.clock() + timeout
        while waiter.alive(pid) and waiter.clock() < deadline:
            waiter.sleep(0.1)
        if waiter.alive(pid) and proc is not None:
            try:
                proc.kill()
            except psutil.Error:
                pass
    if cfg.mode == "docker":
        return Stopped(pid)
    # no service of this sandbox may outlive `down`, supervised or not
    # (also those started with an older sandbox.toml: its ports or brokers edited since)
    found = orphans.left_running(stack.service_specs(cfg))
    left = {n: p for n, (p, _) in found.items()}
    described = orphans.describe(left) if left else ""
    if found:
        orphans.stop_processes(found, grace=stack.policy(cfg).grace_s)
    return Stopped(pid, left, described)


def require_running(cfg: SandboxConfig) -> int:
    """The supervisor's pid, or ControlError (exit 3) saying how to start it."""
    pid = stack.running_pid(cfg)
    if not pid:
        left = left_running(cfg)
        if left:   # its supervisor was killed: the services run on, unwatched
            raise ControlError(f"sandbox {cfg.name} has no supervisor ({', '.join(sorted(left))} run on without "
                               f"one, left by a supervisor that was killed); `sandbox up` takes them back "
                               f"under a new one, `sandbox down` stops them", NOT_RUNNING)
        raise ControlError(f"sandbox {cfg.name} is not running; start it with `sandbox up`", NOT_RUNNING)
    return pid


def check_service(cfg: SandboxConfig, service: str, code: int = 2) -> None:
    """ControlError (exit `code`) unless `service` is one of the sandbox's services."""
    names = [s.name for s in stack.service_specs(cfg)]
    if service not in names:
        raise ControlError(f"no service {service!r}; services are {', '.join(names)}", code)


def restart(cfg: SandboxConfig, service: str | None, timeout: float = 60.0, waiter: Waiter = REAL) -> list[str]:
    """Ask the running supervisor to restart one service (or all) gracefully; the names once every
    one runs again healthy with a new process (docker: a new start time)."""
    names = [s.name for s in stack.service_specs(cfg)]
    if service:
        check_service(cfg, service)
    targets = [service] if service else names
    key = "started_wall" if cfg.mode == "docker" else "pid"  # containers have no pid on the host
    before = {s["name"]: s.get(key) for s in _services(stack.read_status_file(cfg))}
    pid = stack.running_pid(cfg)
    _write_request(lambda: (cfg.data_dir / stack.RESTART_FILE).write_text(service or "", encoding="utf-8"))
    deadline = waiter.clock() + timeout
    while waiter.clock() < deadline:
        now = {s["name"]: s for s in _services(stack.read_status_file(cfg))}
        if all(now.get(n, {}).get(key) not in (None, before.get(n)) and now[n].get("healthy")
               and now[n].get("state") == "running" for n in targets):
            return targets
        _still_running(pid, waiter, "restart")
        waiter.sleep(0.2)
    raise ControlError(f"{', '.join(targets)} did not come back healthy within {timeout:g} s; "
                       f"see `sandbox status` and `sandbox logs`")


# ---- requests the supervisor carries out itself (it owns the deadlines: a CLI may be interrupted)

def send(cfg: SandboxConfig, command: str, service: str, **args: Any) -> None:
    """Queue one request for the running supervisor (runner/inbox.py; read in its loop)."""
    _write_request(lambda: inbox.send(cfg.data_dir, command, service, **args))


def _write_request(write: Callable[[], Any]) -> None:
    """A request file for the supervisor written, or one sentence why it could not be."""
    try:
        write()
    except OSError as e:
        raise ControlError(f"the request for the supervisor could not be written ({e.strerror or e}); "
                           f"if the disk is full, free space and try again") from None


def _service_state(cfg: SandboxConfig, service: str) -> dict:
    return next((s for s in _services(stack.read_status_file(cfg)) if s.get("name") == service), {})


def _still_running(pid: int | None, waiter: Waiter, what: str) -> None:
    """ControlError at once when the supervisor carrying out a request has ended meanwhile (a
    `sandbox down` in another terminal): the request will never be carried out, so no wait."""
    if pid and not waiter.alive(pid):
        raise ControlError(f"the sandbox was stopped (by `sandbox down`) before the {what} finished; "
                           f"`sandbox up` starts it again", NOT_RUNNING)


def _await(cfg: SandboxConfig, service: str, done: Callable[[dict], bool], timeout: float, waiter: Waiter,
           what: str) -> dict:
    pid = stack.running_pid(cfg)
    deadline = waiter.clock() + timeout
    while waiter.clock() < deadline:
        now = _service_state(cfg, service)
        if done(now):
            return now
        _still_running(pid, waiter, what)
        waiter.sleep(0.1)
    raise ControlError(f"the supervisor did not {what} {service} within {timeout:g} s; "
                       f"see `sandbox status` and `sandbox logs supervisor`")


def _identity(s: dict, docker: bool) -> Any:
    return s.get("started_wall") if docker else s.get("pid")


def kill(cfg: SandboxConfig, service: str, timeout: float = 10.0, waiter: Waiter = REAL) -> dict:
    """Kill one service at once (SIGKILL; docker: container kill): the supervisor then restarts it
    as after any crash. Returns its state as it was just before."""
    require_running(cfg)
    check_service(cfg, service)
    before = _service_state(cfg, service)
    docker = cfg.mode == "docker"
    if not before or _identity(before, docker) is None:
        raise ControlError(f"{service} is not running now ({before.get('state', 'unknown')}); "
                           f"see `sandbox status`")
    send(cfg, "kill", service)
    _await(cfg, service, lambda s: _identity(s, docker) != _identity(before, docker) or s.get("state") != "running",
           timeout, waiter, "kill")
    return before


def pause(cfg: SandboxConfig, service: str, seconds: float, timeout: float = 10.0, waiter: Waiter = REAL) -> dict:
    """Freeze one service without ending it (SIGSTOP; Windows: suspend; docker: container pause)
    for `seconds`; the supervisor resumes it at the deadline whatever happens to this command.
    Returns the service's state once paused."""
    require_running(cfg)
    check_service(cfg, service)
    if seconds <= 0:
        raise ControlError(f"--for must be more than 0 seconds, not {seconds:g}", 2)
    before = _service_state(cfg, service)
    if not before or before.get("state") not in ("running", "starting", "paused"):
        raise ControlError(f"{service} is not running now ({before.get('state', 'unknown')}); "
                           f"see `sandbox status`")
    send(cfg, "pause", service, seconds=seconds)
    return _await(cfg, service, lambda s: s.get("state") == "paused", timeout, waiter, "pause")


def wait_resumed(cfg: SandboxConfig, service: str, timeout: float, waiter: Waiter = REAL) -> dict:
    """The service's state once the supervisor has resumed it (it is no longer 'paused')."""
    return _await(cfg, service, lambda s: s.get("state") != "paused", timeout, waiter, "resume")
