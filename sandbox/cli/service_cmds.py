"""`sandbox broker` and `sandbox coordinator`: one service in the foreground, what the supervisor and
the containers run (a service process loads only these two commands)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Optional

import typer

from .common import fail, parse_pairs

_LISTENER_CONFLICTS = {"host": "--host", "port": "--port", "advertised_host": "--advertised-host",
                       "advertised_port": "--advertised-port"}


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
        cfg.apply_overrides(parse_pairs(option, "setting", "-o auto.create.topics.enable=false"))
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

    where = getattr(e, "where", where)   # a named listener's own address (ListenerBindError)
    found = address_problem(e, where) if e.filename is None else None
    if found is not None:
        return config_exit(found[0], found[1], address=where)
    if e.filename is not None:
        return config_exit("data-folder", f"the data folder {data_dir} cannot be used ({e.strerror or e}: "
                                          f"{e.filename}); choose another data_dir in sandbox.toml",
                           path=str(data_dir))
    raise e


def coordinator_cmd(
    port: int = typer.Option(9093, "--port", help="Port to listen on."),
    data_dir: Path = typer.Option(..., "--data-dir", help="The coordinator's journal folder."),
    host: str = typer.Option("127.0.0.1", "--host", help="Bind address."),
    session_timeout_ms: int = typer.Option(9000, "--session-timeout-ms", help="Fence a broker silent this long."),
    default_replication_factor: int = typer.Option(1, "--default-replication-factor", min=1,
                                                   help="Replicas of a topic created without a factor (-1)."),
    min_insync_replicas: int = typer.Option(1, "--min-insync-replicas", min=1,
                                            help="min.insync.replicas of new topics (capped at their factor)."),
    default_partitions: int = typer.Option(1, "--default-partitions", min=1,
                                           help="Partitions of a topic created without a count (num.partitions)."),
    leader_imbalance_check_interval_s: float = typer.Option(
        300.0, "--leader-imbalance-check-interval-s",
        help="How often preferred leaders are given their partitions back (Kafka's "
             "leader.imbalance.check.interval.seconds); 0 turns auto.leader.rebalance.enable off."),
    log_level: str = typer.Option("INFO", "--log-level", help="DEBUG, INFO, WARNING or ERROR."),
) -> None:
    """Run the coordinator (cluster metadata, broker liveness, placement) in the foreground."""
    from sandbox.coordinator import JournalCorruptError, JournalLockedError
    from sandbox.coordinator.cli import run

    try:
        code = run(port, data_dir, host=host, session_timeout_ms=session_timeout_ms, log_level=log_level,
                   default_replication_factor=default_replication_factor, min_insync_replicas=min_insync_replicas,
                   default_partitions=default_partitions,
                   leader_imbalance_check_interval_s=leader_imbalance_check_interval_s)
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


def register(app: typer.Typer) -> None:
    """Add `sandbox broker` and `sandbox coordinator` to the CLI."""
    app.command()(broker)
    app.command("coordinator")(coordinator_cmd)
