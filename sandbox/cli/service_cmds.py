"""`sandbox broker` and `sandbox coordinator`: one service in the foreground, what the supervisor and
the containers run.

A service process starts at every crash heal, so these two commands are parsed with argparse, not
typer: typer and what it imports cost about 0.15 s of each start on an idle machine, and several
times that on a loaded one, where a destroyed coordinator journal takes two starts to heal.
`python -m sandbox` and the `sandbox` script send these commands here before loading the CLI;
`register` lists them in `sandbox --help` and hands on what reaches them through typer."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import NoReturn, Optional, Sequence

_LISTENER_CONFLICTS = {"host": "--host", "port": "--port", "advertised_host": "--advertised-host",
                       "advertised_port": "--advertised-port", "sasl_port": "--sasl-port"}
BROKER_HELP = "Run one broker in the foreground (with an embedded coordinator) until Ctrl-C / SIGTERM."
COORDINATOR_HELP = "Run the coordinator (cluster metadata, broker liveness, placement) in the foreground."


class _Exit(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


def _fail(message: str, code: int = 2) -> NoReturn:
    """One clear sentence on stderr, no traceback."""
    print(f"error: {message}", file=sys.stderr, flush=True)
    raise _Exit(code)


class _Help(argparse.HelpFormatter):
    """Help laid out as every other command's (click's): `Usage: ... [OPTIONS]`, an `Options:`
    list, and a value shown once per option (`-o, --set <KEY=VALUE>`)."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=33)

    def add_usage(self, usage, actions, groups, prefix=None) -> None:
        super().add_usage(usage, actions, groups, "Usage: ")

    def _format_action_invocation(self, action: argparse.Action) -> str:
        flags = ", ".join(action.option_strings)
        return f"{flags} {action.metavar}" if action.nargs != 0 and action.metavar else flags


class _Parser(argparse.ArgumentParser):
    def __init__(self, prog: str, description: str) -> None:
        super().__init__(prog=prog, description=description, usage=f"{prog} [OPTIONS]", formatter_class=_Help,
                         add_help=False)
        self._optionals.title = "Options"

    def with_help(self) -> argparse.ArgumentParser:
        self.add_argument("-h", "--help", action="help", help="Show this message and exit.")
        return self

    def error(self, message: str) -> NoReturn:   # one line, as every other command's errors
        _fail(f"{message}; see `{self.prog} --help`")


def _at_least_one(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is less than 1")
    return value


def broker_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="sandbox broker", description=BROKER_HELP)
    # host and ports default to None so that giving one beside --listener can be told from not giving it
    p.add_argument("--port", metavar="<int>", type=int, default=None,
                   help="Kafka port to listen on (0 = any free port; default 9092).")
    p.add_argument("--data-dir", metavar="<path>", type=Path, required=True, help="The broker's journal folder (required).")
    p.add_argument("--host", metavar="<str>", default=None,
                   help="Bind address (default 127.0.0.1; never 0.0.0.0 unless you mean it).")
    p.add_argument("--id", metavar="<int>", dest="node_id", type=int, default=1, help="Broker id (default 1).")
    p.add_argument("--advertised-host", metavar="<str>", default=None,
                   help="Host clients must use (default: --host).")
    p.add_argument("--advertised-port", metavar="<int>", type=int, default=None,
                   help="Port clients must use (default: --port).")
    p.add_argument("--coordinator", metavar="<str>", default=None,
                   help="HOST:PORT of a `sandbox coordinator`; without it the broker embeds its own (combined mode).")
    p.add_argument("--sasl-port", metavar="<int>", type=int, default=None,
                   help="Also serve a SASL_PLAINTEXT listener on this port (same host): clients authenticate "
                        "with PLAIN or SCRAM-SHA-256/512 against the cluster's SCRAM credentials. With "
                        "--listener, name one SASL_PLAINTEXT instead.")
    p.add_argument("--listener", action="append", default=[], metavar="<LISTENER>",
                   help="NAME=BIND_HOST:PORT[,advertised=HOST:PORT], repeatable (Kafka's listeners + "
                        "advertised.listeners): clients that connect through a listener are given every broker's "
                        "address of that listener name. The first is the primary address. Replaces "
                        "--host/--port/--advertised-host/--advertised-port.")
    p.add_argument("-o", "--set", dest="option", action="append", default=[], metavar="<KEY=VALUE>",
                   help="Kafka broker setting, e.g. auto.create.topics.enable=false (repeatable).")
    p.add_argument("--log-level", metavar="<str>", default="INFO",
                   help="DEBUG, INFO, WARNING or ERROR (default INFO).")
    return p.with_help()


