"""`python -m sandbox` runs the CLI. The background supervisor (`sandbox supervise`, started by
`sandbox up`) skips the command-line layer: it is a long-lived process and typer/click/rich
would only add to its memory. The service commands skip it too (see sandbox.cli.service_cmds)."""

import sys

if len(sys.argv) > 1 and sys.argv[1] == "supervise":
    sys.modules.setdefault("hypothesis", None)  # type: ignore[arg-type]  (see sandbox.cli.app.main)
    from sandbox.runner.stack import supervise_cli

    sys.exit(supervise_cli(sys.argv[2:]))

from sandbox.cli.app import main  # noqa: E402  (it runs `broker` and `coordinator` without typer)

main()
