"""Entry point of the `tekton` command: the Typer app with every command."""

from __future__ import annotations

import sys
from collections.abc import Sequence

import click

from tekton_cli import cli_fleet, cli_runs, cli_tools
from tekton_cli.app import app, spread_lists

app.add_typer(cli_fleet.commands)
app.add_typer(cli_runs.commands)
app.add_typer(cli_tools.commands)


def main(argv: Sequence[str] | None = None) -> int:
    """`tekton …`; returns the exit code (2 for a usage error)."""
    args = spread_lists(list(sys.argv[1:] if argv is None else argv))
    try:
        code = app(args=args, prog_name="tekton", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Abort:
        return 130
    return int(code or 0)


if __name__ == "__main__":
    sys.exit(main())
