"""Traces across processes, collected by an OTLP receiver over gRPC and HTTP."""

from __future__ import annotations

import json
import logging
from typing import Any

from opentelemetry.sdk.trace import TracerProvider

from tekton_common.logs import JsonFormatter
from tests.fakes.otlp_receiver import OtlpReceiver
from tests.helpers import Env, wait_for

KEY = "sk-ant-trace-secret-value"


def otel(env: Env, receiver: OtlpReceiver, protocol: str, **extra: str) -> None:
    endpoint = receiver.grpc_endpoint if protocol == "grpc" else receiver.http_endpoint
    env.extra.update(
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
            "OTEL_EXPORTER_OTLP_PROTOCOL": protocol,
            "OTEL_BSP_SCHEDULE_DELAY": "100",
            **extra,
        }
    )


def one(spans: list[dict[str, Any]], name: str) -> dict[str, Any]:
    [found] = [s for s in spans if s["name"] == name]
    return found


def has(*names: str):  # type: ignore[no-untyped-def]
    return lambda spans: set(names) <= {s["name"] for s in spans}


def test_ask_over_nats_is_one_trace_over_grpc(env: Env, start_ci, otlp: OtlpReceiver) -> None:
    otel(env, otlp, "grpc", OTEL_METRIC_EXPORT_INTERVAL="300")
    start_ci("apollo")
    asked = env.tekton("ask", "apollo", "Plan the release")
    assert asked.returncode == 0, asked.stderr
    spans = otlp.wait_for(has("tekton ask", "chat simulated"))
    root = one(spans, "tekton ask")
    send = one(spans, "send tekton.ci.apollo.chat")
    process = one(spans, "process tekton.ci.apollo.chat")
    agent = one(spans, "invoke_agent apollo-ci")
    chat = one(spans, "chat simulated")
    assert {s["trace_id"] for s in (root, send, process, agent, chat)} == {root["trace_id"]}
    assert root["parent_id"] is None
    assert (send["parent_id"], process["parent_id"]) == (root["span_id"], send["span_id"])
    assert (agent["parent_id"], chat["parent_id"]) == (process["span_id"], agent["span_id"])
    assert (root["service"], process["service"]) == ("tekton-cli", "apollo-ci")
    assert process["resource"]["service.namespace"] == "tekton"
    assert {"service.version", "host.name", "process.pid"} <= set(process["resource"])
    assert send["kind"] == "CLIENT" and process["kind"] == "SERVER"
    assert send["attributes"]["messaging.system"] == "nats"
    assert process["attributes"]["messaging.destination.name"] == "tekton.ci.apollo.chat"
    assert process["attributes"]["messaging.operation.type"] == "process"
    assert process["attributes"]["messaging.consumer.group.name"] == "q"
    usage = chat["attributes"]
    assert usage["gen_ai.provider.name"] == "simulated"
    assert usage["gen_ai.request.model"] == "simulated"
    assert usage["gen_ai.usage.input_tokens"] > 0 and usage["gen_ai.usage.output_tokens"] > 0
    assert usage["gen_ai.response.finish_reasons"] == ["end_turn"]
    assert "gen_ai.input.messages" not in usage  # content capture is off by default
    assert otlp.requests["grpc"] > 0 and otlp.requests["http"] == 0
    # metrics go by OTLP too
    assert wait_for(lambda: ("apollo-ci", "tekton.model.tokens") in otlp.metrics, 10)
    assert ("apollo-ci", "tekton.request.duration") in otlp.metrics


def test_socket_ask_carries_traceparent_over_http(env: Env, start_ci, otlp: OtlpReceiver) -> None:
    otel(env, otlp, "http/protobuf", OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT="true")
    start_ci("athena")
    asked = env.tekton("ask", "athena", "--socket", "Check this claim")
    assert asked.returncode == 0, asked.stderr
    spans = otlp.wait_for(has("tekton ask", "chat simulated"))
    root = one(spans, "tekton ask")
    server = one(spans, "socket chat")
    assert server["trace_id"] == root["trace_id"] and server["parent_id"] == root["span_id"]
    assert server["service"] == "athena-ci" and server["kind"] == "SERVER"
    chat = one(spans, "chat simulated")
    assert chat["trace_id"] == root["trace_id"]
    assert "Check this claim" in chat["attributes"]["gen_ai.input.messages"]  # capture on
    assert otlp.requests["http"] > 0 and otlp.requests["grpc"] == 0


def test_claude_call_span_has_cache_tokens_and_no_secret(
    env: Env, start_ci, otlp: OtlpReceiver, fake_anthropic
) -> None:
    otel(env, otlp, "grpc", ANTHROPIC_API_KEY=KEY, ANTHROPIC_BASE_URL=fake_anthropic.url)
    start_ci("apollo")
    for question in ("first", "second"):  # the second reads the cached system prompt
        assert env.tekton("ask", "apollo", question).returncode == 0
    spans = otlp.wait_for(lambda s: sum(x["name"].startswith("chat claude") for x in s) == 2)
    chats = [s for s in spans if s["name"].startswith("chat claude")]
    assert {c["attributes"]["gen_ai.provider.name"] for c in chats} == {"anthropic"}
    assert chats[0]["attributes"]["gen_ai.usage.cache_creation.input_tokens"] > 0
    assert any(c["attributes"]["gen_ai.usage.cache_read.input_tokens"] > 0 for c in chats)
    assert KEY not in json.dumps(spans)


def test_log_lines_carry_the_trace_and_span_ids() -> None:
    tracer = TracerProvider().get_tracer("test")
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "hello", None, None)
    with tracer.start_as_current_span("work") as span:
        line = json.loads(JsonFormatter("apollo-ci").format(record))
    context = span.get_span_context()
    assert line["trace_id"] == f"{context.trace_id:032x}"
    assert line["span_id"] == f"{context.span_id:016x}"
    assert "trace_id" not in json.loads(JsonFormatter("apollo-ci").format(record))
