"""OpenTelemetry for every Tekton process, set up once from the standard ``OTEL_*`` variables.

Traces go where ``OTEL_TRACES_EXPORTER`` says: ``otlp`` (the default when an
``OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT`` is set; gRPC, or HTTP with
``OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL=http/protobuf``), ``console``, ``none``, or
``file`` (the default otherwise): JSON lines under ``$TEKTON_HOME/traces``, one file
per process, which ``tekton trace RUN_ID`` reads. Metrics are exported by OTLP when
``OTEL_METRICS_EXPORTER`` (default: otlp when an endpoint is set) asks for it, and are
always rendered on ``/metrics`` for Prometheus (`tekton_common.metrics`).
``OTEL_SDK_DISABLED=true`` exports nothing.

The resource says who is speaking: ``service.name`` (the CI id or service name),
``service.namespace = tekton``, the version, host and pid.
"""

from __future__ import annotations

import functools
import os
import socket
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import msgspec
from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SpanExporter,
    SpanExportResult,
)

from tekton_common import __version__
from tekton_common.errors import ConfigError
from tekton_common.logs import setup_logging
from tekton_common.settings import Settings

NAMESPACE = "tekton"
CAPTURE_CONTENT = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"


@functools.cache  # read once: it is asked on every model call
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


_line_encoder = msgspec.json.Encoder(enc_hook=str)


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
        # msgspec, not json: this runs on the exporter's thread and holds the GIL the
        # event loop needs
        lines = b"".join(_line_encoder.encode(span_record(s)) + b"\n" for s in spans)
        try:
            with self.lock:
                self._rotate()
                fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
                try:
                    os.write(fd, lines)
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


def _metric_exporter() -> Any:
    """The OTLP metric exporter the environment asks for, or None (metrics stay on
    /metrics)."""
    endpoint = _env("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
    kind = _env("OTEL_METRICS_EXPORTER") or ("otlp" if endpoint else "none")
    if kind != "otlp":
        return None
    protocol = _env("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL") or "grpc"
    if protocol == "http/protobuf":
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import (  # noqa: PLC0415
            OTLPMetricExporter as HttpMetricExporter,
        )

        return HttpMetricExporter()
    from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import (  # noqa: PLC0415
        OTLPMetricExporter as GrpcMetricExporter,
    )

    return GrpcMetricExporter()


def _meter_provider(resource: Resource, exporter: Any) -> Any:
    """The metrics SDK, exporting by OTLP (imported only here: see `metrics`)."""
    from opentelemetry.sdk.metrics import MeterProvider  # noqa: PLC0415
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader  # noqa: PLC0415
    from opentelemetry.sdk.metrics.view import (  # noqa: PLC0415
        ExplicitBucketHistogramAggregation,
        View,
    )

    from tekton_common.metrics import DURATION_BUCKETS  # noqa: PLC0415

    durations = View(
        instrument_name="*.duration",
        aggregation=ExplicitBucketHistogramAggregation(DURATION_BUCKETS),
    )
    reader = PeriodicExportingMetricReader(exporter)
    return MeterProvider(resource=resource, metric_readers=[reader], views=[durations])


_untraced_rate = 1.0


def untraced_rate() -> float:
    """The share of requests to a CI without a trace context that start one (1.0 when
    ``OTEL_TRACES_SAMPLER`` decides instead; see `spans`)."""
    return _untraced_rate


class Telemetry:
    """One process's providers: traces to the configured exporter, and metrics by OTLP
    when configured (/metrics renders them in any case: see `metrics`)."""

    def __init__(
        self,
        service: str,
        home: Path | None,
        export: bool = True,
        file_mb: float = 64.0,
    ) -> None:
        self.service = service
        self.stopped = False
        self.tracer_provider: TracerProvider | None = None
        #: the metrics SDK, when metrics are exported by OTLP (None otherwise)
        self.meter_provider: Any = None
        if not export or home is None:
            return
        resource = Resource.create(
            {
                "service.name": service,
                "service.namespace": NAMESPACE,
                "service.version": __version__,
                "host.name": socket.gethostname(),
                "process.pid": os.getpid(),
            }
        )
        metric_exporter = _metric_exporter()
        if metric_exporter is not None:
            self.meter_provider = _meter_provider(resource, metric_exporter)
        # the SDK's sampler: OTEL_TRACES_SAMPLER, by default parent-based always-on
        self.tracer_provider = TracerProvider(resource=resource)
        exporter = span_exporter(service, home, file_mb)
        if exporter is not None:
            self.tracer_provider.add_span_processor(BatchSpanProcessor(exporter))

    def meter(self) -> Any:
        """The process's OpenTelemetry meter (only where metrics are exported)."""
        return self.meter_provider.get_meter("tekton", __version__)

    def shutdown(self) -> None:
        """Flush and stop the exporters (once; later calls do nothing)."""
        if self.stopped:
            return
        self.stopped = True
        if self.tracer_provider is not None:
            self.tracer_provider.shutdown()
        if self.meter_provider is not None:
            self.meter_provider.shutdown()


_current: Telemetry | None = None


def setup(service: str, settings: Settings) -> Telemetry:
    """Set up OpenTelemetry for this process (once; later calls return the first).
    ``OTEL_SDK_DISABLED=true`` keeps metrics for /metrics and exports nothing;
    ``trace_file_mb`` bounds each local span file (see FileSpanExporter) and
    ``trace_untraced_rate`` samples requests to a CI that come with no trace (see
    `spans`)."""
    global _current, _untraced_rate  # noqa: PLW0603 (one provider per process, as OpenTelemetry wants)
    if _current is None:
        enabled = os.environ.get("OTEL_SDK_DISABLED", "").lower() != "true"
        _current = Telemetry(
            service, settings.home_path, export=enabled, file_mb=settings.trace_file_mb
        )
        if not os.environ.get("OTEL_TRACES_SAMPLER"):
            _untraced_rate = settings.trace_untraced_rate
        if _current.tracer_provider is not None:
            trace.set_tracer_provider(_current.tracer_provider)
    return _current


def metrics_exported() -> bool:
    """True when this process's metrics also leave by OTLP."""
    return _current is not None and _current.meter_provider is not None


_local: list[Telemetry] = []


def current() -> Telemetry:
    """The process's telemetry; when `setup` never ran (tools, tests), one that exports
    nothing."""
    if _current is not None:
        return _current
    if not _local:
        _local.append(Telemetry("tekton", None, export=False))
    return _local[0]


def observe(service: str, settings: Settings) -> Telemetry:
    """Logs (JSON lines with trace ids) and OpenTelemetry for one service process."""
    setup_logging(service, settings.log_level)
    return setup(service, settings)


#: a proxy that delegates to the real tracer once `setup` sets the provider (looked up
#: once: `trace.get_tracer` builds and compares an instrumentation scope on every call)
_TRACER = trace.get_tracer("tekton", __version__)


def tracer() -> trace.Tracer:
    """Tekton's tracer (a no-op one until `setup`)."""
    return _TRACER


def inject(headers: Mapping[str, str] | None = None) -> dict[str, str]:
    """`headers` plus the current trace context (traceparent, tracestate)."""
    carrier = dict(headers or {})
    propagate.inject(carrier)
    return carrier


def extract(headers: Mapping[str, str] | None) -> Context:
    """The trace context carried in `headers` (an empty context when none)."""
    return propagate.extract(dict(headers or {}))
