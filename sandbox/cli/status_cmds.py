"""`sandbox status` (health of every service, topic and group, also when no supervisor answers) and
`sandbox logs` (a service's log, native or in its container)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Optional

import typer

from sandbox.config import SandboxConfig
from sandbox.runner import control, orphans, stack

from . import common
from .common import ConfigOpt, client, fail, json_option, load


def status(as_json: bool = json_option("The status as JSON (SPEC.md)."),
           watch: bool = typer.Option(False, "--watch", help="Refresh every second until Ctrl-C."),
           config: Optional[Path] = ConfigOpt) -> None:
    """Health of every service, topic and group. Exit 0 healthy, 1 unhealthy, 3 not running."""
    from .render import print_status

    cfg = load(config, warn=False)   # said once below: not again when the supervisor reports it
    while True:
        code = status_once(cfg, as_json, print_status)
        if not watch:
            raise typer.Exit(code)
        time.sleep(1.0)


def gather(cfg: SandboxConfig, kafka=None) -> tuple[dict, int, bool]:
    """(the status, its exit code, whether the supervisor runs with a stale state file): what
    `sandbox status` and `sandbox monitor` show, from the supervisor's live state, else the
    services found running without it. kafka: a client to ask with (one is made when None)."""
    from sandbox.health.status import build_status

    sup_pid = stack.running_pid(cfg)
    state = stack.live_state(cfg) if cfg.mode == "docker" or sup_pid else None
    # no state to trust (no supervisor, or one that stopped beating): find the services ourselves
    left = orphans.live_services(stack.service_specs(cfg)) if state is None and cfg.mode != "docker" else {}
    stale = bool(sup_pid) and state is None   # the supervisor runs, its state file is not fresh
    if state is None and left:
        state = control.orphaned_state(cfg, left)
        if sup_pid:   # orphaned means alive while the supervisor is not: this one is alive (paused, wedged,
            for s in state["services"]:   # or without room for its state file), they still run under it
                if s["state"] == "orphaned":
                    s["state"] = "running"
    c = (kafka or client(stack.bootstrap(cfg))) if state is not None else None
    try:
        st = build_status(name=cfg.name, mode=cfg.mode, bootstrap=stack.bootstrap(cfg), state=state, client=c,
                          coordinator=(cfg.connect_host, cfg.coordinator_port),
                          sasl_bootstrap=cfg.sasl_bootstrap)
    finally:
        if c is not None and c is not kafka:
            c.close()
    running = state is not None and (not left or bool(sup_pid))
    st["running"] = running
    st["restart_needed"] = stack.restart_needed(cfg) if running else None
    full = disk_full(cfg) if (left and sup_pid) or (state is None and not left and stack.running_pid(cfg)) else None
    if full:
        st["healthy"] = False
        st["problems"].insert(0, f"the supervisor cannot write its state file: {full}; free space on that disk "
                                 f"(it carries on by itself once there is room)")
    elif left and sup_pid:
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
    elif state is None and not left and stack.running_pid(cfg):
        st["problems"].insert(0, "the supervisor does not answer (its state file is stale): it may be paused; "
                                 "`sandbox down` then `sandbox up` replaces it")
    if left:
        code = 1
    elif state is None:
        code = 3
    else:
        code = 0 if st["healthy"] else 1
    return st, code, stale or bool(left)


def status_once(cfg: SandboxConfig, as_json: bool, printer) -> int:
    st, code, said_first = gather(cfg)
    stale = code == 3 and said_first   # "not running" would be untrue: the supervisor runs
    if common.last_warning and not any(e.get("kind") == "manifest-error" for e in st.get("events", [])):
        typer.echo(common.last_warning, err=True)
    if as_json:
        typer.echo(json.dumps(st, indent=2))
    else:
        if said_first:
            typer.echo(f"sandbox {cfg.name}: {st['problems'][0]}")
        if not stale:
            printer(st)
        if st["restart_needed"]:
            typer.echo(st["restart_needed"])
    return code


def disk_full(cfg: SandboxConfig) -> str | None:
    """Why the data folder takes no write when its disk is full, else None: a supervisor whose
    state file went stale then has no room to write it, it is not wedged."""
    from sandbox.runner.quarantine import DISK_FULL, path_problem

    problem = path_problem(cfg.data_dir)
    return problem if problem and problem.startswith(DISK_FULL) else None


def logs(service: str = typer.Argument("supervisor", help="coordinator, broker-N or supervisor."),
         follow: bool = typer.Option(False, "--follow", "-f", help="Keep printing new lines until Ctrl-C."),
         n: int = typer.Option(50, "--lines", "-n", min=0, help="How many of the last lines to print first."),
         config: Optional[Path] = ConfigOpt) -> None:
    """Show a service's log."""
    cfg = load(config)
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


def register(app: typer.Typer) -> None:
    """Add `sandbox status` and `sandbox logs` to the CLI."""
    app.command()(status)
    app.command()(logs)
