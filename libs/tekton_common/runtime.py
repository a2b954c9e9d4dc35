"""One CI's request handling, shared by the socket protocol and the NATS endpoints."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from opentelemetry.trace import Span

from tekton_common import __version__, spans
from tekton_common.budget import BudgetGuard
from tekton_common.catalog import CISpec
from tekton_common.contract.tools import ToolExchange
from tekton_common.metrics import Metrics
from tekton_common.providers import ModelReply, ModelRequest, OnChunk, Provider
from tekton_common.settings import Settings
from tekton_common.tools.box import Toolbox
from tekton_common.usage import UsageRecord
from tekton_common.wire import (
    ChatRequest,
    HealthResponse,
    InfoResponse,
    Pong,
    Response,
    StreamChunk,
    StreamEnd,
    StreamError,
    StreamStart,
    Turn,
    Usage,
    add_tokens,
)

Emit = Callable[[msgspec.Struct], Awaitable[None]]
#: providers kept for per-request model overrides (the oldest is let go past this)
MAX_OVERRIDES = 8


class CIRuntime:
    """A CI's identity, model settings and provider, and the replies it gives."""

    def __init__(self, spec: CISpec, settings: Settings, provider: Provider) -> None:
        override = settings.ci_override(spec)
        self.spec = spec
        self.settings = settings
        self.provider = provider
        self.ai_id = str(spec.ci_id)
        self.prompt = override.prompt or spec.prompt
        self.temperature = (
            override.temperature if override.temperature is not None else (spec.temperature)
        )
        self.max_tokens = override.max_tokens or spec.max_tokens
        self.metrics = Metrics(self.ai_id)
        self.guard = BudgetGuard(self.ai_id)
        self.toolbox = Toolbox(self.ai_id, settings)
        self.toolbox.on_call = self._tool_used
        self._overrides: dict[str, Provider] = {}
        #: called with each model call's usage record (the service publishes it)
        self.on_usage: Callable[[UsageRecord], None] | None = None
        self.started_at = time.time()
        self.last_activity = self.started_at
        self.ready = False

    @property
    def model(self) -> str:
        """The model replies report (``simulated`` when offline)."""
        return self.provider.model

    @property
    def ci_port(self) -> int:
        """This CI's socket port under the current settings."""
        return self.spec.ci_port(self.settings.ci_port_base)

    @property
    def component_port(self) -> int:
        """This CI's HTTP health port under the current settings."""
        return self.spec.component_port(self.settings.port_base)

    def _model_request(self, request: ChatRequest) -> ModelRequest:
        return ModelRequest(
            ci=self.ai_id,
            role=self.spec.role,
            capability=self.spec.capability,
            system=self.prompt,
            messages=[*request.history, Turn(role="user", content=request.text)],
            # what a request asks for, within the CI's own limit
            max_tokens=min(request.max_tokens or self.max_tokens, self.max_tokens),
            temperature=request.temperature
            if request.temperature is not None
            else (self.temperature),
            json_schema=request.json_schema,
            cache_prefix=request.cache_prefix,
            run_id=request.run_id,
            hints=request.context if isinstance(request.context, dict) else {},
        )

    def _provider(self, request: ChatRequest) -> Provider:
        """The CI's provider, or the one a request's model override asks for."""
        if not request.model or request.model == self.provider.model:
            return self.provider
        if request.model not in self._overrides:
            from tekton_common.providers.select import build_provider  # noqa: PLC0415

            chosen = self.settings.models.profile(request.model)
            if len(self._overrides) >= MAX_OVERRIDES:  # requests cannot grow it without bound
                self._overrides.pop(next(iter(self._overrides)))
            self._overrides[request.model] = build_provider(chosen, self.settings)
        return self._overrides[request.model]

    async def chat(self, request: ChatRequest) -> Response:
        """Answer a chat request in one reply."""
        started = time.perf_counter()
        with spans.agent(self.ai_id, request.run_id):
            self.guard.check(request.run_id)
            provider = self._provider(request)
            asked = await self._with_tools(request, self._model_request(request))
            reply = await self._complete(provider, asked)
        return Response(
            ai_id=self.ai_id,
            content=reply.content,
            model=reply.model,
            usage=reply.usage,
            latency=round(time.perf_counter() - started, 6),
            request_id=request.request_id,
            cost_usd=round(reply.cost_usd, 8),
        )

    async def stream(self, request: ChatRequest, emit: Emit) -> None:
        """Answer as stream_start, stream_chunk…, stream_end (or stream_error)."""
        started = time.perf_counter()
        rid = request.request_id
        await emit(StreamStart(ai_id=self.ai_id, model=self.model, request_id=rid))
        index = 0

        async def on_chunk(text: str) -> None:
            nonlocal index
            await emit(StreamChunk(content=text, chunk_index=index, request_id=rid))
            index += 1

        with spans.agent(self.ai_id, request.run_id):
            try:
                self.guard.check(request.run_id)
                provider = self._provider(request)
                asked = await self._with_tools(request, self._model_request(request))
                reply = await self._complete(provider, asked, on_chunk)
            except Exception as exc:  # the stream must end with a message, whatever failed
                error = f"{type(exc).__name__}: {exc}"
                await emit(StreamError(ai_id=self.ai_id, error=error, request_id=rid))
                raise
        await emit(
            StreamEnd(
                ai_id=self.ai_id,
                model=reply.model,
                usage=reply.usage,
                latency=round(time.perf_counter() - started, 6),
                chunks=index,
                request_id=rid,
            )
        )

    async def _with_tools(self, request: ChatRequest, asked: ModelRequest) -> ModelRequest:
        """A free-text request offers the model its tools (a structured reply, such as a
        debate position, is answered from the prompt alone)."""
        if request.json_schema is not None or self.settings.tool_rounds == 0:
            return asked
        tools = await self.toolbox.offered()
        return msgspec.structs.replace(asked, tools=tools) if tools else asked

    async def _complete(
        self, provider: Provider, asked: ModelRequest, on_chunk: OnChunk | None = None
    ) -> ModelReply:
        """One reply, through as many tool rounds as the model asks for (at most
        ``tool_rounds``; the last call must answer); usage summed over the calls. With
        `on_chunk`, every round streams (what the model says before it calls a tool
        too, a blank line after it)."""
        used, cost = Usage(), 0.0
        while True:
            with self._model_span(provider, asked) as current:
                if on_chunk is None:
                    reply = await provider.complete(asked)
                else:
                    reply = await provider.stream(asked, on_chunk)
                    if reply.tool_calls and reply.content:
                        await on_chunk("\n\n")
                self._account(reply, asked.run_id, provider.name, current)
            add_tokens(used, reply.usage)
            cost += reply.cost_usd
            if not reply.tool_calls or not asked.tools or asked.tools_done:
                break
            answers = await asyncio.gather(
                *(self.toolbox.answer(call, asked.run_id) for call in reply.tool_calls)
            )
            exchange = ToolExchange(text=reply.content, calls=reply.tool_calls, answers=answers)
            exchanges = [*asked.exchanges, exchange]
            asked = msgspec.structs.replace(
                asked,
                exchanges=exchanges,
                tools_done=len(exchanges) >= self.settings.tool_rounds,
            )
        return msgspec.structs.replace(reply, usage=used, cost_usd=cost, tool_calls=[])

    def _tool_used(self, tool: str, run_id: str | None) -> None:
        """A tool call the model made, as a usage entry (no tokens)."""
        if self.on_usage is not None:
            self.on_usage(
                UsageRecord(
                    ci=self.ai_id,
                    model=self.model,
                    provider="tool",
                    usage=Usage(),
                    cost_usd=0.0,
                    run_id=run_id,
                    tool=tool,
                )
            )

    def _model_span(self, provider: Provider, asked: ModelRequest) -> Any:
        return spans.model_call(
            provider.name,
            provider.model,
            asked.run_id,
            asked.temperature,
            asked.max_tokens,
            asked.messages[-1].content,
        )

    def _account(self, reply: ModelReply, run_id: str | None, provider: str, current: Span) -> None:
        spans.record_reply(
            current, reply.model, reply.usage, reply.finish_reason, reply.cost_usd, reply.content
        )
        self.last_activity = time.time()
        self.metrics.add_usage(reply.model, reply.usage, reply.cost_usd)
        if self.on_usage is not None:
            self.on_usage(
                UsageRecord(
                    ci=self.ai_id,
                    model=reply.model,
                    provider=provider,
                    usage=reply.usage,
                    cost_usd=reply.cost_usd,
                    run_id=run_id,
                )
            )

    def pong(self) -> Pong:
        """Reply to ping."""
        return Pong(ai_id=self.ai_id, timestamp=time.time())

    def health(self) -> HealthResponse:
        """Reply to health."""
        return HealthResponse(
            status="healthy" if self.ready else "starting",
            component=self.spec.component,
            model=self.model,
            ai_id=self.ai_id,
        )

    def info(self) -> InfoResponse:
        """Reply to info."""
        return InfoResponse(
            ai_id=self.ai_id,
            component=self.spec.component,
            description=self.spec.description,
            role=self.spec.role,
            model_provider=self.provider.name,
            model_name=self.model,
            port=self.ci_port,
            component_port=self.component_port,
            version=__version__,
        )
