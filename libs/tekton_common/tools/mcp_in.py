"""External MCP servers' tools for one CI (``[ci.<name>.mcp.<server>]`` in tekton.toml).

Each server is a command the CI starts (stdio) or a URL (streamable HTTP); the CI keeps
one session per server open while it runs, and offers its model the server's tools that
the ``tools`` allow-list names, as ``mcp_<server>_<tool>``. A command starts with the
SDK's minimal environment plus the variables its ``env`` names (``NAME = "SECRET"``
passes the secret SECRET as NAME), so none of the CI's own secrets reach it. A server
that cannot be started or reached offers no tools and is logged, and is tried again
(after 1 s, doubling to a minute); the CI goes on.
"""

from __future__ import annotations

import asyncio
import fnmatch
import json
import logging
import re
import time
from typing import Any

from tekton_common.contract.tools import ToolResult, ToolSpec
from tekton_common.errors import TektonError
from tekton_common.secrets import failure, read_secret, redact, scrub
from tekton_common.settings import McpServer

log = logging.getLogger(__name__)


def external_name(server: str, tool: str) -> str:
    """``mcp_<server>_<tool>``, in the letters model APIs allow, at most 64 of them."""
    return re.sub(r"[^a-z0-9_]", "_", f"mcp_{server}_{tool}".lower())[:64]


class ExternalTools:
    """The sessions with one CI's external MCP servers, and their allowed tools."""

    def __init__(self, ci: str, servers: dict[str, McpServer]) -> None:
        self.ci = ci
        self.servers = servers
        self.sessions: dict[str, Any] = {}
        self.tools: dict[str, tuple[str, str, ToolSpec]] = {}
        #: the secrets' values each server was given (scrubbed from what it returns)
        self.given: dict[str, list[str]] = {}

    def specs(self) -> list[ToolSpec]:
        """The allowed tools of every server that is connected."""
        return [spec for _, _, spec in self.tools.values()]

    def has(self, name: str) -> bool:
        """Whether `name` is an allowed external tool."""
        return name in self.tools

    async def run(self) -> None:
        """Keep a session with every server until cancelled (the CI stops): one that
        ends or fails is opened again, after a wait that doubles up to a minute."""
        await asyncio.gather(*(self._kept(n, s) for n, s in self.servers.items()))

    async def _kept(self, name: str, server: McpServer) -> None:
        wait = 1.0
        while True:
            opened = time.monotonic()
            await self._session(name, server)
            if time.monotonic() - opened > 60.0:  # it served a while: the next try is soon
                wait = 1.0
            await asyncio.sleep(wait)
            wait = min(wait * 2, 60.0)

    async def _session(self, name: str, server: McpServer) -> None:
        from mcp import Client  # noqa: PLC0415 - only CIs with external servers pay for it

        # the secrets it is given, read once a session: its environment, and what is
        # scrubbed from every answer of it
        env = {key: value for key, secret in server.env.items() if (value := read_secret(secret))}
        self.given[name] = list(env.values())
        try:
            async with Client(self._transport(server, env)) as client:
                listed = await client.list_tools()
                allowed = [
                    t
                    for t in listed.tools
                    if any(fnmatch.fnmatchcase(t.name, p) for p in server.tools)
                ]
                for tool in allowed:
                    self._offer(name, tool)
                self.sessions[name] = client
                offered = sum(1 for owner, _, _ in self.tools.values() if owner == name)
                log.info("%s: MCP server %s offers %d tools", self.ci, name, offered)
                await asyncio.Event().wait()  # held open until the CI stops
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a server that fails offers nothing; the CI goes on
            log.error("%s: MCP server %s unavailable: %s", self.ci, name, failure(exc))
        finally:
            self.sessions.pop(name, None)
            for full in [k for k, v in self.tools.items() if v[0] == name]:
                del self.tools[full]

    def _offer(self, server: str, tool: Any) -> None:
        """One allowed tool of a server, as its CI's model sees it (left out, and
        logged, when its name is taken or its input schema is not an object)."""
        full = external_name(server, tool.name)
        if full in self.tools or not isinstance(tool.input_schema, dict):
            log.error(
                "%s: MCP server %s: tool %s left out (its name is taken as %s, or its input "
                "schema is not an object)",
                self.ci,
                server,
                tool.name,
                full,
            )
            return
        spec = ToolSpec(
            name=full,
            ci=self.ci,
            description=f"(MCP server {server}) {tool.description or tool.name}",
            input_schema=dict(tool.input_schema),
        )
        self.tools[full] = (server, tool.name, spec)

    @staticmethod
    def _transport(server: McpServer, env: dict[str, str]) -> Any:
        if server.url:
            return server.url
        from mcp import StdioServerParameters  # noqa: PLC0415

        return StdioServerParameters(command=server.command[0], args=server.command[1:], env=env)

    async def call(self, name: str, arguments: dict[str, Any]) -> ToolResult:
        """Call an allowed external tool; TektonError with the server's message on error."""
        server, tool, _ = self.tools[name]
        client = self.sessions.get(server)
        if client is None:
            raise TektonError(f"MCP server {server} is not connected")
        result = await asyncio.wait_for(client.call_tool(tool, arguments), 60)
        text = self._clean(
            server, " ".join(c.text for c in result.content if getattr(c, "type", "") == "text")
        )
        if result.is_error:
            raise TektonError(f"{name}: {text[:500]}")
        output: Any = text
        if result.structured_content is not None:
            output = json.loads(self._clean(server, json.dumps(result.structured_content)))
        return ToolResult(tool=name, output=output, summary=text[:300])

    def _clean(self, server: str, text: str) -> str:
        """`text` without Tekton's secrets or those the server was given (its `env`);
        a value in JSON text is escaped there as it is here."""
        given = self.given.get(server, [])
        escaped = [json.dumps(v)[1:-1] for v in given]
        return redact(scrub(text), *given, *escaped)
