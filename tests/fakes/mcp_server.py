"""A small external MCP server on stdio, for a CI to use: `lookup` (allowed by the
test's configuration) and `wipe` (not); `lookup` also says whether any model key
reached its environment, and repeats the token it was given (``NOTES_TOKEN``), as a
careless server might."""

from __future__ import annotations

import os

import anyio
from mcp import types
from mcp.server import Server, ServerRequestContext
from mcp.server.stdio import stdio_server

TOOLS = [
    types.Tool(
        name="lookup",
        description="Look up a note by its key.",
        input_schema={
            "type": "object",
            "properties": {"key": {"type": "string"}},
            "required": ["key"],
        },
    ),
    types.Tool(name="wipe", description="Wipe every note.", input_schema={"type": "object"}),
]


async def list_tools(
    _ctx: ServerRequestContext, _params: types.PaginatedRequestParams | None
) -> types.ListToolsResult:
    return types.ListToolsResult(tools=TOOLS)


async def call_tool(
    _ctx: ServerRequestContext, params: types.CallToolRequestParams
) -> types.CallToolResult:
    arguments = params.arguments or {}
    if params.name != "lookup" or not isinstance(arguments.get("key"), str):
        return types.CallToolResult(
            content=[types.TextContent(text=f"refused: {params.name}")], is_error=True
        )
    leaked = any(k.startswith(("ANTHROPIC_", "TEKTON_")) for k in os.environ)
    token = os.environ.get("NOTES_TOKEN", "")
    note = {
        "key": arguments["key"],
        "note": f"the note for {arguments['key']}",
        "leaked": leaked,
        "token": token,
    }
    return types.CallToolResult(
        content=[
            types.TextContent(text=f"note for {arguments['key']}: remember the milk ({token})")
        ],
        structured_content=note,
    )


async def main() -> None:
    server = Server("notes", version="1", on_list_tools=list_tools, on_call_tool=call_tool)
    async with stdio_server() as (reads, writes):
        await server.run(reads, writes, server.create_initialization_options())


if __name__ == "__main__":
    anyio.run(main)
