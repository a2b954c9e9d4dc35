"""A CI's toolbox: the tools it serves on the bus, and the tools its model may call.

Serving (`serve`): every call is checked against the policy (`base.may_call`), decoded
into the tool's typed input, run, and its output scrubbed of secrets; a refused, invalid
or failed call is an error reply with its code (403, 400, 500), never a dead CI; each
call served leaves a `ToolCalled` event on ``tekton.tools.events``.

Calling (`offered`, `answer`): the CI's model is offered its own tools and those
``[ci.<name>] tools`` grants it from other CIs (listed over NATS) and from external
MCP servers (`mcp_in`). A call of an own tool runs here; another CI's goes over NATS. The
model always gets an answer: a failure is told to it as an error result.
"""

from __future__ import annotations

import asyncio
import fnmatch
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import msgspec
import nats.errors
from nats.aio.client import Client
from nats.micro.request import Request

from tekton_common import spans
from tekton_common.catalog import CATALOG
from tekton_common.client.tools import ToolClient
from tekton_common.contract.codec import decode, encode
from tekton_common.contract.tools import (
    MAX_INPUT_BYTES,
    MAX_OUTPUT_BYTES,
    MAX_RESULT_CHARS,
    ModelToolAnswer,
    ModelToolCall,
    ToolCalled,
    ToolInvocation,
    ToolList,
    ToolListRequest,
    ToolOutcomeKind,
    ToolResult,
    ToolSpec,
)
from tekton_common.errors import ProtocolError, TektonError
from tekton_common.micro import EndpointDef
from tekton_common.secrets import failure, scrub
from tekton_common.settings import Settings
from tekton_common.subjects import TOOL_EVENTS, ci_tool_served, ci_tools, tool_caller
from tekton_common.tools.base import (
    Tool,
    ToolInputError,
    ToolRefusedError,
    UnknownToolError,
    may_call,
)

if TYPE_CHECKING:
    from tekton_common.tools.mcp_in import ExternalTools

log = logging.getLogger(__name__)
#: how long another CI's tool list is trusted before it is asked again
LIST_TTL = 30.0
#: how long a CI that did not list its tools is left before it is asked again
UNLISTED_TTL = 5.0


def _outcome(exc: BaseException) -> ToolOutcomeKind:
    if isinstance(exc, ToolRefusedError):
        return "refused"
    if isinstance(exc, ProtocolError):
        return "invalid"
    if isinstance(exc, UnknownToolError):
        return "unknown"
    return "failed"


def shown(result: ToolResult) -> str:
    """What a model reads of a result: its summary and output as JSON, within
    MAX_RESULT_CHARS (past that, the output's start as text, still valid JSON)."""
    text = msgspec.json.encode({"summary": result.summary, "output": result.output}).decode()
    if len(text) <= MAX_RESULT_CHARS:
        return text
    output = msgspec.json.encode(result.output).decode()
    summary = result.summary[:2000]
    room = MAX_RESULT_CHARS - len(summary) - 100
    while True:  # escaping may grow the cut text: shrink it until the whole fits
        cut = {"summary": summary, "output_cut": output[:room], "cut": True}
        text = msgspec.json.encode(cut).decode()
        if len(text) <= MAX_RESULT_CHARS:
            return text
        room //= 2


