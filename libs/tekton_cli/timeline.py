"""A run's events as the lines of its live timeline (`tekton run`, `tekton runs watch`,
the terminal UI)."""

from __future__ import annotations

import time
from pathlib import Path

from tekton_common.contract.debates import TurnRecord
from tekton_common.contract.events import (
    AnyRunEvent,
    ArtifactCreated,
    ChecksFinished,
    DebateTurn,
    DecisionRecorded,
    RepairRequested,
    RunFailed,
    RunFinished,
    RunResumed,
    RunStarted,
    StageAwaitingApproval,
    StageBlocked,
    StageFinished,
    StageProgress,
    StageStarted,
)


def turn_vote(turn: TurnRecord) -> str:
    """What a debate turn said: a debater's vote, the mediator's verdict, or abstained."""
    if turn.position is not None:
        return turn.position.vote
    if turn.outcome and turn.outcome.get("status"):
        return str(turn.outcome["status"])
    return "abstained" if turn.abstained else "-"


def checks_lines(event: ChecksFinished) -> str:
    """The checks of one attempt: on the base (the first time), then on the change."""
    lines = [f"  checks of {event.stage} attempt {event.attempt} ({event.source}):"]
    lines += [f"    base   {r.summary()}" for r in event.base]
    lines += [f"    change {r.summary()}" for r in event.results]
    if event.failing:
        lines.append(f"    failing on the change: {', '.join(event.failing)}")
    if not event.results:
        lines.append("    no checks: the change was applied, nothing measured it")
    return "\n".join(lines)


def event_line(event: AnyRunEvent, local: Path | None = None) -> str | None:
    """One line of the live timeline (None for events not shown); `local` is where the
    command line keeps its copy of the run's artifacts, if it does."""
    match event:
        case RunStarted():
            fork = (
                f"\n  a fork of {event.fork_of}, reusing {', '.join(event.reused) or 'nothing'}"
                if event.fork_of
                else ""
            )
            return f"run {event.run_id}: {event.goal}\n  stages: {' → '.join(event.stages)}{fork}"
        case RunResumed():
            again = f"; {event.retry} again" if event.retry else ""
            return f"run {event.run_id} resumed{again}; done: {', '.join(event.done) or '-'}"
        case StageStarted():
            return f"▶ {event.stage}"
        case StageProgress():
            share = event.accept_share
            detail = f" (accept share {share:.2f})" if share is not None else ""
            detail += f": {event.detail}" if event.detail else ""
            return f"  {event.stage}: {event.step}{detail}"
        case DebateTurn():
            turn = event.turn
            model = f"{turn.model or '-':<24}"
            tokens = f"{turn.tokens} tok" + (
                f" ({turn.cache_read_input_tokens} cached)" if turn.cache_read_input_tokens else ""
            )
            return (
                f"    {turn.role:<10} {turn.ci:<14} {model} {turn_vote(turn):<9} "
                f"{turn.latency_s:.1f}s {tokens}"
            )
        case StageBlocked():
            return f"✗ {event.stage} blocked: {event.reason}"
        case ArtifactCreated():
            where = local / event.name if local else event.files[0]
            reused = f" (reused from run {event.reused_from})" if event.reused_from else ""
            return f"  artifact {event.name} → {where}{reused}"
        case StageFinished():
            return (
                f"✓ {event.stage} {event.status} in {event.duration_s:.2f}s "
                f"({event.tokens} tokens, ${event.cost_usd:.4f}, confidence "
                f"{event.confidence:.2f})"
            )
        case ChecksFinished():
            return checks_lines(event)
        case StageAwaitingApproval():
            until = (
                time.strftime(" until %Y-%m-%d %H:%M:%S UTC", time.gmtime(event.deadline))
                if event.deadline
                else ""
            )
            return (
                f"⏸ {event.stage} awaits a decision{until} (confidence "
                f"{event.confidence:.2f}): tekton runs approve {event.run_id}"
            )
        case DecisionRecorded():
            said = f": {event.comment}" if event.comment else ""
            return f"  {event.stage} {event.decision} by {event.by}{said}"
        case RepairRequested():
            first = event.reason.strip().splitlines()[0] if event.reason.strip() else ""
            return f"  ↻ {event.stage} again (attempt {event.attempt}): {first}"
        case RunFinished():
            branch = f"; branch {event.branch}" if event.branch else ""
            return (
                f"run finished in {event.duration_s:.2f}s: {len(event.artifacts)} "
                f"artifacts in {local or event.output} ({event.tokens} tokens, "
                f"${event.cost_usd:.4f}){branch}"
            )
        case RunFailed():
            return f"run failed: {event.reason}"
    return None
