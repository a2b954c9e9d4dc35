"""The fleet's tools for MCP clients (Claude Desktop, Claude Code, IDEs), through the
`mcp` SDK's low-level server: every running CI's tools that an MCP client may see,
listed live over NATS, each call a request to the CI that owns the tool.

- `serve_stdio`: the server on standard input and output (what a desktop client
  launches: ``tekton mcp --stdio``). Nothing else may write to standard output.
- `http_app`: the same server over MCP's streamable HTTP transport at ``/mcp``
  (stateless, JSON replies), behind the API's bearer tokens when any is set
  (``TEKTON_API_TOKEN``, ``TEKTON_API_TOKENS``); the API process serves it on
  ``TEKTON_MCP_PORT``.

A call's result is the tool's one-line summary and its typed output as JSON text, plus
the output as structured content; a refused, invalid or failed call is an error
result saying why (the client's model reads it), never a broken session.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import msgspec
from nats.aio.client import Client

from tekton_common import __version__
from tekton_common.client.tools import ToolClient
from tekton_common.errors import TektonError
from tekton_common.secrets import bearer, failure

NAME = "tekton"
PATH = "/mcp"


def build_server(nc: Client) -> Any:
    """The MCP server over the fleet's tools (caller ``mcp``)."""
    from mcp import types  # noqa: PLC0415 - only a process that serves MCP pays for it
    from mcp.server import Server, ServerRequestContext  # noqa: PLC0415

    tools = ToolClient(nc, caller="mcp")

    async def list_tools(
        _ctx: ServerRequestContext, _params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        listed = await tools.every()
        return types.ListToolsResult(
            tools=[
                types.Tool(
                    name=t.name,
                    description=t.description,
                    input_schema=t.input_schema,
                    annotations=types.ToolAnnotations(
                        read_only_hint=not t.sensitive, open_world_hint=False
                    ),
                )
                for t in listed
            ]
        )

    async def call_tool(
        _ctx: ServerRequestContext, params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        try:
            result = await tools.call(params.name, dict(params.arguments or {}))
        except Exception as exc:  # a client's session outlives any one call
            said = str(exc) if isinstance(exc, TektonError) else failure(exc)
            return types.CallToolResult(content=[types.TextContent(text=said)], is_error=True)
        output = msgspec.json.encode(result.output).decode()
        structured = result.output if isinstance(result.output, dict) else {"output": result.output}
        return types.CallToolResult(
            content=[types.TextContent(text=f"{result.summary}\n\n{output}")],
            structured_content=structured,
        )

    return Server(NAME, version=__version__, on_list_tools=list_tools, on_call_tool=call_tool)


async def serve_stdio(nc: Client) -> None:
    """Serve MCP on standard input and output until the client closes them."""
    from mcp.server.stdio import stdio_server  # noqa: PLC0415

    server = build_server(nc)
    async with stdio_server() as (reads, writes):
        await server.run(reads, writes, server.create_initialization_options())


class _Bearer:
    """401 for a request without ``Authorization: Bearer <token>`` of one of `tokens`."""

    def __init__(self, app: Any, tokens: dict[str, str | None]) -> None:
        self.app = app
        self.tokens = tokens

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            given = dict(scope["headers"]).get(b"authorization", b"")
            if not bearer(given, self.tokens)[0]:
                from starlette.responses import JSONResponse  # noqa: PLC0415

                denied = JSONResponse(
                    {"detail": "this MCP server needs one of the API's bearer tokens"},
                    status_code=401,
                    headers={"WWW-Authenticate": "Bearer"},
                )
                await denied(scope, receive, send)
                return
        await self.app(scope, receive, send)


class _Later:
    """The session manager's ASGI app, made once the lifespan has a NATS connection."""

    def __init__(self) -> None:
        self.app: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)


def http_app(
    connect: Callable[[], Awaitable[Client]],
    close: Callable[[Client], Awaitable[None]],
    tokens: dict[str, str | None],
    host: str,
) -> Any:
    """The streamable HTTP transport at ``/mcp`` as an ASGI app; its lifespan connects
    to NATS (`connect`) and runs the session manager."""
    from mcp.server.streamable_http_manager import (  # noqa: PLC0415
        StreamableHTTPASGIApp,
        StreamableHTTPSessionManager,
    )
    from mcp.server.transport_security import TransportSecuritySettings  # noqa: PLC0415
    from starlette.applications import Starlette  # noqa: PLC0415
    from starlette.middleware import Middleware  # noqa: PLC0415
    from starlette.routing import Route  # noqa: PLC0415

    hosts = sorted({host, "127.0.0.1", "localhost"})
    endpoint = _Later()

    @contextlib.asynccontextmanager
    async def lifespan(_app: Any) -> AsyncIterator[None]:
        nc = await connect()
        manager = StreamableHTTPSessionManager(
            app=build_server(nc),
            json_response=True,
            stateless=True,
            # a page in a browser cannot reach it through a name it rebinds to loopback
            security_settings=TransportSecuritySettings(
                enable_dns_rebinding_protection=True,
                allowed_hosts=[f"{h}:*" for h in hosts],
                allowed_origins=[f"http://{h}:*" for h in hosts],
            ),
        )
        endpoint.app = StreamableHTTPASGIApp(manager)
        try:
            async with manager.run():
                yield
        finally:
            await close(nc)

    middleware = [Middleware(_Bearer, tokens=tokens)] if tokens else []
    return Starlette(
        routes=[Route(PATH, endpoint=endpoint)], middleware=middleware, lifespan=lifespan
    )
