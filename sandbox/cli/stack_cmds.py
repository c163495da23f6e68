"""CLI commands that drive a whole sandbox natively: init, up, down, status, logs, restart,
recover, topics, and the hidden `supervise` that `up` starts in the background."""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Optional

import typer

from sandbox.config import ConfigError, SandboxConfig, write_init
from sandbox.runner import orphans, stack
from sandbox.runner.detach import pid_alive, spawn_detached
from sandbox.runner.probe import port_owner
from sandbox.runner.quarantine import prune, quarantine

from .app import app, fail

from .target import ConfigOpt
from .target import load as _cfg


def _client(cfg: SandboxConfig):
    from sandbox.client import KafkaClient

    return KafkaClient(stack.bootstrap(cfg), timeout=5.0)


@app.command()
def init(folder: Path = typer.Argument(Path("."), help="Where to write sandbox.toml.")) -> None:
    """Write a commented sandbox.toml in the current folder."""
    try:
        path = write_init(folder)
    except ConfigError as e:
        fail(str(e))
    typer.echo(f"wrote {path}; edit it, then run `sandbox up`")


def _wait_ready(cfg: SandboxConfig, pid: int, timeout: float, stop=None) -> dict:
    """Wait until every service is healthy; `stop` (an Event): give up at once when it is set."""
    deadline = time.monotonic() + timeout
    state: dict = {}
    while time.monotonic() < deadline:
        if stop is not None and stop.is_set():
            raise typer.Exit(130)
        state = stack.read_status_file(cfg) or {}
        if state.get("supervisor_pid") not in (None, pid):
            state = {}   # left by an earlier supervisor: it says nothing about this one
        svcs = state.get("services", [])
        if svcs and all(s.get("state") == "running" and s.get("healthy") for s in svcs):
            return state
        blocked = [s for s in svcs if s.get("state") == "crashed" and s.get("problem")]
        if blocked:   # a configuration error: no restart will fix it, so do not wait for one
            fail("the sandbox cannot start: " + "; ".join(f"{s['name']}: {s['problem']}" for s in blocked), 1)
        if not pid_alive(pid):
            break
        time.sleep(0.1)
    lines = []
    for s in state.get("services", []):
        if not s.get("healthy"):
            lines.append(f"  {s['name']}: {s.get('state')} (see `sandbox logs {s['name']}`)")
    log = cfg.logs_dir / "supervisor.log"
    tail = log.read_text(errors="replace").splitlines()[-5:] if log.exists() else []
    fail("the sandbox did not become healthy in time:\n" + "\n".join(lines + tail), 1)
    raise AssertionError


