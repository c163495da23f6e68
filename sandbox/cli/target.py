"""Which sandbox a command acts on, decided the same way by every command that talks to a broker:
the address given with -b/--bootstrap, else this folder's sandbox when it runs; otherwise one
sentence saying there is none here and how to start one (exit 3, as `status` does). Never a
default address: 127.0.0.1:9092 may be another folder's stack."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import typer

from sandbox.config import ConfigError, SandboxConfig
from sandbox.runner import stack

from .app import fail

ConfigOpt = typer.Option(None, "--config", "-c", help="Path of sandbox.toml (default: ./sandbox.toml).")
BootstrapOpt = typer.Option(None, "--bootstrap", "-b",
                            help="HOST:PORT of a broker (default: the sandbox of this folder).")
NOT_RUNNING = 3


@dataclass(frozen=True)
class Target:
    bootstrap: str
    cfg: Optional[SandboxConfig]   # None when the address came from -b


def no_sandbox_here(cfg: SandboxConfig) -> str:
    where = cfg.path if cfg.path else Path.cwd()
    if cfg.path is None:
        return (f"there is no sandbox here ({where} has no sandbox.toml and none runs from it); "
                f"start one with `sandbox up`, or give a broker with -b HOST:PORT")
    return (f"sandbox {cfg.name} ({where}) is not running; start it with `sandbox up`, "
            f"or give a broker with -b HOST:PORT")


#: the warning of the last load() that fell back to the running stack's config (see status)
last_warning: Optional[str] = None


def load(config: Optional[Path], *, warn: bool = True) -> SandboxConfig:
    """The sandbox of this folder; with a broken sandbox.toml, the running stack's last good config
    (so status, logs, down and the tools keep working while the user fixes the file)."""
    try:
        return stack.load_stack_config(config, Path.cwd())
    except ConfigError as e:
        try:
            cfg = stack.load_stack_config(config, Path.cwd(), last_good=True)
        except ConfigError:
            fail(str(e))
            raise AssertionError from None
        global last_warning
        last_warning = f"warning: {e} Using the config the running sandbox last accepted."
        if warn:
            typer.echo(last_warning, err=True)
        return cfg


def resolve(config: Optional[Path], bootstrap: Optional[str] = None) -> Target:
    """The broker address this command must use (see the module's docstring)."""
    if bootstrap:
        return Target(bootstrap, None)
    cfg = load(config)
    if not stack.running_pid(cfg):
        fail(no_sandbox_here(cfg), NOT_RUNNING)
    return Target(stack.bootstrap(cfg), cfg)


def deprecated(old: str, new: str) -> None:
    """An old spelling that still works, with one line saying what replaced it."""
    typer.echo(f"note: {old} is deprecated; use {new}", err=True)
