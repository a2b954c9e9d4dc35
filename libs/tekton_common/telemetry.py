"""OpenTelemetry for every Tekton process, set up once from the standard ``OTEL_*`` variables.

Traces go where ``OTEL_TRACES_EXPORTER`` says: ``otlp`` (the default when an
``OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT`` is set; gRPC, or HTTP with
``OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL=http/protobuf``), ``console``, ``none``, or
``file`` (the default otherwise): JSON lines under ``$TEKTON_HOME/traces``, one file
per process, which ``tekton trace RUN_ID`` reads. Metrics are exported by OTLP when
``OTEL_METRICS_EXPORTER`` (default: otlp when an endpoint is set) asks for it, and are
always rendered on ``/metrics`` for Prometheus. ``OTEL_SDK_DISABLED=true`` exports
nothing.

The resource says who is speaking: ``service.name`` (the CI id or service name),
``service.namespace = tekton``, the version, host and pid.
"""

from __future__ import annotations

import json
import os
import socket
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from opentelemetry import metrics, propagate, trace
from opentelemetry.context import Context
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SpanExporter,
    SpanExportResult,
)
from prometheus_client import CollectorRegistry, generate_latest

from tekton_common import __version__
from tekton_common.errors import ConfigError
from tekton_common.logs import setup_logging
from tekton_common.settings import Settings

NAMESPACE = "tekton"
CAPTURE_CONTENT = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"


def capture_content() -> bool:
    """True when prompts and completions may be recorded on spans (off by default)."""
    return os.environ.get(CAPTURE_CONTENT, "").lower() in ("1", "true", "yes")


def _env(*names: str) -> str | None:
    return next((os.environ[n] for n in names if os.environ.get(n)), None)


def span_record(span: ReadableSpan) -> dict[str, Any]:
    """One span as a JSON-ready dict (the local trace files' line format)."""
    context = span.get_span_context()
    parent = span.parent
    return {
        "trace_id": f"{context.trace_id:032x}" if context else "",
        "span_id": f"{context.span_id:016x}" if context else "",
        "parent_id": f"{parent.span_id:016x}" if parent else None,
        "name": span.name,
        "kind": span.kind.name,
        "service": span.resource.attributes.get("service.name"),
        "start_ns": span.start_time,
        "end_ns": span.end_time,
        "status": span.status.status_code.name,
        "error": span.status.description,
        "attributes": dict(span.attributes or {}),
    }


class FileSpanExporter(SpanExporter):
    """Appends finished spans as JSON lines to one file per service; each batch is one
    append, so replicas of a service can share the file. A file past `max_bytes` becomes
    `<service>.old.jsonl` (replacing the one before), so a service keeps at most twice
    that on disk."""

    def __init__(self, path: Path, max_bytes: int) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.old = path.with_suffix(".old.jsonl")
        self.max_bytes = max_bytes
        self.lock = threading.Lock()

    def _rotate(self) -> None:
        try:
            if os.stat(self.path).st_size >= self.max_bytes:
                os.replace(self.path, self.old)
        except FileNotFoundError:  # not written yet, or a replica rotated it first
            pass

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        lines = "".join(json.dumps(span_record(s), default=str) + "\n" for s in spans)
        try:
            with self.lock:
                self._rotate()
                fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
                try:
                    os.write(fd, lines.encode())
                finally:
                    os.close(fd)
        except OSError:
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS


def traces_dir(home: Path) -> Path:
    """Where the file exporter writes."""
    return home / "traces"


def span_exporter(service: str, home: Path, file_mb: float = 64.0) -> SpanExporter | None:
    """The exporter the environment asks for (None: spans are dropped)."""
    endpoint = _env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
    kind = _env("OTEL_TRACES_EXPORTER") or ("otlp" if endpoint else "file")
    if kind == "none":
        return None
    if kind == "console":
        return ConsoleSpanExporter(service_name=service)
    if kind == "file":
        return FileSpanExporter(traces_dir(home) / f"{service}.jsonl", int(file_mb * 2**20))
    if kind != "otlp":
        raise ConfigError(f"OTEL_TRACES_EXPORTER must be otlp, file, console or none, not {kind!r}")
    protocol = _env("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL") or "grpc"
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (  # noqa: PLC0415
            OTLPSpanExporter as GrpcSpanExporter,
        )

        return GrpcSpanExporter()
    if protocol == "http/protobuf":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # noqa: PLC0415
            OTLPSpanExporter as HttpSpanExporter,
        )

        return HttpSpanExporter()
    raise ConfigError(f"OTLP protocol must be grpc or http/protobuf, not {protocol!r}")


