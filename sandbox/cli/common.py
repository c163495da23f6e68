"""What every command shares, in one place: the common options (-c/--config, -b/--bootstrap, --json),
errors as one sentence and an exit code, loading sandbox.toml, the Kafka client, and which sandbox a
command acts on: the address given with -b, else this folder's sandbox when it runs; otherwise one
sentence saying there is none here and how to start one (exit 3, as `status` does). Never a default
address: 127.0.0.1:9092 may be another folder's stack."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, NoReturn, Optional

import typer

if TYPE_CHECKING:   # a service process (`sandbox broker`) loads this module: nothing more than it needs
    from sandbox.config import SandboxConfig

CONFIG_HELP = "Path of sandbox.toml (default: ./sandbox.toml)."
ConfigOpt = typer.Option(None, "--config", "-c", help=CONFIG_HELP)
BootstrapOpt = typer.Option(None, "--bootstrap", "-b",
                            help="HOST:PORT of a broker (default: the sandbox of this folder).")
NOT_RUNNING = 3


def config_option(help: str = CONFIG_HELP) -> Any:
    """-c/--config with its own help text (ConfigOpt is the usual one)."""
    return typer.Option(None, "--config", "-c", help=help)


def json_option(help: str) -> Any:
    """--json: the command's result as JSON instead of text."""
    return typer.Option(False, "--json", help=help)


def fail(message: str, code: int = 2) -> NoReturn:
    """One clear sentence on stderr, no traceback."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def parse_pairs(items: list[str], what: str, example: str) -> dict[str, str]:
    """KEY=VALUE options as a dict, or one sentence naming the one that is not (exit 2)."""
    from .service_cmds import key_values

    try:
        return key_values(items, what, example)
    except ValueError as e:
        fail(str(e))


def deprecated(old: str, new: str) -> None:
    """An old spelling that still works, with one line saying what replaced it."""
    typer.echo(f"note: {old} is deprecated; use {new}", err=True)


# ---- errors of the layers below, as one sentence

def calling(error: type[BaseException] | Callable[[], type[BaseException]], code: int) -> Callable[..., Any]:
    """call(fn, *args) that turns `error` (a class, or a function returning it, to import lazily)
    into one sentence and exit `code`."""
    def call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        kind = error if isinstance(error, type) else error()
        try:
            return fn(*args, **kwargs)
        except kind as e:
            fail(str(e), code)
    return call


def _kafka_error() -> type[BaseException]:
    from sandbox.client import KafkaClientError

    return KafkaClientError


def _docker_error() -> type[BaseException]:
    from sandbox.runner.docker_plan import DockerError

    return DockerError


kafka_call = calling(_kafka_error, 1)     # a broker refused or did not answer: exit 1
docker_call = calling(_docker_error, 2)   # Docker missing, stopped or refusing: exit 2


def control_call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """A runner.control function; its ControlError is one sentence with its own exit code."""
    from sandbox.runner.control import ControlError

    try:
        return fn(*args, **kwargs)
    except ControlError as e:
        fail(e.message, e.code)


def client(bootstrap: str, timeout: float = 5.0, **kwargs: Any):
    """A KafkaClient of `bootstrap` (close it, or use it in a with block)."""
    from sandbox.client import KafkaClient, KafkaClientError

    try:
        return KafkaClient(bootstrap, timeout=timeout, **kwargs)
    except KafkaClientError as e:   # an address that is not host:port: one sentence, as `groups` says it
        fail(str(e), 2)


# ---- sandbox.toml and which sandbox

def read_config(config: Optional[Path]) -> SandboxConfig:
    """sandbox.toml as written (or the defaults without one), or one sentence (exit 2)."""
    from sandbox.config import ConfigError
    from sandbox.runner import stack

    try:
        return stack.load_config(config, cwd=Path.cwd())
    except ConfigError as e:
        fail(str(e))


#: the warning of the last load() that fell back to the running stack's config (see status)
last_warning: Optional[str] = None


def load(config: Optional[Path], *, warn: bool = True, last_good: bool = True) -> SandboxConfig:
    """The sandbox of this folder as it runs; with a broken sandbox.toml (and last_good) the running
    stack's last good config, so status, logs, down and the tools keep working while it is fixed."""
    from sandbox.config import ConfigError
    from sandbox.runner import stack

    try:
        return stack.load_stack_config(config, Path.cwd())
    except ConfigError as e:
        if not last_good:
            fail(str(e))
        try:
            cfg = stack.load_stack_config(config, Path.cwd(), last_good=True)
        except ConfigError:
            fail(str(e))
        global last_warning
        last_warning = f"warning: {e} Using the config the running sandbox last accepted."
        if warn:
            typer.echo(last_warning, err=True)
        return cfg


def running_cfg(config: Optional[Path]) -> SandboxConfig:
    """This folder's sandbox config; exits 3 with one sentence when it is not running."""
    from sandbox.runner import control

    cfg = load(config, last_good=False)
    control_call(control.require_running, cfg)
    return cfg


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


def resolve(config: Optional[Path], bootstrap: Optional[str] = None) -> Target:
    """The broker address this command must use (see the module's docstring)."""
    from sandbox.runner import stack

    if bootstrap:
        return Target(bootstrap, None)
    cfg = load(config)
    if not stack.running_pid(cfg):
        fail(no_sandbox_here(cfg), NOT_RUNNING)
    return Target(stack.bootstrap(cfg), cfg)


def target_client(config: Optional[Path], bootstrap: Optional[str], timeout: float = 5.0):
    """A client of this folder's running sandbox, or of -b HOST:PORT (see resolve)."""
    return client(resolve(config, bootstrap).bootstrap, timeout=timeout)
