"""The OpenAI-compatible provider against a local fake endpoint."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from tekton_common.contract.tools import ModelToolAnswer, ToolExchange, ToolSpec
from tekton_common.errors import ProviderError
from tekton_common.providers import ModelRequest
from tekton_common.providers.models import ModelConfig
from tekton_common.providers.openai_compat import OpenAICompatProvider
from tekton_common.wire import Turn
from tests.fakes.anthropic_server import Step
from tests.fakes.openai_server import FakeOpenAI


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    server = FakeOpenAI().start()
    yield server
    server.stop()


def provider(fake: FakeOpenAI, **kwargs) -> OpenAICompatProvider:
    return OpenAICompatProvider("llama3.3", fake.url, ModelConfig(), **kwargs)


def request(text: str = "hello local", **kwargs) -> ModelRequest:
    return ModelRequest(
        ci="synthesis-ci",
        role="code synthesis",
        capability="code",
        system="You are Synthesis.",
        max_tokens=77,
        temperature=0.2,
        messages=[Turn(role="user", content=text)],
        **kwargs,
    )


async def test_request_carries_temperature_and_system(fake) -> None:
    reply = await provider(fake, api_key="local-key").complete(request())
    [body] = fake.requests
    assert body["model"] == "llama3.3" and body["temperature"] == 0.2
    assert body["max_tokens"] == 77 and body["stream"] is False
    assert body["messages"][0] == {"role": "system", "content": "You are Synthesis."}
    assert fake.headers[0]["authorization"] == "Bearer local-key"
    assert reply.content == "fake local reply to: hello local"
    assert reply.usage.input_tokens > 0 and reply.usage.output_tokens == 6


async def test_json_schema_response_format(fake) -> None:
    schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}
    fake.script.append(Step(text='{"ok": true}'))
    reply = await provider(fake).complete(request(json_schema=schema))
    assert fake.requests[0]["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "reply", "schema": schema, "strict": True},
    }
    assert json.loads(reply.content) == {"ok": True}


async def test_streaming_with_usage(fake) -> None:
    chunks: list[str] = []

    async def on_chunk(text: str) -> None:
        chunks.append(text)

    reply = await provider(fake).stream(request("a b c d e"), on_chunk)
    assert len(chunks) > 2 and "".join(chunks) == reply.content
    assert fake.requests[0]["stream_options"] == {"include_usage": True}
    assert reply.usage.output_tokens == len(reply.content.split())


async def test_retry_after_then_success_and_no_retry_on_400(fake) -> None:
    fake.script.append(Step(status=429, headers={"retry-after": "0.3"}))
    started = time.monotonic()
    await provider(fake).complete(request())
    assert time.monotonic() - started >= 0.3 and len(fake.requests) == 2
    fake.script.append(Step(status=400))
    with pytest.raises(ProviderError, match=r"synthesis-ci.*HTTP 400"):
        await provider(fake).complete(request())
    assert len(fake.requests) == 3


async def test_mid_stream_error_and_unreachable_endpoint(fake) -> None:
    fake.script.append(Step(fail_mid_stream=True))

    async def ignore(_text: str) -> None:
        return None

    with pytest.raises(ProviderError, match="model crashed"):
        await provider(fake).stream(request("a b c d e f g"), ignore)
    dead = OpenAICompatProvider("m", "http://127.0.0.1:9/v1", ModelConfig(), api_key="k-secret")
    with pytest.raises(ProviderError, match="cannot connect") as info:
        await dead.complete(request())
    assert "k-secret" not in str(info.value)


SPEC = ToolSpec(
    name="numa_status",
    ci="numa-ci",
    description="The fleet's status.",
    input_schema={"type": "object", "properties": {"ci": {"type": "string"}}},
)


@pytest.mark.parametrize("streaming", [False, True])
async def test_tool_calls_are_read_and_answered(fake, streaming: bool) -> None:
    """Tool calls come back whole (streamed: assembled from fragments), and the next
    round carries the calls and their answers in the OpenAI shape."""
    fake.script.append(Step(text="", tool_calls=[("numa_status", {"ci": "hermes-ci"})] * 2))
    local = provider(fake)
    asked = request(tools=[SPEC])
    pieces: list[str] = []
    if streaming:
        reply = await local.stream(asked, _collect(pieces))
    else:
        reply = await local.complete(asked)
    assert [c.input for c in reply.tool_calls] == [{"ci": "hermes-ci"}] * 2
    assert len({c.id for c in reply.tool_calls}) == 2 and reply.finish_reason == "tool_calls"
    first = fake.requests[0]
    assert first["tools"][0]["function"]["name"] == "numa_status"
    assert first["tool_choice"] == "auto"
    answers = [
        ModelToolAnswer(id=c.id, name=c.name, content="hermes-ci: up") for c in reply.tool_calls
    ]
    exchange = ToolExchange(text="", calls=reply.tool_calls, answers=answers)
    final = await local.complete(request(tools=[SPEC], exchanges=[exchange], tools_done=True))
    second = fake.requests[1]
    assert second["tool_choice"] == "none"
    said, *results = second["messages"][-3:]
    assert said["tool_calls"][0]["function"]["arguments"] == '{"ci": "hermes-ci"}'
    assert [r["role"] for r in results] == ["tool", "tool"]
    assert results[0]["tool_call_id"] == reply.tool_calls[0].id
    assert final.content == "fake local reply to: hermes-ci: up" and not final.tool_calls


def _collect(into: list[str]):
    async def on_chunk(text: str) -> None:
        into.append(text)

    return on_chunk
