"""`sandbox kill SERVICE` and `sandbox pause SERVICE --for 15s`: rehearse a failure (a crash, a
frozen process) so an application can be watched riding through it. The running supervisor does
both (runner/control.py asks it): it restarts a killed service as after any crash, and owns the end
of a pause, so a service resumes on time even when this command is interrupted."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Optional

import typer

from sandbox.runner import control

from .common import ConfigOpt, control_call, fail, load

SERVICE_HELP = "A service as `sandbox status` shows it: coordinator or broker-N."
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "": 1.0}


MAX_PAUSE_S = 24 * 3600.0


def parse_duration(text: str) -> float:
    """'15s', '500ms', '2m', '1.5' (seconds) -> seconds; one sentence (exit 2) for anything else."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|s|m|h|d|)\s*", text.lower())
    if not m or float(m.group(1)) <= 0:
        fail(f"--for {text!r} is not a duration; write it like 15s, 500ms or 2m")
    seconds = float(m.group(1)) * _UNITS[m.group(2)]
    if seconds > MAX_PAUSE_S:   # a typo's freeze would outlive any rehearsal (and this command waits it out)
        fail(f"--for {text} is longer than a pause may last (at most 24h); `sandbox restart SERVICE` ends one early")
    return seconds


def _who(state: dict) -> str:
    return f"pid {state['pid']}" if state.get("pid") else f"container {state.get('container') or '?'}"


def kill(service: str = typer.Argument(..., help=SERVICE_HELP),
         config: Optional[Path] = ConfigOpt) -> None:
    """Kill one service at once, as a crash would (SIGKILL; docker: container kill); the supervisor
    restarts it as after any crash."""
    cfg = load(config)
    before = control_call(control.kill, cfg, service)
    then = ("the supervisor restarts it as after any crash" if cfg.recovery.on_crash != "off" else
            "[recovery] on_crash = \"off\": it stays down until `sandbox restart " + service + "`")
    typer.echo(f"killed {service} ({_who(before)}); {then} (see `sandbox status`)")


def pause(service: str = typer.Argument(..., help=SERVICE_HELP),
          duration: str = typer.Option("15s", "--for", help="How long it stays frozen, e.g. 15s, 500ms, 2m."),
          config: Optional[Path] = ConfigOpt) -> None:
    """Freeze one service without ending it (SIGSTOP; Windows: suspend; docker: container pause),
    then resume it. The supervisor resumes it on time even if this command is interrupted, and
    does not count it as crashed or restart it meanwhile."""
    seconds = parse_duration(duration)
    cfg = load(config)
    state = control_call(control.pause, cfg, service, seconds)
    typer.echo(f"paused {service} ({_who(state)}) for {seconds:g} s; the supervisor resumes it then")
    try:
        control_call(control.wait_resumed, cfg, service, seconds + 30.0)
    except KeyboardInterrupt:
        typer.echo(f"{service} stays paused until the supervisor resumes it, {seconds:g} s after the pause",
                   err=True)
        raise typer.Exit(130) from None
    typer.echo(f"resumed {service}")


def register(app: typer.Typer) -> None:
    """Add `sandbox kill` and `sandbox pause` to the CLI."""
    app.command()(kill)
    app.command()(pause)
