"""`tekton tools` (list and call the CIs' tools) and `tekton mcp` (the same tools for MCP
clients)."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer

from tekton_cli import output
from tekton_cli.app import run
from tekton_common import bus
from tekton_common.catalog import CIId
from tekton_common.client.tools import ToolClient
from tekton_common.errors import ConfigError, RemoteError
from tekton_common.secrets import read_secret
from tekton_common.settings import Settings

commands = typer.Typer()
tools = typer.Typer(help="The CIs' tools over their components' data (docs/tools.md).")
commands.add_typer(tools, name="tools")
Json = Annotated[bool, typer.Option("--json", help="print the result as JSON")]


@tools.command("ls")
def list_tools(
    ctx: typer.Context,
    ci: Annotated[str | None, typer.Argument(help="only this CI's tools")] = None,
    every: Annotated[
        bool, typer.Option("--all", help="also tools a client may not call (marked)")
    ] = False,
    as_json: Json = False,
) -> None:
    """The running CIs' tools, with what each takes."""

    async def go(settings: Settings) -> int:
        nc = await bus.connect(settings, "tekton-cli")
        try:
            client = ToolClient(nc)
            if ci:
                listing = await client.listed(CIId.from_str(ci).name)
                found = listing.tools if listing else []
                allowed = set(listing.allowed) if listing else set()
            else:
                found = await client.every(allowed_only=False)
                allowed = {t.name for t in await client.every()}
        finally:
            await bus.close(nc)
        shown = [t for t in found if every or t.name in allowed]
        if as_json:
            output.print_json(shown)
        else:
            rows = [
                (
                    t.name + ("" if t.name in allowed else " (not for clients)"),
                    ", ".join(t.input_schema.get("properties", {})) or "-",
                    t.description[:90],
                )
                for t in shown
            ]
            print(output.table(["TOOL", "INPUT", "WHAT"], rows) if rows else "no tools answered")
        return 0 if shown else 1

    run(ctx, go)


@tools.command("call")
def call_tool(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="the tool, <ci>_<tool> (e.g. budget_usage)")],
    arguments: Annotated[
        str, typer.Option("--input", help="the tool's input as a JSON object")
    ] = "{}",
    as_json: Json = False,
) -> None:
    """Call one tool as the operator and print its result."""

    async def go(settings: Settings) -> int:
        try:
            given: Any = json.loads(arguments)
        except ValueError as exc:
            raise ConfigError(f"--input is not JSON: {exc}") from None
        nc = await bus.connect(settings, "tekton-cli")
        try:
            result = await ToolClient(nc).call(name, given if isinstance(given, dict) else {})
        except RemoteError as exc:
            print(f"tekton tools call: {exc}", file=sys.stderr)
            return 1
        finally:
            await bus.close(nc)
        if as_json:
            output.print_json(result)
        else:
            print(result.summary)
        return 0

    run(ctx, go)


@commands.command("mcp")
def mcp(
    ctx: typer.Context,
    stdio: Annotated[
        bool,
        typer.Option("--stdio", help="serve MCP on standard input and output (for a client)"),
    ] = False,
) -> None:
    """The CIs' tools for MCP clients: with --stdio, an MCP server on standard input and
    output (what Claude Desktop or Claude Code launch); without, where the streamable
    HTTP server is and how to configure a client."""

    async def go(settings: Settings) -> int:
        if stdio:
            from tekton_common.client.mcp_bridge import serve_stdio  # noqa: PLC0415

            nc = await bus.connect(settings, "tekton-mcp")
            try:
                await serve_stdio(nc)
            finally:
                await bus.close(nc)
            return 0
        url = f"http://{settings.host}:{settings.mcp_port}/mcp"
        token = "with the API's bearer token" if read_secret("TEKTON_API_TOKEN") else "no token"
        print(f"streamable HTTP: {url} ({token}; served by the API process, `tekton up`)")
        server = {
            "command": sys.executable,
            "args": ["-m", "tekton_cli.main", "mcp", "--stdio"],
            "env": {"TEKTON_HOME": str(settings.home_path)},
        }
        stanza = {"mcpServers": {"tekton": server}}
        print("stdio, for a client's configuration:")
        print(json.dumps(stanza, indent=2))
        return 0

    run(ctx, go)
