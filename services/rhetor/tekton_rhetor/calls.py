"""Calling a CI for one debate turn: a timeout, one retry, and the outcome as data."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import msgspec
import nats.errors
from nats.aio.client import Client

from tekton_common.catalog import CIId
from tekton_common.client import ERROR_CODE_HEADER, ERROR_HEADER
from tekton_common.subjects import ci_chat
from tekton_common.wire import Response, total_tokens


@dataclass
class Counters:
    """Per-CI numbers the roster reports."""

    turns: int = 0
    failures: int = 0
    latency_total: float = 0.0
    tokens: int = 0

    @property
    def mean_latency(self) -> float:
        """Mean seconds per successful turn."""
        ok = self.turns - self.failures
        return self.latency_total / ok if ok > 0 else 0.0


@dataclass
class Attempt:
    """What one call produced: a reply, or an error and whether it was a timeout."""

    reply: Response | None = None
    error: str | None = None
    timed_out: bool = False
    latency: float = 0.0


@dataclass
class CallStats:
    """Counters for every CI this Rhetor has called."""

    by_ci: dict[str, Counters] = field(default_factory=dict)

    def record(self, ci: str, attempt: Attempt) -> None:
        """Count one call."""
        counters = self.by_ci.setdefault(ci, Counters())
        counters.turns += 1
        if attempt.reply is None:
            counters.failures += 1
            return
        counters.latency_total += attempt.latency
        counters.tokens += total_tokens(attempt.reply.usage)


async def call_ci(
    nc: Client, ci: str, payload: dict[str, Any], timeout: float, stats: CallStats
) -> Attempt:
    """One chat request to a CI over NATS (its queue group picks a live replica)."""
    started = time.perf_counter()
    attempt = Attempt()
    try:
        msg = await nc.request(
            ci_chat(CIId.from_str(ci)), msgspec.json.encode(payload), timeout=timeout
        )
        headers = msg.headers or {}
        if ERROR_CODE_HEADER in headers:
            attempt.error = f"{ci}: {headers.get(ERROR_HEADER)} ({headers[ERROR_CODE_HEADER]})"
        else:
            attempt.reply = msgspec.json.decode(msg.data, type=Response)
    except nats.errors.NoRespondersError:
        attempt.error = f"{ci} unavailable (no replica on NATS)"
    except (TimeoutError, nats.errors.TimeoutError):
        attempt.error, attempt.timed_out = f"{ci} timed out after {timeout:g}s", True
    except (msgspec.DecodeError, nats.errors.Error) as exc:
        attempt.error = f"{ci}: {type(exc).__name__}: {exc}"
    attempt.latency = time.perf_counter() - started
    stats.record(ci, attempt)
    return attempt
