"""The `tekton` command's front door (Typer): the global options, and how a command runs.

Every command is a small function that builds its request and calls one coroutine; the
`run` helper here loads the settings once, sets up telemetry, runs the coroutine on the
event loop in a ``tekton <command>`` span, and turns errors into one clear line (exit 2
for a bad flag or value, 1 otherwise; ``--debug`` prints the traceback as well).
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any

import nats.errors
import typer

from tekton_common import bus, spans, telemetry
from tekton_common.catalog import CATALOG
from tekton_common.errors import ConfigError, ProtocolError, TektonError
from tekton_common.settings import Settings, load_settings

CI_NAMES = ", ".join(spec.name for spec in CATALOG)
#: options that take several values after one flag (`--consensus-free review threat`)
LIST_OPTIONS = ("--consensus-free", "--approve")

app = typer.Typer(
    name="tekton",
    help="Run and talk to the Tekton fleet of AI specialists (CIs). Each CI is its own "
    "process on NATS and on its fixed port. Settings come from tekton.toml, "
    "$TEKTON_HOME/.env.tekton, TEKTON_* variables and these options.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
    context_settings={"help_option_names": ["-h", "--help"]},
)


@dataclass(frozen=True)
class Globals:
    """The options given before the command."""

    home: str | None
    nats_url: str | None
    model: str | None
    debug: bool


@app.callback()
def main_options(
    ctx: typer.Context,
    home: Annotated[
        str | None, typer.Option(help="state folder (TEKTON_HOME, default .tekton)")
    ] = None,
    nats_url: Annotated[
        str | None, typer.Option(help="use this NATS server instead of the embedded one")
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            help="model for every CI `up` starts (TEKTON_MODEL): simulated, a profile "
            "(primary, premium, legacy), local (the embedded llama.cpp server and its "
            "packaged model; local:NAME picks one), claude-…, openai:…"
        ),
    ] = None,
    debug: Annotated[bool, typer.Option("--debug", help="print the traceback of an error")] = False,
) -> None:
    """Options for every command."""
    ctx.obj = Globals(home, nats_url, model, debug)


Command = Callable[[Settings], Coroutine[Any, Any, int]]


def run(ctx: typer.Context, command: Command) -> None:
    """Run one command's coroutine with the settings, and exit with its code."""
    given: Globals = ctx.obj
    name = ctx.command_path.removeprefix(f"{ctx.find_root().info_name} ") or "tekton"
    code = 1
    try:
        settings = load_settings(
            {"home": given.home, "nats_url": given.nats_url, "model": given.model}
        )
        observed = telemetry.setup("tekton-cli", settings)
        try:
            with spans.span(f"tekton {name}", {"tekton.command": name}):
                code = bus.run(command(settings))
        finally:
            observed.shutdown()
    except TektonError as exc:
        _say(f"tekton: error: {exc}", given.debug)
        # a bad flag or value (found here, before anything was sent) is a usage error
        code = 2 if isinstance(exc, ConfigError | ProtocolError) else 1
    except nats.errors.Error as exc:  # a NATS failure the command did not expect
        _say(f"tekton: error: NATS: {exc or type(exc).__name__}", given.debug)
    except KeyboardInterrupt:
        code = 130
    except BrokenPipeError:
        # the reader (say `| head`) left; exit quietly like other Unix tools
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = 0
    except Exception as exc:  # a bug: one line, the traceback with --debug
        hint = "" if given.debug else " (run again with --debug for the traceback)"
        _say(f"tekton: internal error: {type(exc).__name__}: {exc}{hint}", given.debug)
        code = 70  # EX_SOFTWARE
    raise typer.Exit(code)


def _say(line: str, debug: bool) -> None:
    if debug:
        traceback.print_exc()
    print(line, file=sys.stderr)


def spread_lists(argv: list[str]) -> list[str]:
    """`--consensus-free a b` as `--consensus-free a --consensus-free b` (the contract's
    list form; Click takes one value per flag). A list flag with no value is left as it
    is, for Click to refuse."""
    out: list[str] = []
    flag: str | None = None
    taken = 0
    for arg in argv:
        if arg == "--":
            flag = None
        elif arg in LIST_OPTIONS:
            if flag is not None and not taken:
                out.append(flag)
            flag, taken = arg, 0
            continue
        elif flag is not None and not arg.startswith("-"):
            out += [flag, arg]
            taken += 1
            continue
        if flag is not None and not taken:
            out.append(flag)
        flag = None
        out.append(arg)
    if flag is not None and not taken:
        out.append(flag)
    return out