def coordinator_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="sandbox coordinator", description=COORDINATOR_HELP)
    p.add_argument("--port", metavar="<int>", type=int, default=9093, help="Port to listen on (default 9093).")
    p.add_argument("--data-dir", metavar="<path>", type=Path, required=True,
                   help="The coordinator's journal folder (required).")
    p.add_argument("--host", metavar="<str>", default="127.0.0.1", help="Bind address (default 127.0.0.1).")
    p.add_argument("--session-timeout-ms", metavar="<int>", type=int, default=9000,
                   help="Fence a broker silent this long (default 9000).")
    p.add_argument("--default-replication-factor", metavar="<int>", type=_at_least_one, default=1,
                   help="Replicas of a topic created without a factor (-1) (default 1).")
    p.add_argument("--min-insync-replicas", metavar="<int>", type=_at_least_one, default=1,
                   help="min.insync.replicas of new topics, capped at their factor (default 1).")
    p.add_argument("--default-partitions", metavar="<int>", type=_at_least_one, default=1,
                   help="Partitions of a topic created without a count (num.partitions) (default 1).")
    p.add_argument("-o", "--set", dest="option", action="append", default=[], metavar="<KEY=VALUE>",
                   help="A broker setting the coordinator also shows and enforces, as Kafka's controller "
                        "does: delete.topic.enable, or a log.* topic default (repeatable).")
    p.add_argument("--seed-acls", metavar="<path>", type=Path, default=None,
                   help="A JSON file whose \"acls\" and \"cluster_id\" a fresh journal starts with, before "
                        "it serves anything (the supervisor passes its catalog, so a destroyed journal's "
                        "replacement never serves without its ACLs, nor under another cluster id).")
    p.add_argument("--leader-imbalance-check-interval-s", metavar="<float>", type=float, default=300.0,
                   help="How often preferred leaders are given their partitions back (Kafka's "
                        "leader.imbalance.check.interval.seconds; default 300); 0 turns "
                        "auto.leader.rebalance.enable off.")
    p.add_argument("--log-level", metavar="<str>", default="INFO",
                   help="DEBUG, INFO, WARNING or ERROR (default INFO).")
    return p.with_help()


def key_values(items: list[str], what: str, example: str) -> dict[str, str]:
    """KEY=VALUE options as a dict; ValueError naming the one that is not (common.parse_pairs turns
    it into the CLI's one sentence; it lives here, in the module without typer)."""
    out = {}
    for item in items:
        if "=" not in item:
            raise ValueError(f"{what} {item!r} is not KEY=VALUE; write it like {example}")
        k, v = item.split("=", 1)
        out[k.strip()] = v.strip()
    return out


def _broker(args: argparse.Namespace) -> int:
    import asyncio

    from sandbox.broker.config import BrokerConfig, check_listeners, parse_listener
    from sandbox.broker.server import run_broker, setup_logging
    from sandbox.lifecycle import raise_open_files_limit
    from sandbox.coordinator import CoordinatorError, JournalCorruptError
    from sandbox.lifecycle import config_exit
    from sandbox.log import JournalLockedError, UnrecoverableJournalError

    listeners = []
    host = "127.0.0.1" if args.host is None else args.host
    port = 9092 if args.port is None else args.port
    if args.listener:
        given = [flag for name, flag in _LISTENER_CONFLICTS.items() if getattr(args, name) is not None]
        if given:
            _fail(f"{'/'.join(given)} cannot be combined with --listener; give every address in the --listener options")
        try:
            listeners = [parse_listener(spec) for spec in args.listener]
            check_listeners(listeners)
        except ValueError as e:
            _fail(f"{e}; see `sandbox broker --help`")
        host, port = listeners[0].host, listeners[0].port
    setup_logging(args.log_level)
    raise_open_files_limit(logging.getLogger("sandbox.broker"))
    data_dir = args.data_dir
    cfg = BrokerConfig(data_dir=data_dir, node_id=args.node_id, host=host, port=port,
                       advertised_host=args.advertised_host, advertised_port=args.advertised_port,
                       coordinator=args.coordinator, listeners=listeners, sasl_port=args.sasl_port)
    try:
        overrides = key_values(args.option, "setting", "-o auto.create.topics.enable=false")
    except ValueError as e:
        _fail(str(e))
    try:
        cfg.apply_overrides(overrides)
    except ValueError as e:
        _fail(f"{e}; see `sandbox broker --help`")
    try:
        return asyncio.run(run_broker(cfg))
    except JournalLockedError as e:   # another live process has it: nothing to repair or move aside
        return config_exit("journal-in-use", str(e), path=str(data_dir))
    except (UnrecoverableJournalError, JournalCorruptError) as e:
        _fail(f"the journal in {data_dir} cannot be repaired: {e}. Move it aside (sandbox recover --wipe) and start again.", 4)
    except CoordinatorError as e:
        _fail(f"{e.message} Start the coordinator first, or drop --coordinator to run combined.", 3)
    except OSError as e:
        return _service_os_error(e, f"{host}:{port}", data_dir)
    except KeyboardInterrupt:
        return 0


