"""OpenAI-compatible chat completions (llama.cpp, Ollama, vLLM, LM Studio, …) through
the ``openai`` SDK.

Sends the CI's temperature, streams the reply, and asks for JSON-schema output
(``response_format``, never ``json_object`` alone) when the caller expects JSON. The
SDK retries 429 and 5xx (honouring ``retry-after``); other errors fail at once with the
CI and the cause, the key never in the message.
"""

from __future__ import annotations

import json
from typing import Any

from tekton_common.contract.tools import ModelToolCall
from tekton_common.errors import ProviderError
from tekton_common.providers.base import ModelReply, ModelRequest, OnChunk
from tekton_common.providers.grammar import narrowed
from tekton_common.providers.models import ModelConfig
from tekton_common.secrets import redact
from tekton_common.wire import Usage

#: what the SDK sends as the key to a local server that needs none
NO_KEY = "not-needed"


def request_body(
    model: str,
    request: ModelRequest,
    stream: bool,
    extra: dict[str, Any] | None = None,
    grammar: tuple[int, int] | None = None,
) -> dict[str, Any]:
    """The /chat/completions arguments for a request; for a server that holds the model
    to the schema as a grammar, the schema narrowed (`grammar.narrowed`, lists and prose
    within `grammar`'s items and characters)."""
    messages: list[dict[str, Any]] = [{"role": "system", "content": request.system}]
    messages += [{"role": t.role, "content": t.content} for t in request.messages]
    for exchange in request.exchanges:
        messages.append(
            {
                "role": "assistant",
                "content": exchange.text or None,
                "tool_calls": [
                    {
                        "id": c.id,
                        "type": "function",
                        "function": {"name": c.name, "arguments": json.dumps(c.input)},
                    }
                    for c in exchange.calls
                ],
            }
        )
        messages += [
            {"role": "tool", "tool_call_id": a.id, "content": a.content} for a in exchange.answers
        ]
    body: dict[str, Any] = {
        "model": model,
        "messages": messages,
        "max_tokens": request.max_tokens,
        "stream": stream,
    }
    if request.temperature is not None:
        body["temperature"] = request.temperature
    if request.json_schema is not None:
        body["response_format"] = {
            "type": "json_schema",
            "json_schema": {
                "name": "reply",
                "schema": narrowed(request.json_schema, *grammar)
                if grammar
                else request.json_schema,
                "strict": True,
            },
        }
    if request.tools:
        body["tools"] = [
            {
                "type": "function",
                "function": {
                    "name": t.name,
                    "description": t.description,
                    "parameters": t.input_schema,
                },
            }
            for t in request.tools
        ]
        body["tool_choice"] = "none" if request.tools_done else "auto"
    if stream:
        body["stream_options"] = {"include_usage": True}
    if extra:
        body["extra_body"] = extra
    return body


def _tool_call(index: int, call_id: str | None, name: str, arguments: str | None) -> ModelToolCall:
    """The `index`th tool call of a reply; arguments that are not a JSON object become
    ``{}`` (the tool then says which field it misses); a server that gives no id (some
    local ones) gets one made of the name and index."""
    try:
        parsed = json.loads(arguments or "{}")
    except ValueError:
        parsed = {}
    return ModelToolCall(
        id=call_id or f"{name}_{index}", name=name, input=parsed if isinstance(parsed, dict) else {}
    )


def _usage(usage: Any) -> Usage:
    if usage is None:
        return Usage()
    details = getattr(usage, "prompt_tokens_details", None)
    cached = (getattr(details, "cached_tokens", 0) or 0) if details else 0
    return Usage(
        input_tokens=max(0, (usage.prompt_tokens or 0) - cached),
        output_tokens=usage.completion_tokens or 0,
        cache_read_input_tokens=cached,
    )


