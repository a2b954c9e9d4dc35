"""OpenAI-compatible chat completions (Ollama, vLLM, LM Studio, …) over httpx.

Sends the CI's temperature, streams server-sent events, and asks for JSON-schema
output (``response_format``) when the caller expects JSON. Retries 429 and 5xx a few
times, honouring ``retry-after``; other errors fail at once with the CI and the cause.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from tekton_common.bus import backoff_delay
from tekton_common.errors import ProviderError
from tekton_common.providers.base import ModelReply, ModelRequest, OnChunk
from tekton_common.providers.models import ModelConfig
from tekton_common.secrets import redact
from tekton_common.wire import Usage


def request_body(model: str, request: ModelRequest, stream: bool) -> dict[str, Any]:
    """The /chat/completions body for a request."""
    messages = [{"role": "system", "content": request.system}]
    messages += [{"role": t.role, "content": t.content} for t in request.messages]
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
            "json_schema": {"name": "reply", "schema": request.json_schema, "strict": True},
        }
    if stream:
        body["stream_options"] = {"include_usage": True}
    return body


def _usage(data: dict[str, Any] | None) -> Usage:
    data = data or {}
    cached = (data.get("prompt_tokens_details") or {}).get("cached_tokens", 0) or 0
    return Usage(
        input_tokens=max(0, (data.get("prompt_tokens") or 0) - cached),
        output_tokens=data.get("completion_tokens") or 0,
        cache_read_input_tokens=cached,
    )


class OpenAICompatProvider:
    """A model behind an OpenAI-compatible endpoint."""

    name = "openai"

    def __init__(
        self,
        model: str,
        base_url: str,
        config: ModelConfig,
        *,
        api_key: str | None = None,
        max_retries: int = 4,
        timeout: float = 120.0,
    ) -> None:
        import httpx  # noqa: PLC0415 - only CIs on such endpoints pay for the import

        self._httpx = httpx
        self.model = model
        self.config = config
        self.max_retries = max_retries
        self._key = api_key
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.AsyncClient(
            base_url=base_url.rstrip("/"), headers=headers, timeout=timeout
        )

    def _fail(self, request: ModelRequest, cause: str) -> ProviderError:
        return ProviderError(
            redact(
                f"{request.ci}: {self.model} at {self._client.base_url} failed: {cause}", self._key
            )
        )

    async def _send(self, request: ModelRequest, body: dict[str, Any]) -> Any:
        """POST with retries; returns the open streaming response (caller closes it)."""
        httpx = self._httpx
        for attempt in range(self.max_retries + 1):
            try:
                req = self._client.build_request("POST", "/chat/completions", json=body)
                response = await self._client.send(req, stream=True)
            except httpx.TimeoutException:
                raise self._fail(request, "request timed out") from None
            except httpx.HTTPError as exc:
                raise self._fail(request, f"cannot connect ({type(exc).__name__})") from None
            if response.status_code == 200:
                return response
            text = (await response.aread()).decode(errors="replace")[:500]
            await response.aclose()
            retryable = response.status_code == 429 or response.status_code >= 500
            if not retryable or attempt == self.max_retries:
                raise self._fail(request, f"HTTP {response.status_code}: {text}")
            after = response.headers.get("retry-after")
            try:
                delay = float(after) if after else backoff_delay(attempt)
            except ValueError:
                delay = backoff_delay(attempt)
            await asyncio.sleep(min(delay, 60.0))
        raise self._fail(request, "retries exhausted")

    def _reply(self, model: str, text: str, usage: Usage, finish: str) -> ModelReply:
        return ModelReply(
            content=text,
            model=model,
            usage=usage,
            finish_reason=finish,
            cost_usd=self.config.cost(model, usage),
        )

    async def complete(self, request: ModelRequest) -> ModelReply:
        """One completion."""
        response = await self._send(request, request_body(self.model, request, False))
        try:
            data = json.loads(await response.aread())
            choice = data["choices"][0]
            return self._reply(
                data.get("model", self.model),
                choice["message"]["content"] or "",
                _usage(data.get("usage")),
                choice.get("finish_reason") or "stop",
            )
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise self._fail(request, f"unreadable reply ({exc})") from None
        finally:
            await response.aclose()

    async def stream(self, request: ModelRequest, on_chunk: OnChunk) -> ModelReply:
        """Stream deltas to `on_chunk`."""
        response = await self._send(request, request_body(self.model, request, True))
        parts: list[str] = []
        usage = Usage()
        finish = "stop"
        model = self.model
        try:
            async for line in response.aiter_lines():
                if not line.startswith("data:"):
                    continue
                payload = line[5:].strip()
                if payload == "[DONE]":
                    break
                event = json.loads(payload)
                if "error" in event:
                    raise self._fail(request, f"stream error: {event['error']}")
                model = event.get("model", model)
                if event.get("usage"):
                    usage = _usage(event["usage"])
                for choice in event.get("choices", []):
                    text = (choice.get("delta") or {}).get("content")
                    if text:
                        parts.append(text)
                        await on_chunk(text)
                    finish = choice.get("finish_reason") or finish
        except (ValueError, self._httpx.HTTPError) as exc:
            raise self._fail(request, f"stream broke ({type(exc).__name__})") from None
        finally:
            await response.aclose()
        return self._reply(model, "".join(parts), usage, finish)
