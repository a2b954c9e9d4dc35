"""Two runs compared stage by stage, from their event logs: what each stage came to
(approved, blocked, reused from another run), what it cost (tokens, dollars, seconds,
from its debate turns), how the last round voted, which models spoke, how the checks
ran, and how the artifacts differ (JSON differences, and for a change its diff's own
diff). `tekton runs diff` and ``GET /runs/{a}/diff/{b}`` serve it."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from typing import Any

import msgspec

from tekton_common.contract.events import (
    AnyRunEvent,
    ArtifactCreated,
    ChecksFinished,
    DebateTurn,
    RunFailed,
    RunFinished,
    RunStarted,
    StageAwaitingApproval,
    StageBlocked,
    StageFinished,
    StageStarted,
)
from tekton_common.stages import DIAMOND

#: at most this many JSON differences per stage, and lines of a diff of diffs
MAX_CHANGES = 200
MAX_DIFF_LINES = 400
#: a value shown in a difference is cut to this many characters
MAX_VALUE = 300


class Side(msgspec.Struct):
    """One run's side of a stage."""

    status: str  # not run | running | approved | blocked | reused | awaiting approval
    reused_from: str | None = None
    tokens: int = 0
    cost_usd: float = 0.0
    duration_s: float = 0.0
    confidence: float | None = None
    #: the last round's vote per seat (the mediator's verdict as its status)
    votes: dict[str, str] = {}
    models: list[str] = []
    #: the last checks run for the stage: name → passed
    checks: dict[str, bool] = {}


class Change(msgspec.Struct):
    """One difference between two artifacts, at a path such as ``steps[2].title``."""

    path: str
    kind: str  # added | removed | changed
    a: Any = None
    b: Any = None


class StageDiff(msgspec.Struct):
    """A stage in both runs."""

    stage: str
    a: Side
    b: Side
    same_artifact: bool
    changes: list[Change] = []
    #: both artifacts carry a unified diff and they differ: how
    diff_of_diffs: str | None = None


class RunSummary(msgspec.Struct):
    """A run as a whole."""

    run_id: str
    goal: str
    status: str
    tokens: int
    cost_usd: float
    duration_s: float
    fork_of: str | None = None


class RunDiff(msgspec.Struct):
    """Run `a` against run `b`."""

    a: RunSummary
    b: RunSummary
    stages: list[StageDiff]


def _shown(value: Any) -> Any:
    if isinstance(value, str) and len(value) > MAX_VALUE:
        return value[:MAX_VALUE] + "…"
    if isinstance(value, dict | list):
        text = msgspec.json.encode(value).decode()
        return value if len(text) <= MAX_VALUE else text[:MAX_VALUE] + "…"
    return value


def json_changes(a: Any, b: Any, path: str = "") -> list[Change]:
    """The differences from `a` to `b` (objects by key, arrays by position)."""
    if isinstance(a, dict) and isinstance(b, dict):
        found: list[Change] = []
        for key in [*a, *(k for k in b if k not in a)]:
            where = f"{path}.{key}" if path else str(key)
            if key not in b:
                found.append(Change(where, "removed", a=_shown(a[key])))
            elif key not in a:
                found.append(Change(where, "added", b=_shown(b[key])))
            else:
                found += json_changes(a[key], b[key], where)
        return found
    if isinstance(a, list) and isinstance(b, list):
        found = []
        for i in range(max(len(a), len(b))):
            where = f"{path}[{i}]"
            if i >= len(b):
                found.append(Change(where, "removed", a=_shown(a[i])))
            elif i >= len(a):
                found.append(Change(where, "added", b=_shown(b[i])))
            else:
                found += json_changes(a[i], b[i], where)
        return found
    return [] if a == b else [Change(path or "(artifact)", "changed", _shown(a), _shown(b))]