class OpenAICompatProvider:
    """A model behind an OpenAI-compatible endpoint; `name` is ``local`` for the embedded
    llama.cpp server, whose requests also ask it to keep the prompt cache (`extra`)."""

    def __init__(
        self,
        model: str,
        base_url: str,
        config: ModelConfig,
        *,
        api_key: str | None = None,
        max_retries: int = 4,
        timeout: float = 120.0,
        name: str = "openai",
        extra: dict[str, Any] | None = None,
        grammar: tuple[int, int] | None = None,
    ) -> None:
        import openai  # noqa: PLC0415 - only CIs on such endpoints pay for the import

        self._sdk = openai
        self.name = name
        self.model = model
        self._extra = extra
        self._grammar = grammar
        #: the embedded server names its model "-" or by its path: replies name the spec
        self._own_name = name == "local"
        self.config = config
        self._key = api_key
        self._client = openai.AsyncOpenAI(
            api_key=api_key or NO_KEY,
            base_url=base_url.rstrip("/"),
            max_retries=max_retries,
            timeout=timeout,
        )

    def _fail(self, request: ModelRequest, exc: Exception) -> ProviderError:
        sdk = self._sdk
        if isinstance(exc, sdk.APITimeoutError):
            cause = "request timed out"
        elif isinstance(exc, sdk.APIConnectionError):
            cause = f"cannot connect ({type(exc.__cause__ or exc).__name__})"
        elif isinstance(exc, sdk.APIStatusError):
            cause = f"HTTP {exc.status_code}: {exc.message}"[:500]
        elif isinstance(exc, sdk.APIError):
            cause = f"stream error: {exc.message}"
        else:
            cause = f"unreadable reply ({type(exc).__name__}: {exc})"
        where = f"{request.ci}: {self.model} at {self._client.base_url} failed: {cause}"
        return ProviderError(redact(where, self._key))

    def _reply(
        self,
        model: str,
        text: str,
        usage: Usage,
        finish: str,
        calls: list[ModelToolCall] | None = None,
    ) -> ModelReply:
        model = self.model if self._own_name else model
        return ModelReply(
            content=text,
            model=model,
            usage=usage,
            finish_reason=finish,
            cost_usd=self.config.cost(model, usage),
            tool_calls=calls or [],
        )

    async def complete(self, request: ModelRequest) -> ModelReply:
        """One completion."""
        try:
            data = await self._client.chat.completions.create(
                **request_body(self.model, request, False, self._extra, self._grammar)
            )
            choice = data.choices[0]
            return self._reply(
                data.model or self.model,
                choice.message.content or "",
                _usage(data.usage),
                choice.finish_reason or "stop",
                [
                    _tool_call(i, c.id, c.function.name, c.function.arguments)
                    for i, c in enumerate(choice.message.tool_calls or [])
                ],
            )
        except (self._sdk.OpenAIError, IndexError, AttributeError, TypeError) as exc:
            raise self._fail(request, exc) from None

    async def stream(self, request: ModelRequest, on_chunk: OnChunk) -> ModelReply:
        """Stream deltas to `on_chunk`; tool calls, which arrive in fragments, are
        assembled by their index."""
        parts: list[str] = []
        calls: dict[int, _Fragments] = {}
        usage, finish, model = Usage(), "stop", self.model
        try:
            events = await self._client.chat.completions.create(
                **request_body(self.model, request, True, self._extra, self._grammar)
            )
            async with events:
                async for event in events:
                    model = event.model or model
                    if event.usage is not None:
                        usage = _usage(event.usage)
                    for choice in event.choices:
                        if text := choice.delta.content:
                            parts.append(text)
                            await on_chunk(text)
                        for piece in choice.delta.tool_calls or []:
                            calls.setdefault(piece.index, _Fragments()).add(piece)
                        finish = choice.finish_reason or finish
        except (self._sdk.OpenAIError, AttributeError, TypeError) as exc:
            raise self._fail(request, exc) from None
        assembled = [calls[i].call(i) for i in sorted(calls)]
        return self._reply(model, "".join(parts), usage, finish, assembled)


class _Fragments:
    """One streamed tool call: its id and name come once, its arguments in pieces."""

    def __init__(self) -> None:
        self.id = ""
        self.name = ""
        self.arguments: list[str] = []

    def add(self, piece: Any) -> None:
        self.id = piece.id or self.id
        if piece.function is not None:
            self.name = piece.function.name or self.name
            self.arguments.append(piece.function.arguments or "")

    def call(self, index: int) -> ModelToolCall:
        return _tool_call(index, self.id, self.name, "".join(self.arguments))
