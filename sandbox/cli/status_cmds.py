"""`sandbox status` (health of every service, topic and group, also when no supervisor answers) and
`sandbox logs` (a service's log, native or in its container)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Optional

import typer

from sandbox.config import SandboxConfig

from . import common
from .common import ConfigOpt, fail, json_option, load
from .status_gather import gather


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
