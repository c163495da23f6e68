"""The `sandbox` command line (typer), composed: each command module adds its commands with
`register(app)` (as rpk's NewCommand does) and none imports this one. Only this package imports
typer or rich; it is imported only once the command is known not to be a service (see main)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import typer


def _show_version(value: bool) -> None:
    if value:
        import typer

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


def _modules() -> list:
    from . import (bench_cmds, docker_cmds, doctor_cmds, groups_cmds, monitor, records_cmds, rehearsal_cmds,
                   service_cmds, stack_cmds, topics_cmds)

    # the order of `sandbox --help` (command groups, like `topics`, come after the commands)
    return [service_cmds, stack_cmds, rehearsal_cmds, docker_cmds, records_cmds, bench_cmds, doctor_cmds, monitor,
            topics_cmds, groups_cmds]


def build_app() -> typer.Typer:
    """The CLI with every command."""
    import typer

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

    for module in _modules():
        module.register(app)
    plain_help(app)
    return app


def install_topic_config_check() -> None:
    """sandbox.toml's topic configs checked by Kafka's rules when the file is read (with its line),
    not first when `up` creates the topic on a running stack."""
    import sandbox.config as config_module

    def check(key: str, value: str) -> str | None:
        # imported at the first topic config a file sets: every command pays nothing for it
        from sandbox.coordinator.model import CoordinatorError
        from sandbox.coordinator.topic_configs import validate

        try:
            validate({key: value})
        except CoordinatorError as e:
            return e.message
        return None

    config_module.topic_config_check = check


def main() -> None:
    # kio registers hypothesis strategies for its types whenever hypothesis is importable (it is,
    # wherever the test extras are installed): about 10 MB and 0.3 s in every service process that
    # never uses them. A None entry makes `import hypothesis` fail fast inside this process only.
    import sys

    from .service_cmds import dispatch

    sys.modules.setdefault("hypothesis", None)  # type: ignore[arg-type]
    install_topic_config_check()
    try:
        dispatch()   # `sandbox broker` and `sandbox coordinator` exit here, without typer
        build_app()()
    except KeyboardInterrupt:   # Ctrl-C before a command's own handling began (while importing)
        sys.exit(130)


if __name__ == "__main__":
    main()
