"""A CI process on Claude: `tekton ask apollo` reaches the (fake) Anthropic API."""

from __future__ import annotations

import json

from tekton_common.catalog import get_ci
from tekton_common.providers.models import PREMIUM
from tests.fakes.anthropic_server import Step
from tests.helpers import streamed

KEY = "sk-ant-e2e-secret-key-value"


async def test_ask_apollo_reaches_anthropic_with_its_system_prompt(
    env, start_ci, fake_anthropic
) -> None:
    env.extra.update({"ANTHROPIC_API_KEY": KEY, "ANTHROPIC_BASE_URL": fake_anthropic.url})
    apollo = start_ci("apollo")
    asked = env.tekton("ask", "apollo", "What ships first?")
    assert asked.returncode == 0, asked.stderr
    assert "fake claude reply to: What ships first?" in asked.stdout
    [body] = fake_anthropic.requests
    assert body["model"] == PREMIUM
    assert body["system"][0]["text"] == get_ci("apollo").prompt
    assert body["output_config"]["effort"] == "high"

    # streaming reaches the socket path chunk by chunk
    events = await streamed(apollo.ci_port, "one two three four five six seven")
    chunks = [e["content"] for e in events if e["type"] == "stream_chunk"]
    assert events[-1]["type"] == "stream_end" and len(chunks) > 1
    assert "".join(chunks) == "fake claude reply to: one two three four five six seven"
    assert events[-1]["usage"]["cache_read_input_tokens"] > 0  # the system prompt was cached

    # an upstream error is a clear error naming the CI, never the key
    fake_anthropic.script.append(Step(status=400))
    failed = env.tekton("ask", "apollo", "bad one")
    assert failed.returncode == 1
    assert "apollo-ci" in failed.stderr and "HTTP 400 invalid_request_error" in failed.stderr

    status = env.tekton("status", "--json")
    apollo_status = next(c for c in json.loads(status.stdout)["cis"] if c["ci"] == "apollo-ci")
    assert apollo_status["model"] == PREMIUM
    apollo.terminate()
    for text in (asked.stdout, asked.stderr, failed.stderr, status.stdout, apollo.log.read_text()):
        assert KEY not in text
