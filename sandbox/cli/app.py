"""The `sandbox` command line (typer). Only this package imports typer or rich."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Optional

import typer

app = typer.Typer(
    name="sandbox",
    help="A local Kafka-compatible streaming sandbox: broker, coordinator and tools.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,   # plain help: square brackets stay, no box drawing in cmd.exe (see plain_help)
)


def _show_version(value: bool) -> None:
    if value:
        from sandbox import __version__

        typer.echo(f"sandbox {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_show_version, is_eager=True,
                                       help="Print the version and exit.")) -> None:
    """A local Kafka-compatible streaming sandbox."""


def plain_help(typer_app: typer.Typer) -> None:
    """Help as plain text in every command group: rich markup would eat "[docker] base_image" and
    "[topics]", and shows every flag as `--docker <bool>`."""
    typer_app.rich_markup_mode = None
    for group in typer_app.registered_groups:
        if group.typer_instance is not None:
            plain_help(group.typer_instance)


def fail(message: str, code: int = 2) -> None:
    """One clear sentence on stderr, no traceback."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def _parse_overrides(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        if "=" not in item:
            fail(f"setting {item!r} is not KEY=VALUE; write it like -o auto.create.topics.enable=false")
        k, v = item.split("=", 1)
        out[k.strip()] = v.strip()
    return out


_LISTENER_CONFLICTS = {"host": "--host", "port": "--port", "advertised_host": "--advertised-host",
                       "advertised_port": "--advertised-port"}


@app.command()
def broker(
    ctx: typer.Context,
    port: int = typer.Option(9092, "--port", help="Kafka port to listen on (0 = any free port)."),
    data_dir: Path = typer.Option(..., "--data-dir", help="The broker's journal folder."),
    host: str = typer.Option("127.0.0.1", "--host", help="Bind address (never 0.0.0.0 unless you mean it)."),
    node_id: int = typer.Option(1, "--id", help="Broker id."),
    advertised_host: Optional[str] = typer.Option(None, "--advertised-host", help="Host clients must use (default: --host)."),
    advertised_port: Optional[int] = typer.Option(None, "--advertised-port", help="Port clients must use (default: --port)."),
    coordinator: Optional[str] = typer.Option(None, "--coordinator", help="HOST:PORT of a `sandbox coordinator`; without it the broker embeds its own (combined mode)."),
    listener: list[str] = typer.Option(
        [], "--listener", metavar="LISTENER",
        help="NAME=BIND_HOST:PORT[,advertised=HOST:PORT], repeatable (Kafka's listeners + advertised.listeners): "
             "clients that connect through a listener are given every broker's address of that listener name. "
             "The first is the primary address. Replaces --host/--port/--advertised-host/--advertised-port."),
    option: list[str] = typer.Option([], "-o", "--set", help="Kafka broker setting KEY=VALUE, e.g. auto.create.topics.enable=false."),
    log_level: str = typer.Option("INFO", "--log-level", help="DEBUG, INFO, WARNING or ERROR."),
) -> None:
    """Run one broker in the foreground (with an embedded coordinator) until Ctrl-C / SIGTERM."""
    from sandbox.broker.config import BrokerConfig, check_listeners, parse_listener
    from sandbox.broker.server import run_broker, setup_logging
    from sandbox.coordinator import CoordinatorError, JournalCorruptError
    from sandbox.lifecycle import config_exit
    from sandbox.log import JournalLockedError, UnrecoverableJournalError

    listeners = []
    if listener:
        given = [flag for name, flag in _LISTENER_CONFLICTS.items()
                 if getattr(ctx.get_parameter_source(name), "name", "DEFAULT") in ("COMMANDLINE", "ENVIRONMENT")]
        if given:
            fail(f"{'/'.join(given)} cannot be combined with --listener; give every address in the --listener options")
        try:
            listeners = [parse_listener(spec) for spec in listener]
            check_listeners(listeners)
        except ValueError as e:
            fail(f"{e}; see `sandbox broker --help`")
        host, port = listeners[0].host, listeners[0].port
    setup_logging(log_level)
    cfg = BrokerConfig(data_dir=data_dir, node_id=node_id, host=host, port=port,
                       advertised_host=advertised_host, advertised_port=advertised_port,
                       coordinator=coordinator, listeners=listeners)
    try:
        cfg.apply_overrides(_parse_overrides(option))
    except ValueError as e:
        fail(f"{e}; see `sandbox broker --help`")
    try:
        code = asyncio.run(run_broker(cfg))
    except JournalLockedError as e:   # another live process has it: nothing to repair or move aside
        raise typer.Exit(config_exit("journal-in-use", str(e), path=str(data_dir)))
    except (UnrecoverableJournalError, JournalCorruptError) as e:
        fail(f"the journal in {data_dir} cannot be repaired: {e}. Move it aside (sandbox recover --wipe) and start again.", 4)
    except CoordinatorError as e:
        fail(f"{e.message} Start the coordinator first, or drop --coordinator to run combined.", 3)
    except OSError as e:
        raise typer.Exit(_service_os_error(e, f"{host}:{port}", data_dir))
    except KeyboardInterrupt:
        code = 0
    raise typer.Exit(code)


