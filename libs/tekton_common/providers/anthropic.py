"""Anthropic's Messages API through the official SDK (`AsyncAnthropic`).

The SDK retries 408, 409, 429 and 5xx (529 overloaded included) with backoff and
honours ``retry-after``; it never retries 400, 401, 403, 404 or 413. A stream that has
already delivered text is not retried (its text is on its way to the caller); one that
fails before its first chunk is.
"""

from __future__ import annotations

from typing import Any

from tekton_common.contract.tools import ModelToolCall
from tekton_common.errors import NotReadyError, ProviderError
from tekton_common.providers.base import ModelReply, ModelRequest, OnChunk
from tekton_common.providers.models import EFFORT, ModelConfig
from tekton_common.secrets import redact
from tekton_common.wire import Usage

EPHEMERAL = {"type": "ephemeral"}


def request_params(model: str, request: ModelRequest) -> dict[str, Any]:
    """The Messages API parameters for a request (also what tests assert on)."""
    messages: list[dict[str, Any]] = [
        {"role": t.role, "content": t.content} for t in request.messages
    ]
    if 0 < request.cache_prefix < len(messages):
        # breakpoint after the shared transcript: the next caller with the same
        # prefix (another debater) reads it from the cache
        last = messages[request.cache_prefix - 1]
        last["content"] = [{"type": "text", "text": last["content"], "cache_control": EPHEMERAL}]
    for exchange in request.exchanges:
        said: list[dict[str, Any]] = (
            [{"type": "text", "text": exchange.text}] if exchange.text else []
        )
        said += [
            {"type": "tool_use", "id": c.id, "name": c.name, "input": c.input}
            for c in exchange.calls
        ]
        messages.append({"role": "assistant", "content": said})
        answers = [
            {"type": "tool_result", "tool_use_id": a.id, "content": a.content, "is_error": a.error}
            for a in exchange.answers
        ]
        messages.append({"role": "user", "content": answers})
    output_config: dict[str, Any] = {"effort": EFFORT.get(request.capability, "medium")}
    if request.json_schema is not None:
        output_config["format"] = {"type": "json_schema", "schema": request.json_schema}
    params: dict[str, Any] = {
        "model": model,
        "max_tokens": request.max_tokens,
        "system": [{"type": "text", "text": request.system, "cache_control": EPHEMERAL}],
        "messages": messages,
        "output_config": output_config,
    }
    if request.tools:
        params["tools"] = [
            {"name": t.name, "description": t.description, "input_schema": t.input_schema}
            for t in request.tools
        ]
        params["tool_choice"] = {"type": "none" if request.tools_done else "auto"}
    return params


class AnthropicProvider:
    """Claude models; the key comes from the environment or a secret file only."""

    name = "anthropic"

    def __init__(
        self,
        model: str,
        api_key: str | None,
        config: ModelConfig,
        *,
        base_url: str | None = None,
        max_retries: int = 4,
        timeout: float = 120.0,
    ) -> None:
        self.model = model
        self.config = config
        self._key = api_key
        self._client: Any = None
        if api_key:
            import anthropic  # noqa: PLC0415 - only CIs that use Claude pay for the SDK

            self._sdk = anthropic
            self._client = anthropic.AsyncAnthropic(
                api_key=api_key, base_url=base_url, max_retries=max_retries, timeout=timeout
            )

    def _check(self, request: ModelRequest) -> None:
        if self._client is None:
            raise NotReadyError(
                f"{request.ci}: model {self.model} needs ANTHROPIC_API_KEY "
                "(environment or ANTHROPIC_API_KEY_FILE); none is set"
            )

    def _error(self, request: ModelRequest, exc: Exception) -> ProviderError:
        sdk = self._sdk
        if isinstance(exc, sdk.APIStatusError):
            body = exc.body if isinstance(exc.body, dict) else {}
            detail = body.get("error", {}) if isinstance(body.get("error"), dict) else {}
            cause = f"HTTP {exc.status_code} {detail.get('type', '')} {detail.get('message', '')}"
        elif isinstance(exc, sdk.APITimeoutError):
            cause = "request timed out"
        elif isinstance(exc, sdk.APIConnectionError):
            cause = "cannot connect to the Anthropic API"
        else:
            cause = f"{type(exc).__name__}: {exc}"
        message = redact(f"{request.ci}: Anthropic {self.model} failed: {cause.strip()}", self._key)
        return ProviderError(message)

    def _reply(self, request: ModelRequest, message: Any) -> ModelReply:
        usage = Usage(
            input_tokens=message.usage.input_tokens,
            output_tokens=message.usage.output_tokens,
            cache_creation_input_tokens=message.usage.cache_creation_input_tokens or 0,
            cache_read_input_tokens=message.usage.cache_read_input_tokens or 0,
        )
        text = "".join(b.text for b in message.content if getattr(b, "type", "") == "text")
        calls = [
            ModelToolCall(id=b.id, name=b.name, input=b.input if isinstance(b.input, dict) else {})
            for b in message.content
            if getattr(b, "type", "") == "tool_use"
        ]
        return ModelReply(
            content=text,
            model=message.model,
            usage=usage,
            finish_reason=message.stop_reason or "end_turn",
            cost_usd=self.config.cost(message.model, usage),
            tool_calls=calls,
        )

    async def complete(self, request: ModelRequest) -> ModelReply:
        """One Messages API call."""
        self._check(request)
        try:
            message = await self._client.messages.create(**request_params(self.model, request))
        except self._sdk.APIError as exc:
            raise self._error(request, exc) from None
        return self._reply(request, message)

    async def stream(self, request: ModelRequest, on_chunk: OnChunk) -> ModelReply:
        """Stream text deltas to `on_chunk`; retried only while nothing was delivered."""
        self._check(request)
        params = request_params(self.model, request)
        attempts = 0
        while True:
            delivered = False
            try:
                async with self._client.messages.stream(**params) as stream:
                    async for text in stream.text_stream:
                        delivered = True
                        await on_chunk(text)
                    message = await stream.get_final_message()
                return self._reply(request, message)
            except self._sdk.APIError as exc:
                attempts += 1
                retryable = isinstance(exc, self._sdk.APIStatusError) and (
                    exc.status_code in (408, 409, 429) or exc.status_code >= 500
                )
                if delivered or not retryable or attempts > self._client.max_retries:
                    raise self._error(request, exc) from None
