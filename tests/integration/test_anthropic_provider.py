"""The Anthropic provider through the real SDK against a local fake Messages API."""

from __future__ import annotations

import json
import time

import pytest

from tekton_common.errors import NotReadyError, ProviderError
from tekton_common.providers import ModelRequest
from tekton_common.providers.anthropic import AnthropicProvider
from tekton_common.providers.models import PREMIUM, ModelConfig
from tekton_common.wire import Turn
from tests.fakes.anthropic_server import Step

KEY = "sk-ant-test-0123456789abcdef"


def provider(fake, **kwargs) -> AnthropicProvider:
    return AnthropicProvider(PREMIUM, KEY, ModelConfig(), base_url=fake.url, **kwargs)


def request(text: str = "Plan the release", **kwargs) -> ModelRequest:
    return ModelRequest(
        ci="apollo-ci",
        role="executive coordinator",
        capability="reasoning",
        system="You are Apollo.",
        messages=[Turn(role="user", content=text)],
        max_tokens=321,
        **kwargs,
    )


async def test_request_shape_reply_usage_and_cost(fake_anthropic) -> None:
    reply = await provider(fake_anthropic).complete(request())
    [body] = fake_anthropic.requests
    assert body["model"] == PREMIUM and body["max_tokens"] == 321
    assert body["system"] == [
        {"type": "text", "text": "You are Apollo.", "cache_control": {"type": "ephemeral"}}
    ]
    assert body["output_config"] == {"effort": "high"}
    assert "temperature" not in body
    assert body["messages"] == [{"role": "user", "content": "Plan the release"}]
    headers = fake_anthropic.headers[0]  # the SDK sends the key as x-api-key or a bearer token
    assert KEY in (
        headers.get("x-api-key"),
        headers.get("authorization", "").removeprefix("Bearer "),
    )
    assert headers["anthropic-version"]
    assert reply.content == "fake claude reply to: Plan the release"
    assert reply.model == PREMIUM and reply.usage.cache_creation_input_tokens > 0
    assert reply.cost_usd > 0


async def test_prompt_cache_is_read_on_the_second_call(fake_anthropic) -> None:
    p = provider(fake_anthropic)
    first = await p.complete(request("one"))
    second = await p.complete(request("two"))
    assert first.usage.cache_creation_input_tokens > 0 and first.usage.cache_read_input_tokens == 0
    assert second.usage.cache_read_input_tokens == first.usage.cache_creation_input_tokens


async def test_structured_output_and_transcript_breakpoint(fake_anthropic) -> None:
    schema = {
        "type": "object",
        "properties": {"vote": {"enum": ["accept", "reject"]}},
        "required": ["vote"],
        "additionalProperties": False,
    }
    fake_anthropic.script.append(Step(text='{"vote": "accept"}'))
    history = [
        Turn(role="user", content="transcript so far"),
        Turn(role="assistant", content="noted"),
        Turn(role="user", content="your vote?"),
    ]
    req = ModelRequest(
        ci="athena-ci",
        role="skeptic",
        capability="chat",
        system="s",
        messages=history,
        max_tokens=50,
        json_schema=schema,
        cache_prefix=2,
    )
    reply = await provider(fake_anthropic).complete(req)
    body = fake_anthropic.requests[0]
    assert body["output_config"] == {
        "effort": "low",
        "format": {"type": "json_schema", "schema": schema},
    }
    assert body["messages"][1]["content"] == [
        {"type": "text", "text": "noted", "cache_control": {"type": "ephemeral"}}
    ]
    assert body["messages"][2]["content"] == "your vote?"
    assert json.loads(reply.content) == {"vote": "accept"}


@pytest.mark.parametrize("status", [429, 529])
async def test_retries_honour_retry_after(fake_anthropic, status: int) -> None:
    fake_anthropic.script.append(Step(status=status, headers={"retry-after": "0.6"}))
    started = time.monotonic()
    reply = await provider(fake_anthropic).complete(request())
    assert time.monotonic() - started >= 0.6
    assert len(fake_anthropic.requests) == 2 and reply.content.startswith("fake claude")


@pytest.mark.parametrize("status", [400, 401, 403, 404, 413])
async def test_client_errors_are_not_retried(fake_anthropic, status: int) -> None:
    fake_anthropic.script.append(Step(status=status))
    with pytest.raises(ProviderError) as info:
        await provider(fake_anthropic).complete(request())
    assert len(fake_anthropic.requests) == 1
    message = str(info.value)
    assert "apollo-ci" in message and f"HTTP {status}" in message and PREMIUM in message
    assert KEY not in message


async def test_retries_give_up_with_a_clear_error(fake_anthropic) -> None:
    fake_anthropic.script.extend([Step(status=529), Step(status=529)])
    with pytest.raises(ProviderError, match="HTTP 529 overloaded_error"):
        await provider(fake_anthropic, max_retries=1).complete(request())
    assert len(fake_anthropic.requests) == 2


async def test_streaming(fake_anthropic) -> None:
    chunks: list[str] = []

    async def on_chunk(text: str) -> None:
        chunks.append(text)

    reply = await provider(fake_anthropic).stream(request("stream this please now"), on_chunk)
    assert len(chunks) > 1 and "".join(chunks) == reply.content
    assert fake_anthropic.requests[0]["stream"] is True
    assert reply.usage.output_tokens > 0 and reply.usage.cache_creation_input_tokens > 0


async def test_mid_stream_overload_fails_after_delivering_text(fake_anthropic) -> None:
    fake_anthropic.script.append(Step(fail_mid_stream=True))
    chunks: list[str] = []

    async def on_chunk(text: str) -> None:
        chunks.append(text)

    with pytest.raises(ProviderError, match=r"apollo-ci.*(overloaded_error|Overloaded)"):
        await provider(fake_anthropic).stream(request("a b c d e f g h i j"), on_chunk)
    assert chunks and len(fake_anthropic.requests) == 1  # text went out: no retry


async def test_stream_retried_when_nothing_was_delivered(fake_anthropic) -> None:
    fake_anthropic.script.append(Step(status=529, headers={"retry-after": "0"}))
    chunks: list[str] = []

    async def on_chunk(text: str) -> None:
        chunks.append(text)

    reply = await provider(fake_anthropic).stream(request(), on_chunk)
    assert "".join(chunks) == reply.content and len(fake_anthropic.requests) == 2


async def test_slow_reply_times_out(fake_anthropic) -> None:
    fake_anthropic.script.append(Step(delay=2.0))
    with pytest.raises(ProviderError, match="timed out"):
        await provider(fake_anthropic, timeout=0.3, max_retries=0).complete(request())


async def test_missing_key_is_a_clear_error() -> None:
    with pytest.raises(NotReadyError, match=r"apollo-ci.*needs ANTHROPIC_API_KEY"):
        await AnthropicProvider(PREMIUM, None, ModelConfig()).complete(request())
