"""A process's metrics: rendered on /metrics in the Prometheus text format, and exported
by OTLP too when metrics export is configured (``OTEL_METRICS_EXPORTER`` or an OTLP
endpoint; see `telemetry`).

``tekton_requests_total``, ``tekton_request_errors_total``,
``tekton_request_duration_seconds``, ``tekton_model_tokens_total``,
``tekton_model_cost_usd_total``, ``tekton_socket_connections`` (every service),
``tekton_debates_total`` (Rhetor), ``tekton_runs_active`` (the run coordinator), plus
the process's own gauges.

prometheus_client keeps the values (about 1 µs an observation, on every request). The
OpenTelemetry metrics SDK costs 15 µs an observation and 70 ms of imports, so it is
loaded, and fed as well, only where metrics leave by OTLP.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, disable_created_metrics, generate_latest
from prometheus_client import Histogram as PromHistogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from tekton_common import telemetry
from tekton_common.wire import Usage

#: every metric of this process (one per process, as /metrics shows one process)
REGISTRY = CollectorRegistry()
disable_created_metrics()  # type: ignore[no-untyped-call]  # no `_created` series
#: request latency buckets in seconds
DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Instrument:
    """One metric, by OpenTelemetry name (``tekton.model.tokens``)."""

    kind = "counter"

    def __init__(self, name: str, description: str, labels: tuple[str, ...], unit: str) -> None:
        self.name, self.description, self.labels, self.unit = name, description, labels, unit
        self.prom_name = name.replace(".", "_") + ("_seconds" if unit == "s" else "")


class Counter(Instrument):
    """A monotonic count, kept in a dictionary and read when it is collected: for
    /metrics, and by an asynchronous OpenTelemetry instrument when metrics are exported
    (a prometheus_client counter costs a lock and a few calls per increment, the SDK's
    several microseconds)."""

    def __init__(self, name: str, description: str, labels: tuple[str, ...], unit: str) -> None:
        super().__init__(name, description, labels, unit)
        self.values: dict[tuple[str, ...], float] = {}
        self._observed = False

    def add(self, amount: float, *values: str) -> None:
        """Count `amount` under the label values (in `labels` order)."""
        self.values[values] = self.values.get(values, 0) + amount
        if not self._observed and telemetry.metrics_exported():
            self._observe()

    def _observe(self) -> None:
        """Let the SDK read the totals when it exports (once per process)."""
        from opentelemetry.metrics import Observation  # noqa: PLC0415 - OTLP only

        def totals(_options: Any) -> Iterator[Any]:
            for values, value in list(self.values.items()):
                yield Observation(value, dict(zip(self.labels, values, strict=True)))

        meter = telemetry.current().meter()
        make = (
            meter.create_observable_counter
            if self.kind == "counter"
            else meter.create_observable_up_down_counter
        )
        make(self.name, callbacks=[totals], unit=self.unit, description=self.description)
        self._observed = True

    def family(self) -> Metric:
        """The values as a Prometheus metric family."""
        kind = CounterMetricFamily if self.kind == "counter" else GaugeMetricFamily
        family = kind(self.prom_name, self.description, labels=self.labels)
        for values, value in list(self.values.items()):  # a copy: the loop may add keys
            family.add_metric(values, value)
        return family


class UpDownCounter(Counter):
    """A count that goes up and down (open connections, active runs)."""

    kind = "gauge"


class Histogram(Instrument):
    """A distribution (request latency), kept by prometheus_client."""

    kind = "histogram"

    def __init__(self, name: str, description: str, labels: tuple[str, ...], unit: str) -> None:
        super().__init__(name, description, labels, unit)
        self.prom = PromHistogram(
            self.prom_name, description, labels, registry=REGISTRY, buckets=DURATION_BUCKETS
        )
        self._children: dict[tuple[str, ...], Any] = {}
        self._otel: Any = None

    def record(self, amount: float, *values: str) -> None:
        """Record one observation."""
        child = self._children.get(values)
        if child is None:
            child = self._children[values] = self.prom.labels(*values)
        child.observe(amount)
        if telemetry.metrics_exported():  # no asynchronous histogram exists: one SDK call
            if self._otel is None:
                self._otel = (
                    telemetry.current()
                    .meter()
                    .create_histogram(self.name, unit=self.unit, description=self.description)
                )
            self._otel.record(amount, dict(zip(self.labels, values, strict=True)))


class _Counters(Collector):
    """Every Counter and UpDownCounter of the process, for /metrics."""

    def collect(self) -> Iterator[Metric]:
        for made in list(_made.values()):
            if isinstance(made, Counter):
                yield made.family()


_made: dict[str, Instrument] = {}
REGISTRY.register(_Counters())


def _once(
    kind: type[Instrument], name: str, description: str, labels: tuple[str, ...], unit: str = ""
) -> Any:
    if name not in _made:
        _made[name] = kind(name, description, labels, unit)
    return _made[name]


def counter(name: str, description: str, *labels: str) -> Counter:
    """The process's counter `name` (made on first use)."""
    made: Counter = _once(Counter, name, description, labels)
    return made


def up_down_counter(name: str, description: str, *labels: str) -> UpDownCounter:
    """The process's up-down counter `name` (made on first use)."""
    made: UpDownCounter = _once(UpDownCounter, name, description, labels)
    return made


def histogram(name: str, description: str, *labels: str, unit: str = "s") -> Histogram:
    """The process's histogram `name` (made on first use)."""
    made: Histogram = _once(Histogram, name, description, labels, unit)
    return made


class Metrics:
    """The request and model metrics of one service (`ci` label: a CI id or a service)."""

    def __init__(self, ci: str) -> None:
        self.ci = ci
        self.requests = counter(
            "tekton.requests", "Requests handled", "ci", "endpoint", "transport"
        )
        self.errors = counter(
            "tekton.request.errors",
            "Requests answered with an error",
            "ci",
            "endpoint",
            "transport",
        )
        self.latency = histogram(
            "tekton.request.duration", "Request latency", "ci", "endpoint", "transport"
        )
        self.tokens = counter("tekton.model.tokens", "Model tokens", "ci", "kind", "model")
        self.cost = counter("tekton.model.cost_usd", "Model cost (USD)", "ci", "model")
        self.sockets = up_down_counter("tekton.socket.connections", "Open socket connections", "ci")

    def observe(self, transport: str, endpoint: str, seconds: float, ok: bool) -> None:
        """Record one handled request."""
        self.requests.add(1, self.ci, endpoint, transport)
        if not ok:
            self.errors.add(1, self.ci, endpoint, transport)
        self.latency.record(seconds, self.ci, endpoint, transport)

    def add_usage(self, model: str, usage: Usage, cost_usd: float) -> None:
        """Add a model call's tokens and cost."""
        self.tokens.add(usage.input_tokens, self.ci, "input", model)
        self.tokens.add(usage.output_tokens, self.ci, "output", model)
        self.cost.add(cost_usd, self.ci, model)

    def connection(self, change: int) -> None:
        """A socket connection opened (+1) or closed (-1)."""
        self.sockets.add(change, self.ci)

    def render(self, extra: dict[str, float] | None = None) -> str:
        """The Prometheus exposition text, with `extra` gauges of this process."""
        lines = [generate_latest(REGISTRY).decode().rstrip("\n")]
        for name, value in (extra or {}).items():
            lines += [f"# TYPE {name} gauge", f'{name}{{ci="{self.ci}"}} {value}']
        return "\n".join(lines) + "\n"
