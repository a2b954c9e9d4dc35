"""Per-process request metrics, rendered in the Prometheus text format for /metrics."""

from __future__ import annotations

import bisect
from collections import defaultdict

from tekton_common.wire import Usage

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class _Histogram:
    def __init__(self) -> None:
        self.counts = [0] * (len(BUCKETS) + 1)
        self.total = 0.0
        self.count = 0

    def observe(self, seconds: float) -> None:
        self.counts[bisect.bisect_left(BUCKETS, seconds)] += 1
        self.total += seconds
        self.count += 1


class Metrics:
    """Request counts, errors, latency histograms and token totals for one CI process."""

    def __init__(self, ai_id: str) -> None:
        self.ai_id = ai_id
        self.requests: defaultdict[tuple[str, str], int] = defaultdict(int)
        self.errors: defaultdict[tuple[str, str], int] = defaultdict(int)
        self.latency: defaultdict[tuple[str, str], _Histogram] = defaultdict(_Histogram)
        self.tokens = {"input": 0, "output": 0}
        self.connections = 0

    def observe(self, transport: str, endpoint: str, seconds: float, ok: bool) -> None:
        """Record one handled request."""
        key = (transport, endpoint)
        self.requests[key] += 1
        if not ok:
            self.errors[key] += 1
        self.latency[key].observe(seconds)

    def add_tokens(self, usage: Usage) -> None:
        """Add a model call's usage to the totals."""
        self.tokens["input"] += usage.input_tokens
        self.tokens["output"] += usage.output_tokens

    def render(self, extra: dict[str, float] | None = None) -> str:
        """The Prometheus exposition text."""
        ci = f'ci="{self.ai_id}"'
        out = [
            "# HELP tekton_requests_total Requests handled, by transport and endpoint.",
            "# TYPE tekton_requests_total counter",
        ]
        for (transport, endpoint), n in sorted(self.requests.items()):
            out.append(
                f'tekton_requests_total{{{ci},transport="{transport}",endpoint="{endpoint}"}} {n}'
            )
        out += [
            "# HELP tekton_request_errors_total Requests answered with an error.",
            "# TYPE tekton_request_errors_total counter",
        ]
        for (transport, endpoint), n in sorted(self.errors.items()):
            out.append(
                f'tekton_request_errors_total{{{ci},transport="{transport}",'
                f'endpoint="{endpoint}"}} {n}'
            )
        out += [
            "# HELP tekton_request_duration_seconds Request latency.",
            "# TYPE tekton_request_duration_seconds histogram",
        ]
        for (transport, endpoint), hist in sorted(self.latency.items()):
            labels = f'{ci},transport="{transport}",endpoint="{endpoint}"'
            running = 0
            for bound, count in zip((*BUCKETS, float("inf")), hist.counts, strict=True):
                running += count
                le = "+Inf" if bound == float("inf") else repr(bound)
                out.append(
                    f'tekton_request_duration_seconds_bucket{{{labels},le="{le}"}} {running}'
                )
            out.append(f"tekton_request_duration_seconds_sum{{{labels}}} {hist.total:.6f}")
            out.append(f"tekton_request_duration_seconds_count{{{labels}}} {hist.count}")
        out += [
            "# HELP tekton_model_tokens_total Model tokens used.",
            "# TYPE tekton_model_tokens_total counter",
        ]
        for kind, n in self.tokens.items():
            out.append(f'tekton_model_tokens_total{{{ci},kind="{kind}"}} {n}')
        out += [
            "# TYPE tekton_socket_connections gauge",
            f"tekton_socket_connections{{{ci}}} {self.connections}",
        ]
        for name, value in (extra or {}).items():
            out += [f"# TYPE {name} gauge", f"{name}{{{ci}}} {value}"]
        return "\n".join(out) + "\n"
