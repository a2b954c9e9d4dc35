"""The spans Tekton makes, by the OpenTelemetry GenAI and messaging conventions.

``invoke_workflow {run|stage|debate}`` for runs, stages and debates, ``invoke_agent {ci}``
for a CI answering, ``chat {model}`` for a model call (usage, cache tokens, finish
reasons, the run id as ``gen_ai.conversation.id``), ``send``/``process {subject}`` for
NATS hops. Prompt and completion text are recorded only when content capture is on.

Sampling. A request that arrives inside a trace (every debate turn, every command of
the command line, every stage and run) is traced, and so is everything a run, a stage
or a debate starts: every run's trace is whole. A request to a CI (``tekton.ci.*``,
the team chat, the socket port) that arrives with no trace context at all (a bare
``nats req``, another program's calls) starts a trace with probability
``trace_untraced_rate`` (default 1 in 100); the others make no spans at all, which is
what keeps the hot path fast (one SDK span costs about 20 µs here; a chat makes three).
Metrics count every request either way. ``OTEL_TRACES_SAMPLER``, when set, decides
instead, for every span.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar, Token
from types import TracebackType
from typing import Any

from opentelemetry import context as context_api
from opentelemetry import trace
from opentelemetry.trace import INVALID_SPAN, Span, SpanKind, Status, StatusCode

from tekton_common import telemetry
from tekton_common.telemetry import capture_content, extract, tracer
from tekton_common.wire import Usage

RUN_ID = "tekton.run_id"
#: subjects of requests to a CI: sampled when they come with no trace (see above)
CI_SUBJECTS = ("tekton.ci.", "tekton.team.chat")

#: True inside a request that was not sampled: no span is made under it
_UNTRACED: ContextVar[bool] = ContextVar("tekton_untraced", default=False)


def _clean(attributes: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in attributes.items() if v is not None}


class Scope:
    """A span made current for a block (what `tracer.start_as_current_span` does, in a
    fraction of its cost). An escaping exception is recorded and marks the span failed.
    Inside an unsampled request the block gets the invalid span and nothing is made."""

    __slots__ = ("attributes", "context", "kind", "name", "span", "token")

    def __init__(
        self,
        name: str,
        attributes: Mapping[str, Any] | None,
        kind: SpanKind = SpanKind.INTERNAL,
        context: context_api.Context | None = None,
    ) -> None:
        self.name, self.attributes, self.kind, self.context = name, attributes, kind, context
        self.span: Span | None = None
        self.token: Token[context_api.Context] | None = None

    def __enter__(self) -> Span:
        if _UNTRACED.get():
            return INVALID_SPAN
        attributes = _clean(self.attributes) if self.attributes else None
        span = tracer().start_span(self.name, self.context, self.kind, attributes)
        self.span = span
        self.token = context_api.attach(trace.set_span_in_context(span, self.context))
        return span

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        _tb: TracebackType | None,
    ) -> None:
        if self.span is None:
            return
        if self.token is not None:
            context_api.detach(self.token)
        if isinstance(exc, Exception) and self.span.is_recording():
            self.span.record_exception(exc)
            self.span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
        self.span.end()


class _Untraced:
    """The block of a request that was not sampled: no span is made inside it."""

    __slots__ = ("token",)

    def __enter__(self) -> Span:
        self.token = _UNTRACED.set(True)
        return INVALID_SPAN

    def __exit__(self, *_exc: object) -> None:
        _UNTRACED.reset(self.token)


def span(
    name: str,
    attributes: Mapping[str, Any] | None = None,
    kind: SpanKind = SpanKind.INTERNAL,
    context: context_api.Context | None = None,
) -> Scope:
    """A current span that records an escaping exception as an error, then re-raises."""
    return Scope(name, attributes, kind, context)


def entry(
    name: str,
    attributes: Callable[[], Mapping[str, Any]],
    kind: SpanKind,
    carrier: Mapping[str, str] | None,
    sampled: bool,
) -> Scope | _Untraced:
    """The span of a request as it arrives: in the sender's trace when `carrier` holds
    one; else a new trace, or (for a `sampled` entry, but one time in
    ``1 / trace_untraced_rate``) none at all. `attributes` is called only for a span
    that is made."""
    if carrier and "traceparent" in carrier:
        return Scope(name, attributes(), kind, extract(carrier))
    if sampled and random.random() >= telemetry.untraced_rate():
        return _Untraced()
    return Scope(name, attributes(), kind, context_api.Context())


#: what a span helper returns inside an unsampled request (no attributes are built)
_NOTHING = Scope("", None)


def workflow(kind: str, run_id: str | None = None, **attributes: Any) -> Any:
    """``invoke_workflow {kind}``: a run, a stage or a debate."""
    if _UNTRACED.get():
        return _NOTHING
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
    if _UNTRACED.get():
        return _NOTHING
    return span(
        f"invoke_agent {ci}",
        {
            "gen_ai.operation.name": "invoke_agent",
            "gen_ai.agent.name": ci,
            "gen_ai.conversation.id": run_id,
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
    if _UNTRACED.get():
        return _NOTHING
    return span(
        f"chat {model}",
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": provider,
            "gen_ai.request.model": model,
            "gen_ai.request.temperature": temperature,
            "gen_ai.request.max_tokens": max_tokens,
            "gen_ai.conversation.id": run_id,
            "gen_ai.input.messages": prompt if capture_content() else None,
        },
        SpanKind.CLIENT,
    )


def tool_call(tool: str, call_id: str | None = None, ci: str | None = None) -> Any:
    """``execute_tool {tool}``: one tool call a model (or an MCP client) made."""
    if _UNTRACED.get():
        return _NOTHING
    return span(
        f"execute_tool {tool}",
        {
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": tool,
            "gen_ai.tool.type": "function",
            "gen_ai.tool.call.id": call_id,
            "gen_ai.agent.name": ci,
        },
    )


def record_reply(
    current: Span, model: str, usage: Usage, finish_reason: str, cost_usd: float, text: str
) -> None:
    """The reply's model, usage (cache tokens too), finish reason and cost."""
    if not current.is_recording():
        return
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
    """``process {subject}``: handling a NATS request, in the sender's trace (a request
    to a CI without one is sampled: see the module docstring)."""
    return entry(
        f"process {subject}",
        lambda: messaging(subject, "process", queue_group),
        SpanKind.SERVER,
        headers,
        subject.startswith(CI_SUBJECTS),
    )


def traced() -> bool:
    """True inside a trace (so hops outside any trace carry no context)."""
    return trace.get_current_span().get_span_context().is_valid


_QUIET: ContextVar[bool] = ContextVar("tekton_quiet_hops", default=False)


@contextmanager
def quiet_hops() -> Iterator[None]:
    """NATS messages sent inside make no ``send`` spans, and those published carry no
    trace context (a run's or a debate's events: many, all alike, and already in the
    event log and the turn spans)."""
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
