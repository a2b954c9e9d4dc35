"""The provider interface every CI calls its model through."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

import msgspec

from tekton_common.contract.schemas import JsonObject, JsonSchema
from tekton_common.contract.tools import ModelToolCall, ToolExchange, ToolSpec
from tekton_common.wire import Turn, Usage


class ModelRequest(msgspec.Struct, frozen=True):
    """What a CI asks of its model."""

    ci: str
    role: str
    capability: str
    system: str
    messages: list[Turn]
    max_tokens: int
    temperature: float | None = None
    #: JSON Schema the reply must follow (structured output), or None for free text
    json_schema: JsonSchema | None = None
    #: how many leading messages form a transcript prefix shared with other callers
    #: (a debate's transcript), worth a prompt-cache breakpoint
    cache_prefix: int = 0
    run_id: str | None = None
    #: what the caller says about the call's purpose (debate role, round)
    hints: JsonObject = {}
    #: tools the model may call, the tool rounds of this reply so far, and whether the
    #: model must now answer without calling more (its last round)
    tools: list[ToolSpec] = []
    exchanges: list[ToolExchange] = []
    tools_done: bool = False


class ModelReply(msgspec.Struct, frozen=True):
    """What the model answered."""

    content: str
    model: str
    usage: Usage
    finish_reason: str = "end_turn"
    cost_usd: float = 0.0
    #: tools the model asks to call before it answers (empty: this is the answer)
    tool_calls: list[ModelToolCall] = []


OnChunk = Callable[[str], Awaitable[None]]


class Provider(Protocol):
    """A model backend. `model` names what replies will report in their `model` field."""

    name: str
    model: str

    async def complete(self, request: ModelRequest) -> ModelReply:
        """Answer in one piece."""
        ...

    async def stream(self, request: ModelRequest, on_chunk: OnChunk) -> ModelReply:
        """Answer piece by piece through `on_chunk`, then return the whole reply."""
        ...
