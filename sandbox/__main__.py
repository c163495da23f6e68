"""`python -m sandbox` runs the CLI."""

from sandbox.cli.app import main

main()
