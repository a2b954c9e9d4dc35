"""A run made again, read from event logs: the request a run goes on with (a retry may
change it), what a retry runs again and why it was blocked, what a fork reuses of
another run, and what a run has spent so far. Pure functions over the log; the
coordinator does the work."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec

from tekton_common.contract.codec import convert
from tekton_common.contract.events import (
    AnyRunEvent,
    ArtifactCreated,
    DebateTurn,
    RunFailed,
    RunResumed,
    RunStarted,
    StageBlocked,
)
from tekton_common.contract.runs import ForkRequest, RetryRequest, RunRequest, Tuning
from tekton_common.contract.schemas import JsonObject
from tekton_common.errors import ProtocolError
from tekton_common.stages import DIAMOND, select


def started_of(events: Sequence[AnyRunEvent]) -> RunStarted:
    """The run's RunStarted (its log's first event)."""
    first = events[0] if events else None
    if not isinstance(first, RunStarted):
        run_id = first.run_id if first else "?"
        raise ProtocolError(f"run {run_id}: its log does not begin with RunStarted")
    return first


def request_of(events: Sequence[AnyRunEvent]) -> RunRequest:
    """The request the run goes on with: the last retry's, else RunStarted's (without
    the fields older versions had: ``output``; ``repo``, a path no request may name)."""
    return requests_of(events)[-1]


def requests_of(events: Sequence[AnyRunEvent]) -> list[RunRequest]:
    """Every request the run was asked or went on with: RunStarted's, then each retry's."""
    changed = [e.request for e in events if isinstance(e, RunResumed) and e.request]
    return [read_request(stored) for stored in [started_of(events).request, *changed]]


def read_request(stored: dict[str, Any]) -> RunRequest:
    """A request as a log keeps it (without the fields older versions had: ``output``;
    ``repo``, a path no request may name)."""
    return convert({k: v for k, v in stored.items() if k not in ("output", "repo")}, RunRequest)


def tuned(request: RunRequest, ask: Tuning) -> RunRequest:
    """`request` with what `ask` changes (its model, threshold, rounds)."""
    changes = {
        name: value
        for name in ("model", "threshold", "max_rounds")
        if (value := getattr(ask, name)) is not None
    }
    return msgspec.structs.replace(request, **changes)


def retried(
    events: Sequence[AnyRunEvent], ask: RetryRequest, remaining: Sequence[str]
) -> tuple[str, RunRequest, str | None]:
    """The stage a retry runs again (the failed run's first unfinished one), the request
    from there on, and why the stage was blocked (what its debate is told)."""
    last = events[-1]
    if not isinstance(last, RunFailed):
        raise ProtocolError(
            f"run {ask.run_id} has not failed: a retry runs a failed run's blocked stage "
            "again (tekton runs watch follows a run; tekton run --resume continues one)"
        )
    if not remaining:
        raise ProtocolError(f"run {ask.run_id} failed after its last stage: nothing to retry")
    stage = remaining[0]
    if ask.stage is not None and ask.stage != stage:
        raise ProtocolError(f"run {ask.run_id} stopped at {stage}, not {ask.stage}: retry {stage}")
    blocked = [e for e in events if isinstance(e, StageBlocked) and e.stage == stage]
    why = (blocked[-1].reason if blocked else None) or last.reason
    return stage, tuned(request_of(events), ask), why


def forked(
    source: Sequence[AnyRunEvent], ask: ForkRequest
) -> tuple[RunRequest, list[str], dict[str, JsonObject]]:
    """A fork of the run whose log is `source`: its request (the source's goal,
    repository and settings, from `ask.from_stage` on, tuned), its stages, and the
    source's artifacts of the stages before them, reused as they are."""
    started = started_of(source)
    request = request_of(source)
    stages = select(ask.from_stage, request.to_stage)
    planned = {*started.reused, *started.stages}
    before = [s for s in DIAMOND[: DIAMOND.index(ask.from_stage)] if s in planned]
    made = {e.stage: e.artifact for e in source if isinstance(e, ArtifactCreated)}
    missing = [s for s in before if s not in made]
    if missing:
        raise ProtocolError(
            f"run {ask.fork_of} has no {missing[0]} artifact to reuse (it did not get that "
            f"far): fork it from {missing[0]} or earlier"
        )
    request = msgspec.structs.replace(
        tuned(request, ask),
        run_id=ask.run_id,
        from_stage=ask.from_stage,
        approve=request.approve if ask.approve is None else ask.approve,
    )
    return request, stages, {s: made[s] for s in before}


def spent(events: Sequence[AnyRunEvent]) -> tuple[int, float, float]:
    """Tokens, cost and seconds a run has spent so far, from its log: every debate turn
    it held (also those of stages blocked, repaired or retried), and the time from its
    start to its last event."""
    turns = [e.turn for e in events if isinstance(e, DebateTurn)]
    started = events[0].ts if events and isinstance(events[0], RunStarted) else 0.0
    took = round(max(0.0, events[-1].ts - started), 3) if started else 0.0
    return sum(t.tokens for t in turns), round(sum(t.cost_usd for t in turns), 6), took