def _metric_readers() -> list[MetricReader]:
    endpoint = _env("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
    kind = _env("OTEL_METRICS_EXPORTER") or ("otlp" if endpoint else "none")
    if kind != "otlp":
        return []
    protocol = _env("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL") or "grpc"
    if protocol == "http/protobuf":
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import (  # noqa: PLC0415
            OTLPMetricExporter as HttpMetricExporter,
        )

        return [PeriodicExportingMetricReader(HttpMetricExporter())]
    from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import (  # noqa: PLC0415
        OTLPMetricExporter as GrpcMetricExporter,
    )

    return [PeriodicExportingMetricReader(GrpcMetricExporter())]


#: request latency buckets in seconds (OpenTelemetry's defaults are for milliseconds)
DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Telemetry:
    """One process's providers: traces to the configured exporter, metrics to OTLP (when
    configured) and to a Prometheus registry that /metrics renders."""

    def __init__(
        self, service: str, home: Path | None, export: bool = True, file_mb: float = 64.0
    ) -> None:
        self.service = service
        self.stopped = False
        resource = Resource.create(
            {
                "service.name": service,
                "service.namespace": NAMESPACE,
                "service.version": __version__,
                "host.name": socket.gethostname(),
                "process.pid": os.getpid(),
            }
        )
        self.registry = CollectorRegistry()
        readers: list[MetricReader] = [
            PrometheusMetricReader(registry=self.registry, scope_info_enabled=False)
        ]
        self.tracer_provider: TracerProvider | None = None
        if export and home is not None:
            readers += _metric_readers()
            self.tracer_provider = TracerProvider(resource=resource)
            exporter = span_exporter(service, home, file_mb)
            if exporter is not None:
                self.tracer_provider.add_span_processor(BatchSpanProcessor(exporter))
        durations = View(
            instrument_name="*.duration",
            aggregation=ExplicitBucketHistogramAggregation(DURATION_BUCKETS),
        )
        self.meter_provider = MeterProvider(
            resource=resource, metric_readers=readers, views=[durations]
        )

    def meter(self) -> metrics.Meter:
        """The process's meter."""
        return self.meter_provider.get_meter("tekton", __version__)

    def prometheus_text(self) -> str:
        """Every metric in the Prometheus text format."""
        return generate_latest(self.registry).decode()

    def shutdown(self) -> None:
        """Flush and stop the exporters (once; later calls do nothing)."""
        if self.stopped:
            return
        self.stopped = True
        if self.tracer_provider is not None:
            self.tracer_provider.shutdown()
        self.meter_provider.shutdown()


_current: Telemetry | None = None


def setup(service: str, home: Path, file_mb: float = 64.0) -> Telemetry:
    """Set up OpenTelemetry for this process (once; later calls return the first).
    ``OTEL_SDK_DISABLED=true`` keeps metrics for /metrics and exports nothing; `file_mb`
    bounds each local span file (see FileSpanExporter)."""
    global _current  # noqa: PLW0603 (one provider per process, as OpenTelemetry wants)
    if _current is None:
        enabled = os.environ.get("OTEL_SDK_DISABLED", "").lower() != "true"
        _current = Telemetry(service, home, export=enabled, file_mb=file_mb)
        if _current.tracer_provider is not None:
            trace.set_tracer_provider(_current.tracer_provider)
        metrics.set_meter_provider(_current.meter_provider)
    return _current


_local: list[Telemetry] = []


def current() -> Telemetry:
    """The process's telemetry; when `setup` never ran (tools, tests), a metrics-only one
    that exports nothing."""
    if _current is not None:
        return _current
    if not _local:
        _local.append(Telemetry("tekton", None, export=False))
    return _local[0]


def meter() -> metrics.Meter:
    """The global meter: instruments made before `setup` start counting once it runs."""
    return metrics.get_meter("tekton", __version__)


def observe(service: str, settings: Settings) -> Telemetry:
    """Logs (JSON lines with trace ids) and OpenTelemetry for one service process."""
    setup_logging(service, settings.log_level)
    return setup(service, settings.home_path, settings.trace_file_mb)


def tracer() -> trace.Tracer:
    """Tekton's tracer (a no-op one until `setup`)."""
    return trace.get_tracer("tekton", __version__)


def inject(headers: Mapping[str, str] | None = None) -> dict[str, str]:
    """`headers` plus the current trace context (traceparent, tracestate)."""
    carrier = dict(headers or {})
    propagate.inject(carrier)
    return carrier


def extract(headers: Mapping[str, str] | None) -> Context:
    """The trace context carried in `headers` (an empty context when none)."""
    return propagate.extract(dict(headers or {}))
