"""Calling a CI for one debate turn: a timeout, a grace for an absent CI, and the
outcome as data."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import msgspec
import nats.errors
from nats.aio.client import Client

from tekton_common.bus import while_unanswered
from tekton_common.catalog import CIId
from tekton_common.client import error_of
from tekton_common.subjects import ci_chat
from tekton_common.wire import ChatRequest, Response, total_tokens

#: how long a turn waits for a CI nobody serves (restarting, or reconnecting) to return
ABSENT_GRACE = 5.0


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
    """What one call produced: a reply, or an error, its micro code (None when no reply
    came at all) and whether it was a timeout."""

    reply: Response | None = None
    error: str | None = None
    code: int | None = None
    timed_out: bool = False
    latency: float = 0.0

    @property
    def failure(self) -> str:
        """What kind of failure this was, in words: an unavailable CI is not a CI that
        failed, nor one that refused the request."""
        if self.timed_out:
            return "timeout"
        if self.code is None or self.code == 503:
            return "CI unavailable"
        if self.code == 429:
            return "over budget"
        if 400 <= self.code < 500:
            return "request refused"
        return "CI failed"


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
    nc: Client, ci: str, request: ChatRequest, timeout: float, stats: CallStats
) -> Attempt:
    """One chat request to a CI over NATS (its queue group picks a live replica)."""
    started = time.perf_counter()
    attempt = Attempt()
    try:
        subject, data = ci_chat(CIId.from_str(ci)), msgspec.json.encode(request)
        # while nobody serves the CI (restarting, or reconnecting after a NATS restart)
        # it is asked again for up to ABSENT_GRACE seconds
        msg = await while_unanswered(
            lambda: nc.request(subject, data, timeout=timeout), min(ABSENT_GRACE, timeout)
        )
        if (error := error_of(msg, ci)) is not None:
            attempt.code = error.code
            attempt.error = f"{error} ({error.code})"
        else:
            attempt.reply = msgspec.json.decode(msg.data, type=Response)
    except nats.errors.NoRespondersError:
        attempt.error = f"{ci} unavailable (no replica on NATS for {ABSENT_GRACE:g}s)"
    except (TimeoutError, nats.errors.TimeoutError):
        attempt.error, attempt.timed_out = f"{ci} timed out after {timeout:g}s", True
    except (msgspec.DecodeError, nats.errors.Error) as exc:
        attempt.error = f"{ci}: {type(exc).__name__}: {exc}"
    attempt.latency = time.perf_counter() - started
    stats.record(ci, attempt)
    return attempt


#: one turn's call: CI id, request, timeout → what came back (a debate's only way out)
Ask = Callable[[str, ChatRequest, float], Awaitable[Attempt]]


def asker(nc: Client, stats: CallStats) -> Ask:
    """Calls over NATS, counted in ``stats``."""

    async def ask(ci: str, request: ChatRequest, timeout: float) -> Attempt:
        return await call_ci(nc, ci, request, timeout, stats)

    return ask
