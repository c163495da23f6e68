"""The `sandbox` command line (typer), composed: each command module adds its commands with
`register(app)` (as rpk's NewCommand does) and none imports this one. Only this package imports
typer or rich."""

from __future__ import annotations

import typer

#: first argument -> the command modules that process needs (a service process loads only its own)
SERVICE_COMMANDS = ("broker", "coordinator")


def _show_version(value: bool) -> None:
    if value:
        from sandbox import __version__

        typer.echo(f"sandbox {__version__}")
        raise typer.Exit(0)


def plain_help(typer_app: typer.Typer) -> None:
    """Help as plain text in every command group: rich markup would eat "[docker] base_image" and
    "[topics]", and shows every flag as `--docker <bool>`."""
    typer_app.rich_markup_mode = None
    for group in typer_app.registered_groups:
        if group.typer_instance is not None:
            plain_help(group.typer_instance)


def _modules(only_services: bool) -> list:
    from . import service_cmds

    if only_services:
        return [service_cmds]
    from . import (bench_cmds, docker_cmds, doctor_cmds, groups_cmds, monitor, records_cmds, rehearsal_cmds,
                   stack_cmds, topics_cmds)

    # the order of `sandbox --help` (command groups, like `topics`, come after the commands)
    return [service_cmds, stack_cmds, rehearsal_cmds, docker_cmds, records_cmds, bench_cmds, doctor_cmds, monitor,
            topics_cmds, groups_cmds]


def build_app(only_services: bool = False) -> typer.Typer:
    """The CLI with every command (or only `broker` and `coordinator`, for a service process)."""
    app = typer.Typer(
        name="sandbox",
        help="A local Kafka-compatible streaming sandbox: broker, coordinator and tools.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        rich_markup_mode=None,   # plain help: square brackets stay, no box drawing in cmd.exe (see plain_help)
    )

    @app.callback()
    def _root(version: bool = typer.Option(False, "--version", callback=_show_version, is_eager=True,
                                           help="Print the version and exit.")) -> None:
        """A local Kafka-compatible streaming sandbox."""

    for module in _modules(only_services):
        module.register(app)
    plain_help(app)
    return app


def main() -> None:
    # kio registers hypothesis strategies for its types whenever hypothesis is importable (it is,
    # wherever the test extras are installed): about 10 MB and 0.3 s in every service process that
    # never uses them. A None entry makes `import hypothesis` fail fast inside this process only.
    import sys

    sys.modules.setdefault("hypothesis", None)  # type: ignore[arg-type]
    build_app(only_services=len(sys.argv) > 1 and sys.argv[1] in SERVICE_COMMANDS)()


if __name__ == "__main__":
    main()
