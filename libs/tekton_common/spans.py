"""The spans Tekton makes, by the OpenTelemetry GenAI and messaging conventions.

``invoke_workflow {run|stage|debate}`` for runs, stages and debates, ``invoke_agent {ci}``
for a CI answering, ``chat {model}`` for a model call (usage, cache tokens, finish
reasons, the run id as ``gen_ai.conversation.id``), ``send``/``process {subject}`` for
NATS hops. Prompt and completion text are recorded only when content capture is on.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from tekton_common.telemetry import capture_content, extract, tracer
from tekton_common.wire import Usage

RUN_ID = "tekton.run_id"


def _clean(attributes: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in attributes.items() if v is not None}


@contextmanager
def span(
    name: str,
    attributes: Mapping[str, Any] | None = None,
    kind: SpanKind = SpanKind.INTERNAL,
    context: Any = None,
) -> Iterator[Span]:
    """A current span that records an escaping exception as an error, then re-raises."""
    with tracer().start_as_current_span(
        name,
        kind=kind,
        context=context,
        attributes=_clean(attributes or {}),
        record_exception=True,
        set_status_on_exception=True,
    ) as current:
        yield current


def workflow(kind: str, run_id: str | None = None, **attributes: Any) -> Any:
    """``invoke_workflow {kind}``: a run, a stage or a debate."""
    return span(
        f"invoke_workflow {kind}",
        {
            "gen_ai.operation.name": "invoke_workflow",
            "gen_ai.workflow.name": kind,
            "gen_ai.conversation.id": run_id,
            RUN_ID: run_id,
            **attributes,
        },
    )


def agent(ci: str, run_id: str | None = None, **attributes: Any) -> Any:
    """``invoke_agent {ci}``: one CI answering one request."""
    return span(
        f"invoke_agent {ci}",
        {
            "gen_ai.operation.name": "invoke_agent",
            "gen_ai.agent.name": ci,
            "gen_ai.agent.id": ci,
            "gen_ai.conversation.id": run_id,
            RUN_ID: run_id,
            **attributes,
        },
    )


def model_call(
    provider: str,
    model: str,
    run_id: str | None,
    temperature: float | None,
    max_tokens: int | None,
    prompt: str,
) -> Any:
    """``chat {model}``: one model call (finish it with `record_reply`)."""
    return span(
        f"chat {model}",
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": provider,
            "gen_ai.request.model": model,
            "gen_ai.request.temperature": temperature,
            "gen_ai.request.max_tokens": max_tokens,
            "gen_ai.conversation.id": run_id,
            RUN_ID: run_id,
            "gen_ai.input.messages": prompt if capture_content() else None,
        },
        SpanKind.CLIENT,
    )


def record_reply(
    current: Span, model: str, usage: Usage, finish_reason: str, cost_usd: float, text: str
) -> None:
    """The reply's model, usage (cache tokens too), finish reason and cost."""
    attributes = {
        "gen_ai.response.model": model,
        "gen_ai.response.finish_reasons": [finish_reason],
        "gen_ai.usage.input_tokens": usage.input_tokens,
        "gen_ai.usage.output_tokens": usage.output_tokens,
        "gen_ai.usage.cache_creation.input_tokens": usage.cache_creation_input_tokens,
        "gen_ai.usage.cache_read.input_tokens": usage.cache_read_input_tokens,
        "tekton.cost_usd": round(cost_usd, 8),
        "gen_ai.output.messages": text if capture_content() else None,
    }
    current.set_attributes(_clean(attributes))


def messaging(subject: str, operation: str, queue_group: str | None = None) -> dict[str, Any]:
    """Messaging attributes of a NATS hop."""
    return _clean(
        {
            "messaging.system": "nats",
            "messaging.destination.name": subject,
            "messaging.operation.type": operation,
            "messaging.operation.name": "request" if operation == "send" else "process",
            "messaging.consumer.group.name": queue_group,
        }
    )


def process(subject: str, headers: Mapping[str, str] | None, queue_group: str | None) -> Any:
    """``process {subject}``: handling a NATS request, in the sender's trace."""
    return span(
        f"process {subject}",
        messaging(subject, "process", queue_group),
        SpanKind.SERVER,
        extract(headers),
    )


def traced() -> bool:
    """True inside a trace (so hops outside any trace carry no context)."""
    return trace.get_current_span().get_span_context().is_valid


_QUIET: ContextVar[bool] = ContextVar("tekton_quiet_hops", default=False)


@contextmanager
def quiet_hops() -> Iterator[None]:
    """NATS requests made inside carry the trace context but add no ``send`` spans
    (a run's events: many, all alike, and already in the event log)."""
    token = _QUIET.set(True)
    try:
        yield
    finally:
        _QUIET.reset(token)


def hop_spans(subject: str) -> bool:
    """True when a NATS request should get its own ``send`` span: inside a trace, and
    not to a system subject (``$JS.API…``, ``$KV…``: the bus's own bookkeeping)."""
    return traced() and not _QUIET.get() and not subject.startswith("$")


def fail(current: Span, message: str) -> None:
    """Mark a span failed without an exception (an error reply, a block)."""
    current.set_status(Status(StatusCode.ERROR, message))