@app.command()
def up(
    docker: bool = typer.Option(False, "--docker", help="Run in Docker containers (or mode = \"docker\" in sandbox.toml)."),
    brokers: Optional[int] = typer.Option(None, "--brokers", help="Number of brokers."),
    port: Optional[int] = typer.Option(None, "--port", help="Broker 1's Kafka port."),
    foreground: bool = typer.Option(False, "--foreground", help="Stay attached; Ctrl-C stops everything."),
    ephemeral: bool = typer.Option(False, "--ephemeral", help="Keep data in a temp folder deleted by `down`."),
    timeout: float = typer.Option(60.0, "--timeout", help="Seconds to wait for healthy."),
    config: Optional[Path] = ConfigOpt,
) -> None:
    """Start the coordinator and brokers, wait until healthy, create the declared topics."""
    try:
        base = stack.load_config(config, cwd=Path.cwd())
    except ConfigError as e:
        fail(str(e))
    docker = docker or base.mode == "docker"
    running = stack.running_pid(stack.load_stack_config(config, Path.cwd()))
    if running:
        cfg = stack.load_stack_config(config, Path.cwd())
        typer.echo(f"sandbox {cfg.name} is already running (supervisor pid {running}); bootstrap {stack.bootstrap(cfg)}")
        pending = stack.restart_needed(cfg)
        if pending:
            typer.echo(pending)
        asked = {"--port": (port, cfg.port), "--brokers": (brokers, cfg.brokers)}
        differs = [f"{flag} {want} (it runs with {flag} {have})" for flag, (want, have) in asked.items()
                   if want is not None and want != have]
        if differs:
            fail(f"the running sandbox was not changed: {', '.join(differs)}; `sandbox down` then "
                 f"`sandbox up {' '.join(d.split(' (')[0] for d in differs)}` starts it that way", 1)
        raise typer.Exit(0)
    overrides = {k: v for k, v in {"brokers": brokers, "port": port}.items() if v is not None}
    if docker:
        overrides["mode"] = "docker"
        if ephemeral:
            fail("--ephemeral is for native mode; in Docker `sandbox down --purge` deletes the journal volumes")
    if ephemeral:
        overrides["data_dir"] = tempfile.mkdtemp(prefix=f"sandbox-{base.name}-")
    try:
        cfg = base.with_overrides(**overrides) if overrides else base
    except ConfigError as e:
        fail(str(e))
    if docker:
        from .docker_cmds import up_docker

        return up_docker(cfg, overrides, timeout, _wait_ready, _apply_declared, _check_ports,
                         foreground=_up_foreground if foreground else None)
    left = _orphans(cfg)
    _check_ports(cfg, skip={spec.port for spec in stack.service_specs(cfg) if spec.name in left})
    if left:
        typer.echo(f"adopting {len(left)} service(s) a stopped supervisor left running: {orphans.describe(left)}")
    _make_data_dir(cfg)
    rt = stack.runtime_file(cfg)
    rt.unlink(missing_ok=True)
    stack.write_runtime(cfg, overrides=overrides, ephemeral=ephemeral, config_text=cfg.source,
                        running=stack.running_settings(cfg))
    argv = [sys.executable, "-m", "sandbox", "supervise"] + (["--config", str(cfg.path)] if cfg.path else [])
    t0 = time.monotonic()
    if foreground:
        def cleanup() -> None:
            if ephemeral:
                shutil.rmtree(cfg.data_dir, ignore_errors=True)
                rt.unlink(missing_ok=True)

        return _up_foreground(cfg, timeout, cleanup)
    pid = spawn_detached(argv, cfg.logs_dir / "supervisor.log", cwd=cfg.root)
    _wait_ready(cfg, pid, timeout)
    _apply_declared(cfg)
    typer.echo(f"sandbox {cfg.name} is up in {time.monotonic() - t0:.1f} s: {cfg.brokers} broker(s), "
               f"bootstrap {stack.bootstrap(cfg)}")


def _make_data_dir(cfg: SandboxConfig) -> None:
    """The data and log folders, or one sentence and a fix (what `sandbox doctor` would say)."""
    from .doctor_cmds import FAIL, Context, check_data

    found = check_data(Context(cfg, None, set(), set()))
    if found.result == FAIL:
        detail = found.detail if str(cfg.data_dir) in found.detail else f"{cfg.data_dir}: {found.detail}"
        fail(f"the sandbox cannot keep its data here: {detail}", 1)
    try:
        cfg.data_dir.mkdir(parents=True, exist_ok=True)
        cfg.logs_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        fail(f"the data folder {cfg.data_dir} cannot be created ({e.strerror or e}); "
             f"set data_dir in sandbox.toml to a folder you can write", 1)


