"""One process's request and model metrics, as OpenTelemetry instruments.

Exported by OTLP when configured, and rendered for /metrics in the Prometheus text
format (``tekton_requests_total``, ``tekton_request_errors_total``,
``tekton_request_duration_seconds``, ``tekton_model_tokens_total``,
``tekton_model_cost_usd_total``, ``tekton_socket_connections``, plus the process's own
gauges). Debates (``tekton_debates_total``) and active runs (``tekton_runs_active``)
are counted by Rhetor and the run coordinator through `telemetry.current().meter()`.
"""

from __future__ import annotations

from tekton_common import telemetry
from tekton_common.wire import Usage


class Metrics:
    """The instruments of one service (`ci` label: a CI id or a service name)."""

    def __init__(self, ci: str, observed: telemetry.Telemetry | None = None) -> None:
        self.ci = ci
        self.telemetry = observed or telemetry.current()
        meter = self.telemetry.meter()
        self.requests = meter.create_counter("tekton.requests", description="Requests handled")
        self.errors = meter.create_counter(
            "tekton.request.errors", description="Requests answered with an error"
        )
        self.latency = meter.create_histogram(
            "tekton.request.duration", unit="s", description="Request latency"
        )
        self.tokens = meter.create_counter("tekton.model.tokens", description="Model tokens")
        self.cost = meter.create_counter("tekton.model.cost_usd", description="Model cost (USD)")
        self.sockets = meter.create_up_down_counter(
            "tekton.socket.connections", description="Open socket connections"
        )

    def observe(self, transport: str, endpoint: str, seconds: float, ok: bool) -> None:
        """Record one handled request."""
        labels = {"ci": self.ci, "transport": transport, "endpoint": endpoint}
        self.requests.add(1, labels)
        if not ok:
            self.errors.add(1, labels)
        self.latency.record(seconds, labels)

    def add_usage(self, model: str, usage: Usage, cost_usd: float) -> None:
        """Add a model call's tokens and cost."""
        for kind, count in (("input", usage.input_tokens), ("output", usage.output_tokens)):
            self.tokens.add(count, {"ci": self.ci, "model": model, "kind": kind})
        self.cost.add(cost_usd, {"ci": self.ci, "model": model})

    def connection(self, change: int) -> None:
        """A socket connection opened (+1) or closed (-1)."""
        self.sockets.add(change, {"ci": self.ci})

    def render(self, extra: dict[str, float] | None = None) -> str:
        """The Prometheus exposition text, with `extra` gauges of this process."""
        lines = [self.telemetry.prometheus_text().rstrip("\n")]
        for name, value in (extra or {}).items():
            lines += [f"# TYPE {name} gauge", f'{name}{{ci="{self.ci}"}} {value}']
        return "\n".join(lines) + "\n"