def diff_of_diffs(a: str, b: str, a_name: str, b_name: str) -> str:
    """How run `b`'s unified diff differs from run `a`'s."""
    lines = list(
        difflib.unified_diff(
            a.splitlines(),
            b.splitlines(),
            f"{a_name}/diff.patch",
            f"{b_name}/diff.patch",
            lineterm="",
        )
    )
    cut = lines[:MAX_DIFF_LINES]
    if len(lines) > MAX_DIFF_LINES:
        cut.append(f"… {len(lines) - MAX_DIFF_LINES} more lines")
    return "\n".join(cut)


def _side(events: Sequence[AnyRunEvent], stage: str) -> tuple[Side, dict[str, Any] | None]:
    """A run's side of `stage`, and its artifact."""
    side = Side("not run")
    artifact: dict[str, Any] | None = None
    turns = []
    for event in events:
        if getattr(event, "stage", None) != stage:
            continue
        match event:
            case StageStarted():
                side.status = "running"
            case DebateTurn():
                turns.append(event.turn)
            case StageAwaitingApproval():
                side.status, side.confidence = "awaiting approval", event.confidence
                side.duration_s = event.duration_s
            case StageBlocked():
                side.status = "blocked"
            case StageFinished():
                side.status, side.confidence = event.status, event.confidence
                side.duration_s = event.duration_s
            case ArtifactCreated():
                artifact = event.artifact
                if event.reused_from:
                    side.status, side.reused_from = "reused", event.reused_from
            case ChecksFinished():
                side.checks = {r.name: r.ok for r in event.results}
    side.tokens = sum(t.tokens for t in turns)
    side.cost_usd = round(sum(t.cost_usd for t in turns), 6)
    side.models = sorted({t.model for t in turns if t.model})
    last = max((t.round for t in turns if t.position is not None), default=None)
    side.votes = {t.role: t.position.vote for t in turns if t.round == last and t.position}
    verdicts = [t for t in turns if t.outcome is not None]
    if verdicts and isinstance(status := (verdicts[-1].outcome or {}).get("status"), str):
        side.votes[verdicts[-1].role] = status
    return side, artifact


def summary(events: Sequence[AnyRunEvent]) -> RunSummary:
    """A run's goal, how it ended and what it spent (its turns; its last end's time)."""
    first, last = events[0], events[-1]
    started = first if isinstance(first, RunStarted) else None
    turns = [e.turn for e in events if isinstance(e, DebateTurn)]
    status = {RunFinished: "finished", RunFailed: "failed"}.get(type(last), "running")
    if isinstance(last, StageAwaitingApproval):
        status = "awaiting approval"
    ended = next((e for e in reversed(events) if isinstance(e, RunFinished | RunFailed)), None)
    return RunSummary(
        run_id=first.run_id,
        goal=started.goal if started else "",
        status=status,
        tokens=sum(t.tokens for t in turns),
        cost_usd=round(sum(t.cost_usd for t in turns), 6),
        duration_s=ended.duration_s if ended else 0.0,
        fork_of=started.fork_of if started else None,
    )


def compare(a: Sequence[AnyRunEvent], b: Sequence[AnyRunEvent]) -> RunDiff:
    """Run `a` against run `b`, stage by stage (the stages either went through)."""
    one, two = summary(a), summary(b)
    stages = []
    for stage in DIAMOND:
        side_a, made_a = _side(a, stage)
        side_b, made_b = _side(b, stage)
        if side_a.status == side_b.status == "not run":
            continue
        changes = json_changes(made_a or {}, made_b or {}) if made_a != made_b else []
        told = None
        patch_a, patch_b = (made_a or {}).get("diff"), (made_b or {}).get("diff")
        if isinstance(patch_a, str) and isinstance(patch_b, str) and patch_a != patch_b:
            told = diff_of_diffs(patch_a, patch_b, one.run_id, two.run_id)
        stages.append(
            StageDiff(
                stage=stage,
                a=side_a,
                b=side_b,
                same_artifact=made_a is not None and made_a == made_b,
                changes=changes[:MAX_CHANGES],
                diff_of_diffs=told,
            )
        )
    return RunDiff(a=one, b=two, stages=stages)