def _up_foreground(cfg: SandboxConfig, timeout: float, cleanup: Callable[[], None]) -> None:
    """The supervisor in this process until Ctrl-C, which stops everything (then `cleanup`: the
    ephemeral data, or in docker mode the containers). On a terminal the live monitor takes the
    screen once the stack is healthy; otherwise every event is printed as a line (logs, CI)."""
    import logging
    import os
    import threading

    from sandbox.runner.stack import StackSupervisor

    from .monitor import run_monitor

    on_terminal = sys.stdout.isatty()
    if on_terminal:   # log lines would tear the dashboard: they go to the supervisor's log file
        handler = logging.FileHandler(cfg.logs_dir / "supervisor.log", encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logging.getLogger().addHandler(handler)
        logging.getLogger().setLevel(logging.INFO)

    def show(e: dict) -> None:
        typer.echo(f"{e['time']} {e['service']} {e['kind']}: {e['detail']}")

    sup = StackSupervisor(cfg, on_event=None if on_terminal else show)
    done = threading.Event()
    failed = threading.Event()

    def attached() -> None:
        try:
            _wait_ready(cfg, os.getpid(), timeout, stop=sup.stop)
            _apply_declared(cfg)
        except typer.Exit as e:   # not healthy in time (the sentence is printed): stop it all, exit 1
            if e.exit_code != 130:   # 130: stopped by Ctrl-C, not a failure
                failed.set()
            sup.stop.set()
            return
        typer.echo(f"sandbox {cfg.name} is up; bootstrap {stack.bootstrap(cfg)} (Ctrl-C stops it)")
        if on_terminal:
            run_monitor(cfg, stop=done)

    def announce_stop() -> None:   # Ctrl-C is honoured at once, and said at once
        while not done.is_set():
            if sup.stop.wait(0.1):
                if not failed.is_set():
                    typer.echo(f"stopping sandbox {cfg.name} (services first, then the supervisor)...")
                return

    watcher = threading.Thread(target=attached, name="attached", daemon=True)
    watcher.start()
    threading.Thread(target=announce_stop, name="announce-stop", daemon=True).start()
    try:
        code = sup.run()
    finally:
        done.set()
        watcher.join(5)
        cleanup()
    typer.echo(f"sandbox {cfg.name} stopped")
    raise typer.Exit(1 if failed.is_set() else code)


def _orphans(cfg: SandboxConfig) -> dict:
    """This sandbox's services that run without a supervisor (a killed one left them)."""
    if cfg.mode == "docker" or stack.running_pid(cfg):
        return {}
    return orphans.live_services(stack.service_specs(cfg))


def _check_ports(cfg: SandboxConfig, only_http: bool = False, skip: set[int] = frozenset()) -> None:
    wanted = [] if only_http else [(spec.port, spec.name) for spec in stack.service_specs(cfg)
                                   if spec.port not in skip]
    for p, who in wanted + [(cfg.http_port, "the health endpoint")]:
        owner = port_owner(p)
        if owner:
            fail(f"port {p} (for {who}) is taken by {owner}; stop it or choose other ports "
                 f"in sandbox.toml ([sandbox] port / coordinator_port / http_port) or with --port.")


def _apply_declared(cfg: SandboxConfig) -> None:
    from sandbox.runner.manifest import reconcile

    if not cfg.topics:
        return
    with _client(cfg) as c:
        msgs = reconcile(cfg.topics, c)
    for m in msgs:
        typer.echo(f"  {m}")
    failed = [m for m in msgs if m.startswith("failed")]
    if failed:   # a declared topic that is not there is an error, whatever else went well
        fail(f"{len(failed)} declared topic change(s) failed ({'; '.join(failed)}); fix [topics] in "
             f"{cfg.path or 'sandbox.toml'}: the running sandbox applies it when you save", 1)


@app.command(hidden=True)
def supervise(config: Optional[Path] = ConfigOpt) -> None:
    """The background supervisor `sandbox up` starts (not for direct use)."""
    try:
        code = stack.supervise_main(config, Path.cwd())
    except ConfigError as e:
        fail(str(e))
    raise typer.Exit(code)


def _stop(cfg: SandboxConfig, timeout: float = 60.0) -> bool:
    """Stop the supervisor (which stops its services), then any service of this sandbox still
    running without it. True if anything was running."""
    pid = stack.running_pid(cfg)
    if pid:
        import psutil

        try:
            if psutil.Process(pid).status() == psutil.STATUS_STOPPED:
                psutil.Process(pid).resume()   # a paused supervisor never reads its stop file
        except psutil.Error:
            pass
        (cfg.data_dir / stack.STOP_FILE).write_text("stop", encoding="utf-8")
        deadline = time.monotonic() + timeout
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if pid_alive(pid):
            import psutil

            try:
                psutil.Process(pid).kill()
            except psutil.Error:
                pass
    if cfg.mode == "docker":
        return bool(pid)
    # no service of this sandbox may outlive `down`, supervised or not
    specs = {spec.name: spec for spec in stack.service_specs(cfg)}
    left = orphans.live_services(specs.values())
    if left:
        if not pid:
            typer.echo(f"the supervisor was not running; stopping the {len(left)} service(s) it left: "
                       f"{orphans.describe(left)}")
        orphans.stop_processes({n: (p, specs[n]) for n, p in left.items()}, grace=stack.policy(cfg).grace_s)
    return bool(pid or left)


@app.command()
def down(purge: bool = typer.Option(False, "--purge", help="Also delete this sandbox's data."),
         config: Optional[Path] = ConfigOpt) -> None:
    """Stop every process of this sandbox (gracefully, then by force)."""
    cfg = _cfg(config)
    rt = stack.runtime_file(cfg)
    ephemeral = False
    try:
        ephemeral = json.loads(rt.read_text()).get("ephemeral", False)
    except (OSError, ValueError):
        pass
    stopped = _stop(cfg)
    typer.echo(f"sandbox {cfg.name} stopped" if stopped else f"sandbox {cfg.name} was not running")
    if cfg.mode == "docker":
        from .docker_cmds import down_docker

        down_docker(cfg, purge)
    if purge or ephemeral:
        shutil.rmtree(cfg.data_dir, ignore_errors=True)
        typer.echo(f"deleted {cfg.data_dir}")
    if cfg.mode == "docker" and not purge:
        return  # keep `mode: docker`: a later `down --purge` must still find the journal volumes
    rt.unlink(missing_ok=True)


@app.command()
def status(as_json: bool = typer.Option(False, "--json", help="The status as JSON (SPEC.md)."),
           watch: bool = typer.Option(False, "--watch", help="Refresh every second until Ctrl-C."),
           config: Optional[Path] = ConfigOpt) -> None:
    """Health of every service, topic and group. Exit 0 healthy, 1 unhealthy, 3 not running."""
    from .render import print_status

    cfg = _cfg(config, warn=False)   # said once below: not again when the supervisor reports it
    while True:
        code = _status_once(cfg, as_json, print_status)
        if not watch:
            raise typer.Exit(code)
        time.sleep(1.0)


def _status_once(cfg: SandboxConfig, as_json: bool, printer) -> int:
    from sandbox.health.status import build_status

    sup_pid = stack.running_pid(cfg)
    state = stack.live_state(cfg) if cfg.mode == "docker" or sup_pid else None
    # no state to trust (no supervisor, or one that stopped beating): find the services ourselves
    left = orphans.live_services(stack.service_specs(cfg)) if state is None and cfg.mode != "docker" else {}
    if state is None and left:
        state = orphaned_state(cfg, left)
    client = _client(cfg) if state is not None else None
    try:
        st = build_status(name=cfg.name, mode=cfg.mode, bootstrap=stack.bootstrap(cfg), state=state, client=client,
                          coordinator=(stack.connect_host(cfg), cfg.coordinator_port))
    finally:
        if client is not None:
            client.close()
    running = state is not None and not left
    st["running"] = running
    st["restart_needed"] = stack.restart_needed(cfg) if running else None
    if left and sup_pid:
        st["healthy"] = False
        st["problems"].insert(0, f"the supervisor (pid {sup_pid}) does not answer (paused or wedged); "
                                 f"{len(left)} service(s) still running: `sandbox down` stops them all")
    elif left:
        st["healthy"] = False
        st["problems"].insert(0, f"supervisor not running; {len(left)} service(s) still running: "
                                 f"`sandbox up` adopts them, `sandbox down` stops them")
    elif state is None and cfg.mode == "docker":
        st["problems"].insert(0, "the docker watcher is not running; containers may still run: "
                                 "`sandbox up --docker` adopts them, `sandbox down` removes them")
    elif state is None and stack.running_pid(cfg):
        st["problems"].insert(0, "the supervisor does not answer (its state file is stale): it may be paused; "
                                 "`sandbox down` then `sandbox up` replaces it")
    from . import target

    if target.last_warning and not any(e.get("kind") == "manifest-error" for e in st.get("events", [])):
        typer.echo(target.last_warning, err=True)
    if as_json:
        typer.echo(json.dumps(st, indent=2))
    else:
        if left:
            typer.echo(f"sandbox {cfg.name}: {st['problems'][0]}")
        printer(st)
        if st["restart_needed"]:
            typer.echo(st["restart_needed"])
    if left:
        return 1
    if state is None:
        return 3
    return 0 if st["healthy"] else 1


def orphaned_state(cfg: SandboxConfig, left: dict) -> dict:
    """A state for status when no supervisor runs but services do: each live one 'orphaned'."""
    services = []
    for spec in stack.service_specs(cfg):
        p = left.get(spec.name)
        services.append({"name": spec.name, "role": spec.role, "state": "orphaned" if p else "stopped",
                         "healthy": False, "pid": p.pid if p else None, "port": spec.port,
                         "data_dir": str(spec.data_dir)})
    return {"services": services, "events": []}


@app.command()
def logs(service: str = typer.Argument("supervisor", help="coordinator, broker-N or supervisor."),
         follow: bool = typer.Option(False, "--follow", "-f", help="Keep printing new lines until Ctrl-C."),
         n: int = typer.Option(50, "--lines", "-n", min=0, help="How many of the last lines to print first."),
         config: Optional[Path] = ConfigOpt) -> None:
    """Show a service's log."""
    cfg = _cfg(config)
    if cfg.mode == "docker" and service != "supervisor":
        from .docker_cmds import logs_docker

        return logs_docker(cfg, service, follow, n)
    path = cfg.logs_dir / f"{service}.log"
    if not path.exists():
        names = ", ".join(sorted(p.stem for p in cfg.logs_dir.glob("*.log"))) or "none yet"
        fail(f"no log for {service!r} in {cfg.logs_dir}; known logs: {names}")
    with open(path, "r", encoding="utf-8", errors="replace") as f:
        for line in (f.readlines()[-n:] if n else f.readlines()[:0]):
            typer.echo(line.rstrip("\n"))
        while follow:
            line = f.readline()
            if line:
                typer.echo(line.rstrip("\n"))
            else:
                time.sleep(0.2)


@app.command()
def restart(service: Optional[str] = typer.Argument(None, help="One service, or all."),
            config: Optional[Path] = ConfigOpt) -> None:
    """Graceful restart of one service or all of them."""
    cfg = _cfg(config)
    if not stack.running_pid(cfg):
        fail(f"sandbox {cfg.name} is not running; start it with `sandbox up`", 3)
    pending = stack.restart_needed(cfg)
    if pending and not service:   # ports, brokers, host or data_dir changed: a new stack applies them
        typer.echo(f"applying sandbox.toml: {pending.split(':')[0]}")
        kept = stack.runtime_overrides(cfg)   # `up --brokers 3 --port P` still hold
        _stop(cfg)
        up(docker=cfg.mode == "docker", brokers=kept.get("brokers"), port=kept.get("port"), foreground=False,
           ephemeral=False, timeout=60.0, config=config)
        return
    names = [s.name for s in stack.service_specs(cfg)]
    if service and service not in names:
        fail(f"no service {service!r}; services are {', '.join(names)}")
    targets = [service] if service else names
    key = "started_wall" if cfg.mode == "docker" else "pid"  # containers have no pid on the host
    before = {s["name"]: s.get(key) for s in (stack.read_status_file(cfg) or {}).get("services", [])}
    (cfg.data_dir / stack.RESTART_FILE).write_text(service or "", encoding="utf-8")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        now = {s["name"]: s for s in (stack.read_status_file(cfg) or {}).get("services", [])}
        if all(now.get(n, {}).get(key) not in (None, before.get(n)) and now[n].get("healthy")
               and now[n].get("state") == "running" for n in targets):
            typer.echo(f"restarted {', '.join(targets)}")
            return
        time.sleep(0.2)
    fail(f"{', '.join(targets)} did not come back healthy within 60 s; see `sandbox status` and `sandbox logs`", 1)


@app.command()
def recover(wipe: bool = typer.Option(False, "--wipe", help="Quarantine every journal, start clean, re-create every known topic."),
            config: Optional[Path] = ConfigOpt) -> None:
    """Repair journals now (stop, restart: each service repairs its journal at start)."""
    cfg = _cfg(config)
    was_running = _stop(cfg)
    if cfg.mode == "docker":
        from .docker_cmds import recover_docker

        recover_docker(cfg, wipe)
    elif wipe:
        for spec in stack.service_specs(cfg):
            if spec.data_dir.exists():
                dest, how = quarantine(spec.data_dir, cfg.quarantine_dir, spec.name, time.time())
                prune(cfg.quarantine_dir, spec.name, cfg.recovery.keep_quarantines)
                typer.echo(f"moved {spec.name}'s journal to {dest} ({how})")
    up(docker=cfg.mode == "docker", brokers=None, port=None, foreground=False, ephemeral=False, timeout=60.0, config=config)
    if wipe:
        from sandbox.runner.manifest import reconcile

        with _client(cfg) as c:
            for m in reconcile(stack.desired_topics(cfg), c):
                typer.echo(f"  {m}")
    typer.echo("recovered" + ("" if was_running else " (the sandbox was not running; it is now)"))