def _coordinator(args: argparse.Namespace) -> int:
    from sandbox.coordinator import JournalCorruptError, JournalLockedError
    from sandbox.coordinator.cli import run

    from sandbox import server_properties

    data_dir = args.data_dir
    try:
        settings = server_properties.normalize(
            key_values(args.option, "setting", "-o delete.topic.enable=false"))
        other = sorted(set(settings) - set(server_properties.SHOWN_BY_COORDINATOR))
        if other:
            raise ValueError(f"{other[0]} is a broker's setting; the coordinator takes "
                             f"{', '.join(server_properties.SHOWN_BY_COORDINATOR)}")
    except ValueError as e:
        _fail(f"{e}.", 2)
    try:
        return run(args.port, data_dir, host=args.host, session_timeout_ms=args.session_timeout_ms,
                   log_level=args.log_level, default_replication_factor=args.default_replication_factor,
                   min_insync_replicas=args.min_insync_replicas, default_partitions=args.default_partitions,
                   leader_imbalance_check_interval_s=args.leader_imbalance_check_interval_s,
                   settings=settings, seed_acls=args.seed_acls)
    except JournalLockedError as e:   # another live process has it: nothing to repair or move aside
        from sandbox.lifecycle import config_exit

        return config_exit("journal-in-use", str(e), path=str(data_dir))
    except JournalCorruptError as e:
        _fail(f"the coordinator journal in {data_dir} cannot be repaired: {e}. Move it aside (sandbox recover --wipe) and start again.", 4)
    except OSError as e:
        if "locked" in str(e).lower() and not _held_file(e, data_dir):
            _fail(f"{e}")
        return _service_os_error(e, f"{args.host}:{args.port}", data_dir)


def _service_os_error(e: OSError, where: str, data_dir: Path) -> int:
    """A service's start failed on the machine, not in its code: the EVENT line and exit code
    that tell the supervisor not to restart it (see sandbox.lifecycle), or the error re-raised."""
    from sandbox.lifecycle import address_problem, config_exit

    where = getattr(e, "where", where)   # a named listener's own address (ListenerBindError)
    found = address_problem(e, where) if e.filename is None else None
    if found is not None:
        return config_exit(found[0], found[1], address=where)
    if _held_file(e, data_dir):   # not the folder's fault, and not for long: the supervisor tries again
        return config_exit("file-in-use", f"{e.filename} cannot be removed or renamed ({e.strerror or e}): "
                                          f"another program holds it open (a virus scanner, the search "
                                          f"indexer, an editor) or it is read-only", path=str(e.filename))
    if e.filename is not None:
        return config_exit("data-folder", f"the data folder {data_dir} cannot be used ({e.strerror or e}: "
                                          f"{e.filename}); choose another data_dir in sandbox.toml",
                           path=str(data_dir))
    raise e


def _held_file(e: OSError, data_dir: Path) -> bool:
    from sandbox.folder_probe import held_by_another_program

    return held_by_another_program(e, data_dir)


SERVICES = {"broker": (broker_parser, _broker), "coordinator": (coordinator_parser, _coordinator)}


def main(command: str, argv: Sequence[str]) -> int:
    """Run `sandbox COMMAND ARGV...` for a service command; returns the process's exit code."""
    make_parser, serve = SERVICES[command]
    try:
        return serve(make_parser().parse_args(list(argv)))
    except _Exit as e:
        return e.code


def register(app) -> None:
    """List `sandbox broker` and `sandbox coordinator` in the CLI; what reaches them through typer
    (a test's CliRunner) is handed to argparse unchanged."""
    import typer

    passthrough = {"ignore_unknown_options": True, "allow_extra_args": True, "help_option_names": []}

    def command(name: str, summary: str) -> None:
        def serve(ctx):
            raise typer.Exit(main(name, ctx.args))
        serve.__doc__, serve.__annotations__ = summary, {"ctx": typer.Context, "return": None}
        app.command(name, context_settings=passthrough, add_help_option=False)(serve)

    command("broker", BROKER_HELP)
    command("coordinator", COORDINATOR_HELP)


def dispatch(argv: Optional[list[str]] = None) -> None:
    """Exit through main() when argv names a service command; return otherwise."""
    argv = sys.argv if argv is None else argv
    if len(argv) > 1 and argv[1] in SERVICES:
        sys.modules.setdefault("hypothesis", None)  # type: ignore[arg-type]  (see sandbox.cli.app.main)
        sys.exit(main(argv[1], argv[2:]))