class Toolbox:
    """One CI's tools (`ci`: its id, ``apollo-ci``)."""

    def __init__(self, ci: str, settings: Settings) -> None:
        self.ci = ci
        self.name = ci.removesuffix("-ci")
        self.settings = settings
        self.tools: dict[str, Tool] = {}
        self.nc: Client | None = None
        self.external: ExternalTools | None = None
        #: called with the name of each tool call the model made (a usage entry)
        self.on_call: Callable[[str, str | None], None] | None = None
        self._lists: dict[str, tuple[float, list[ToolSpec]]] = {}

    def add(self, *tools: Tool) -> None:
        """Serve `tools` (each must be this CI's)."""
        for tool in tools:
            if tool.ci != self.name:
                raise ValueError(f"{tool.full_name} is not a tool of {self.ci}")
            self.tools[tool.full_name] = tool

    def specs(self) -> list[ToolSpec]:
        """The CI's own tools as listed."""
        return [tool.listed for tool in self.tools.values()]

    # -- serving -----------------------------------------------------------------------
    def endpoints(self) -> list[EndpointDef]:
        """The list endpoint and one endpoint per tool."""

        async def listing(request: Request) -> bytes:
            asked = (
                decode(request.data, ToolListRequest) if request.data.strip() else ToolListRequest()
            )
            specs = self.specs()
            allowed = [s.name for s in specs if may_call(self.settings, asked.caller, s)]
            return encode(ToolList(ci=self.ci, tools=specs, allowed=allowed))

        def handler(tool: Tool) -> Callable[[Request], Awaitable[bytes]]:
            async def call(request: Request) -> bytes:
                caller, started = tool_caller(request.subject), time.perf_counter()
                try:
                    if len(request.data) > MAX_INPUT_BYTES:
                        raise ToolInputError(f"input over {MAX_INPUT_BYTES} bytes")
                    invocation = (
                        decode(request.data, ToolInvocation)
                        if request.data.strip()
                        else ToolInvocation()
                    )
                except (ProtocolError, RecursionError) as exc:  # nested past any sense
                    said = f"{tool.full_name}: unreadable call: {failure(exc)}"
                    self._event(tool.full_name, ToolInvocation(), caller, started, "invalid", said)
                    raise ToolInputError(said) from None
                return encode(await self.serve(tool.full_name, invocation, caller))

            return call

        defs = [EndpointDef("tools", listing, subject=ci_tools(self.name))]
        for tool in self.tools.values():
            defs.append(
                EndpointDef(
                    f"tool_{tool.name}", handler(tool), subject=ci_tool_served(self.name, tool.name)
                )
            )
        return defs

    async def serve(self, name: str, invocation: ToolInvocation, caller: str) -> ToolResult:
        """Run one call of an own tool for `caller`."""
        started = time.perf_counter()
        try:
            tool = self.tools.get(name)
            if tool is None:
                raise UnknownToolError(f"{self.ci} has no tool {name!r}")
            spec = tool.listed
            if not may_call(self.settings, caller, spec):
                raise ToolRefusedError(
                    f"{caller} may not call {name}: not granted by configuration "
                    f"([ci.<name>] tools, or mcp_tools for clients)"
                )
            typed = tool.decode(invocation.input)
            output = await tool.run(typed)
            summary = scrub(tool.summary(output))
            # a tool's output never carries a secret's value, whatever its data held
            encoded = scrub(msgspec.json.encode(output).decode())
            if len(encoded) > MAX_OUTPUT_BYTES:
                raise TektonError(
                    f"{name}: output of {len(encoded):,} bytes is over {MAX_OUTPUT_BYTES:,}; "
                    "ask for less (a smaller limit, one CI, one stage)"
                )
            data = msgspec.json.decode(encoded)
        except Exception as exc:
            self._event(name, invocation, caller, started, _outcome(exc), failure(exc))
            if isinstance(exc, TektonError):
                raise
            raise TektonError(f"{name} failed: {failure(exc)}") from None
        self._event(name, invocation, caller, started, "ok", None)
        elapsed = round(time.perf_counter() - started, 6)
        return ToolResult(tool=name, output=data, summary=summary, elapsed_s=elapsed)

    def _event(
        self,
        name: str,
        invocation: ToolInvocation,
        caller: str,
        started: float,
        outcome: ToolOutcomeKind,
        error: str | None,
    ) -> None:
        if outcome != "ok":
            log.warning("%s call by %s: %s (%s)", name, caller, outcome, error)
        if self.nc is None or not self.nc.is_connected:
            return
        event = ToolCalled(
            ci=self.ci,
            tool=name,
            caller=caller,
            outcome=outcome,
            elapsed_s=round(time.perf_counter() - started, 6),
            error=error,
            run_id=invocation.run_id,
            ts=time.time(),
        )
        task = asyncio.get_running_loop().create_task(self.nc.publish(TOOL_EVENTS, encode(event)))
        task.add_done_callback(lambda t: t.cancelled() or t.exception())

    # -- calling -------------------------------------------------------------------------
    async def offered(self) -> list[ToolSpec]:
        """Every tool this CI's model may call now."""
        own = [s for s in self.specs() if may_call(self.settings, self.ci, s)]
        grants = self.settings.ci[self.name].tools if self.name in self.settings.ci else []
        owners = {grant.split("_", 1)[0] for grant in grants}  # "budget_*" → "budget"
        others = [
            spec.name
            for spec in CATALOG
            if spec.name != self.name and any(fnmatch.fnmatchcase(spec.name, o) for o in owners)
        ]
        found = await asyncio.gather(*(self._listed(ci) for ci in others))
        remote = [s for specs in found for s in specs]
        external = self.external.specs() if self.external is not None else []
        return own + remote + external

    def _client(self, nc: Client) -> ToolClient:
        """Other CIs' tools, asked as this CI."""
        return ToolClient(nc, caller=self.ci)

    async def _listed(self, name: str) -> list[ToolSpec]:
        """Another CI's tools this CI may call (none when it does not answer)."""
        cached = self._lists.get(name)
        if cached is not None and time.monotonic() - cached[0] < LIST_TTL:
            return cached[1]
        if self.nc is None:
            return []
        try:
            listing = await self._client(self.nc).listed(name)
        except (nats.errors.Error, TektonError, msgspec.DecodeError) as exc:
            listing = None
            log.info("tools of %s-ci not listed: %s", name, failure(exc))
        if listing is None:  # not running (yet): asked again soon, not at every request
            self._lists[name] = (time.monotonic() - LIST_TTL + UNLISTED_TTL, [])
            return []
        specs = [s for s in listing.tools if s.name in listing.allowed]
        self._lists[name] = (time.monotonic(), specs)
        return specs

    async def answer(self, call: ModelToolCall, run_id: str | None) -> ModelToolAnswer:
        """Run a call the model made and tell it what came back (or what went wrong)."""
        with spans.tool_call(call.name, call.id, self.ci) as current:
            if self.on_call is not None:
                self.on_call(call.name, run_id)
            try:
                result = await self._call(call, run_id)
            except Exception as exc:  # the model is told; the reply goes on
                said = failure(exc, 500)
                spans.fail(current, said)
                return ModelToolAnswer(id=call.id, name=call.name, content=said, error=True)
        return ModelToolAnswer(id=call.id, name=call.name, content=shown(result))

    async def _call(self, call: ModelToolCall, run_id: str | None) -> ToolResult:
        invocation = ToolInvocation(input=call.input, run_id=run_id)
        if call.name in self.tools:
            return await self.serve(call.name, invocation, self.ci)
        if self.external is not None and self.external.has(call.name):
            return await self.external.call(call.name, call.input)
        owner = call.name.partition("_")[0]
        known = {s.name for s in await self._listed(owner)} if owner != self.name else set()
        if call.name not in known or self.nc is None:
            raise ToolRefusedError(f"{call.name} is not a tool {self.ci} may call")
        return await self._client(self.nc).call(call.name, call.input, run_id)
