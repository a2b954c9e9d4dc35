"""The fleet's tools from outside it: list every CI's, call one (what `tekton tools` and
the MCP bridge use). The caller is ``mcp`` or ``operator``; each CI decides what such a
caller may see and call (`tekton_common.tools.base.may_call`)."""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
import nats.errors
from nats.aio.client import Client

from tekton_common.catalog import CATALOG, CI_NAMES
from tekton_common.client.bus import raise_for_error
from tekton_common.contract.codec import encode
from tekton_common.contract.tools import (
    ToolInvocation,
    ToolList,
    ToolListRequest,
    ToolResult,
    ToolSpec,
)
from tekton_common.errors import NotFoundError, RequestTimeoutError, TransportError
from tekton_common.subjects import ci_tool, ci_tools


def owner_of(name: str) -> tuple[str, str]:
    """``numa_status`` → (``numa``, ``status``); NotFoundError for a name of no CI."""
    ci, _, short = name.partition("_")
    if not short or ci not in CI_NAMES:
        raise NotFoundError(f"no tool {name!r}: a tool is named <ci>_<tool>, e.g. numa_status")
    return ci, short


class ToolClient:
    """Lists and calls tools as `caller`."""

    def __init__(self, nc: Client, caller: str = "operator", timeout: float = 30.0) -> None:
        self.nc = nc
        self.caller = caller
        self.timeout = timeout

    async def listed(self, ci: str, wait: float = 2.0) -> ToolList | None:
        """One CI's tools (None when it is not running or does not answer in `wait`)."""
        payload = encode(ToolListRequest(caller=self.caller))
        try:
            msg = await self.nc.request(ci_tools(ci), payload, timeout=wait)
        except (nats.errors.NoRespondersError, nats.errors.TimeoutError):
            return None
        raise_for_error(msg, f"{ci}-ci")
        listing: ToolList = msgspec.json.decode(msg.data, type=ToolList)
        return listing

    async def every(self, allowed_only: bool = True) -> list[ToolSpec]:
        """Every running CI's tools (those this caller may call, unless asked for all)."""
        found = await asyncio.gather(*(self.listed(spec.name) for spec in CATALOG))
        return [
            tool
            for listing in found
            if listing is not None
            for tool in listing.tools
            if not allowed_only or tool.name in listing.allowed
        ]

    async def call(
        self, name: str, arguments: dict[str, Any], run_id: str | None = None
    ) -> ToolResult:
        """Call one tool; RemoteError with the CI's code (403 refused, 400 bad input)."""
        ci, short = owner_of(name)
        invocation = ToolInvocation(input=arguments, run_id=run_id)
        try:
            msg = await self.nc.request(
                ci_tool(ci, short, self.caller), encode(invocation), timeout=self.timeout
            )
        except nats.errors.NoRespondersError:
            raise TransportError(f"{ci}-ci is not running, or has no tool {name}") from None
        except nats.errors.TimeoutError:
            raise RequestTimeoutError(
                f"{ci}-ci did not answer {name} within {self.timeout}s"
            ) from None
        raise_for_error(msg, f"{ci}-ci")
        result: ToolResult = msgspec.json.decode(msg.data, type=ToolResult)
        return result
