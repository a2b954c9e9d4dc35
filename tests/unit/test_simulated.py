from __future__ import annotations

import json

import msgspec

from tekton_common.metrics import Metrics
from tekton_common.providers import ModelRequest, SimulatedProvider
from tekton_common.wire import Turn, Usage


def _request(ci: str, capability: str, text: str) -> ModelRequest:
    return ModelRequest(
        ci=ci,
        role="tester",
        capability=capability,
        system="be brief",
        messages=[Turn(role="user", content=text)],
        max_tokens=100,
    )


async def test_deterministic_role_aware_and_honest() -> None:
    sim = SimulatedProvider()
    a = await sim.complete(_request("apollo-ci", "planning", "ship it"))
    b = await sim.complete(_request("apollo-ci", "planning", "ship it"))
    c = await sim.complete(_request("synthesis-ci", "code", "ship it"))
    assert a == b
    assert a.model == "simulated" and "simulated" in a.content
    assert "apollo-ci, tester" in a.content and "synthesis-ci" in c.content
    assert a.usage.input_tokens > 0 and a.usage.output_tokens > 0


async def test_stream_reassembles_to_the_same_reply() -> None:
    sim = SimulatedProvider()
    chunks: list[str] = []

    async def on_chunk(text: str) -> None:
        chunks.append(text)

    reply = await sim.stream(_request("nous-ci", "reasoning", "why?"), on_chunk)
    assert len(chunks) > 3 and "".join(chunks) == reply.content


def test_metrics_render_prometheus_text() -> None:
    m = Metrics("metrics-test-ci")  # a label of its own: the registry is the process's
    m.observe("nats", "chat", 0.003, True)
    m.observe("nats", "chat", 0.2, False)
    m.add_usage("simulated", Usage(input_tokens=5, output_tokens=7), 0.25)
    m.connection(+1)
    text = m.render({"tekton_uptime_seconds": 3})
    labels = 'ci="metrics-test-ci",endpoint="chat",transport="nats"'
    assert f"tekton_requests_total{{{labels}}} 2.0" in text
    assert f"tekton_request_errors_total{{{labels}}} 1.0" in text
    assert 'le="0.005",transport="nats"} 1.0' in text and 'le="+Inf",transport="nats"} 2.0' in text
    assert (
        'tekton_model_tokens_total{ci="metrics-test-ci",kind="output",model="simulated"} 7.0'
        in text
    )
    assert 'tekton_model_cost_usd_total{ci="metrics-test-ci",model="simulated"} 0.25' in text
    assert 'tekton_socket_connections{ci="metrics-test-ci"} 1.0' in text
    assert 'tekton_uptime_seconds{ci="metrics-test-ci"} 3' in text


async def test_a_schema_that_is_not_an_object_is_answered_too() -> None:
    """Found by the socket fuzz: a request's schema may ask for a string or a list."""
    sim = SimulatedProvider()
    for schema, kind in (({"type": "string"}, str), ({"type": "array"}, list)):
        request = msgspec.structs.replace(
            _request("apollo-ci", "planning", "x"), json_schema=schema
        )
        assert isinstance(json.loads((await sim.complete(request)).content), kind)