def _service_os_error(e: OSError, where: str, data_dir: Path) -> int:
    """A service's start failed on the machine, not in its code: the EVENT line and exit code
    that tell the supervisor not to restart it (see sandbox.lifecycle), or the error re-raised."""
    from sandbox.lifecycle import address_problem, config_exit

    found = address_problem(e, where) if e.filename is None else None
    if found is not None:
        if "listener" in (e.strerror or ""):
            found = (found[0], f"{e.strerror}: " + found[1].split("; ", 1)[-1])
        return config_exit(found[0], found[1], address=where)
    if e.filename is not None:
        return config_exit("data-folder", f"the data folder {data_dir} cannot be used ({e.strerror or e}: "
                                          f"{e.filename}); choose another data_dir in sandbox.toml",
                           path=str(data_dir))
    raise e


@app.command("coordinator")
def coordinator_cmd(
    port: int = typer.Option(9093, "--port", help="Port to listen on."),
    data_dir: Path = typer.Option(..., "--data-dir", help="The coordinator's journal folder."),
    host: str = typer.Option("127.0.0.1", "--host", help="Bind address."),
    session_timeout_ms: int = typer.Option(9000, "--session-timeout-ms", help="Fence a broker silent this long."),
    log_level: str = typer.Option("INFO", "--log-level", help="DEBUG, INFO, WARNING or ERROR."),
    default_replication_factor: int = typer.Option(1, "--default-replication-factor", min=1,
                                                   help="Replicas of a topic created without a factor (-1)."),
    min_insync_replicas: int = typer.Option(1, "--min-insync-replicas", min=1,
                                            help="min.insync.replicas of new topics (capped at their factor)."),
) -> None:
    """Run the coordinator (cluster metadata, broker liveness, placement) in the foreground."""
    from sandbox.coordinator import JournalCorruptError, JournalLockedError
    from sandbox.coordinator.cli import run

    try:
        code = run(port, data_dir, host=host, session_timeout_ms=session_timeout_ms, log_level=log_level,
                   default_replication_factor=default_replication_factor, min_insync_replicas=min_insync_replicas)
    except JournalLockedError as e:   # another live process has it: nothing to repair or move aside
        from sandbox.lifecycle import config_exit

        raise typer.Exit(config_exit("journal-in-use", str(e), path=str(data_dir)))
    except JournalCorruptError as e:
        fail(f"the coordinator journal in {data_dir} cannot be repaired: {e}. Move it aside (sandbox recover --wipe) and start again.", 4)
    except OSError as e:
        if "locked" in str(e).lower():
            fail(f"{e}")
        raise typer.Exit(_service_os_error(e, f"{host}:{port}", data_dir))
    raise typer.Exit(code)


SERVICE_COMMANDS = ("broker", "coordinator")  # defined in this module


def main() -> None:
    # kio registers hypothesis strategies for its types whenever hypothesis is importable (it is,
    # wherever the test extras are installed): about 10 MB and 0.3 s in every service process that
    # never uses them. A None entry makes `import hypothesis` fail fast inside this process only.
    import sys

    sys.modules.setdefault("hypothesis", None)  # type: ignore[arg-type]
    if len(sys.argv) > 1 and sys.argv[1] in SERVICE_COMMANDS:
        app()  # a service process (what the supervisor and containers run): skip the other commands
        return
    if len(sys.argv) > 1 and sys.argv[1] == "supervise":
        from . import stack_cmds  # noqa: F401  (the supervisor process needs only its own command)

        app()
        return
    from . import groups_cmds, monitor, stack_cmds  # noqa: F401  (stack_cmds registers on import)
    from . import docker_cmds  # noqa: F401  (registers `sandbox image` on import)
    from . import records_cmds  # noqa: F401  (registers `sandbox produce` and `sandbox consume` on import)
    from . import bench_cmds  # noqa: F401  (registers `sandbox bench` on import)
    from . import topics_cmds  # noqa: F401  (registers `sandbox topics` on import)
    from . import doctor_cmds  # noqa: F401  (registers `sandbox doctor` on import)

    monitor.register(app)
    groups_cmds.register(app)
    plain_help(app)

    app()


if __name__ == "__main__":
    main()
