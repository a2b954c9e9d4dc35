"""Sophia's tool: measurements of the fleet, from what it publishes.

- requests, errors and mean latency per service and endpoint: ``$SRV.STATS`` on the bus;
- latency percentiles: the ``tekton_request_duration_seconds`` histograms each
  registered instance serves on its HTTP port's ``/metrics`` (network, never a file);
- tokens and cost per UTC day: the usage stream ``TEKTON_USAGE``.
"""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Annotated

import httpx
import msgspec
from nats.aio.client import Client
from prometheus_client.parser import text_string_to_metric_families

from tekton_common.contract.platform import MicroReply
from tekton_common.gather import gather_all
from tekton_common.registry import read_bucket
from tekton_common.settings import Settings
from tekton_common.subjects import srv
from tekton_common.tools.base import Tool
from tekton_common.usage import day_of, read_usage
from tekton_common.wire import RegistryRecord

HISTOGRAM = "tekton_request_duration_seconds"


class MeasureInput(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """How far back the tokens go."""

    days: Annotated[int, msgspec.Meta(ge=1, le=90, description="UTC days of tokens")] = 7


class Traffic(msgspec.Struct, frozen=True):
    """One service's endpoints together, as ``$SRV.STATS`` counts them."""

    service: str
    requests: int
    errors: int
    error_rate: float
    mean_latency_ms: float


class Latency(msgspec.Struct, frozen=True):
    """One instance's request latency, estimated from its histogram's buckets."""

    ci: str
    instance: str
    requests: int
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None


class DayTokens(msgspec.Struct, frozen=True):
    """Tokens and cost of one UTC day."""

    day: str
    calls: int
    tokens: int
    cost_usd: float


class Measures(msgspec.Struct, frozen=True):
    """What Sophia measured, and which instances' metrics could not be read."""

    traffic: list[Traffic]
    latency: list[Latency]
    tokens: list[DayTokens]
    unreachable: list[str]


def quantile(buckets: list[tuple[float, float]], q: float) -> float | None:
    """The `q` quantile of cumulative (upper bound, count) buckets, interpolated within
    its bucket (None without observations; the largest finite bound past the last)."""
    buckets = sorted(buckets)
    total = buckets[-1][1] if buckets else 0.0
    if total <= 0:
        return None
    rank, lower, below = q * total, 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if bound == float("inf"):
                return lower
            share = (rank - below) / (count - below) if count > below else 1.0
            return lower + (bound - lower) * share
        lower, below = bound, count
    return lower


def _latency(record: RegistryRecord, text: str) -> Latency:
    buckets: dict[float, float] = {}
    for family in text_string_to_metric_families(text):
        if family.name != HISTOGRAM:
            continue
        for sample in family.samples:
            if sample.name.endswith("_bucket"):
                bound = float(sample.labels["le"])
                buckets[bound] = buckets.get(bound, 0.0) + sample.value
    pairs = list(buckets.items())
    ms = [quantile(pairs, q) for q in (0.5, 0.95, 0.99)]
    requests = int(max(buckets.values(), default=0))
    p50, p95, p99 = (round(v * 1000, 3) if v is not None else None for v in ms)
    return Latency(record.ci, record.instance, requests, p50, p95, p99)


def _traffic(reply: MicroReply) -> Traffic:
    endpoints = reply.endpoints or []
    requests = sum(e.num_requests or 0 for e in endpoints)
    errors = sum(e.num_errors or 0 for e in endpoints)
    busy_ns = sum((e.average_processing_time or 0) * (e.num_requests or 0) for e in endpoints)
    return Traffic(
        service=reply.name,
        requests=requests,
        errors=errors,
        error_rate=round(errors / requests, 4) if requests else 0.0,
        mean_latency_ms=round(busy_ns / requests / 1e6, 3) if requests else 0.0,
    )


def sophia_tools(nc: Client, settings: Settings) -> list[Tool]:
    """The measurement tool."""

    async def scrape(http: httpx.AsyncClient, record: RegistryRecord) -> Latency | str:
        # an instance on this machine listens where this one's settings say
        host = settings.host if record.host == socket.gethostname() else record.host
        try:
            page = await http.get(f"http://{host}:{record.component_port}/metrics")
            page.raise_for_status()
        except httpx.HTTPError as exc:
            return f"{record.ci}.{record.instance} ({type(exc).__name__})"
        return _latency(record, page.text)

    async def measure(asked: MeasureInput) -> Measures:
        stats = await gather_all(nc, srv("STATS"), deadline=0.5)
        traffic = [_traffic(msgspec.json.decode(m.data, type=MicroReply)) for m in stats]
        records = await read_bucket(nc)
        async with httpx.AsyncClient(timeout=2.0) as http:
            scraped = await asyncio.gather(*(scrape(http, r) for r in records))
        totals = await read_usage(nc)
        days = {day_of(time.time() - 86400 * n) for n in range(asked.days)}
        tokens = [
            DayTokens(day, t.calls, t.tokens, round(t.cost_usd, 8))
            for day, t in sorted(totals.by_day.items())
            if day in days
        ]
        return Measures(
            traffic=sorted(traffic, key=lambda t: (-t.requests, t.service)),
            latency=sorted((s for s in scraped if isinstance(s, Latency)), key=lambda x: x.ci),
            tokens=tokens,
            unreachable=sorted(s for s in scraped if isinstance(s, str)),
        )

    def line(found: Measures) -> str:
        requests = sum(t.requests for t in found.traffic)
        errors = sum(t.errors for t in found.traffic)
        worst = max(found.latency, key=lambda x: x.p95_ms or 0.0, default=None)
        said = f"{requests} requests, {errors} errors over {len(found.traffic)} services"
        if worst is not None and worst.p95_ms is not None:
            said += f"; slowest p95 {worst.p95_ms} ms ({worst.ci})"
        if found.tokens:
            said += f"; {found.tokens[-1].tokens:,} tokens on {found.tokens[-1].day}"
        return said

    return [
        Tool(
            ci="sophia",
            name="metrics",
            description="Measurements of the fleet: requests, errors and mean latency per "
            "service ($SRV.STATS), latency percentiles per instance (its /metrics), "
            "tokens and cost per UTC day (the usage stream).",
            input=MeasureInput,
            output=Measures,
            run=measure,
            summary=line,
            keywords=("metrics", "latency", "errors", "slow", "slowest", "percentile", "tokens"),
        )
    ]
