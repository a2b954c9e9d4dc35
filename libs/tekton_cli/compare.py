"""`tekton runs diff RUN_A RUN_B`: two runs side by side, then what changed."""

from __future__ import annotations

from typing import Any

from tekton_cli.output import print_json, table
from tekton_common.client import Tekton
from tekton_common.rundiff import RunDiff, RunSummary, Side, compare
from tekton_common.settings import Settings


async def diff(settings: Settings, run_a: str, run_b: str, as_json: bool) -> int:
    """Compare two runs; exit 0 (their differences are what is asked, not a failure)."""
    async with Tekton.connect(settings) as tekton:
        found = compare(await tekton.events(run_a), await tekton.events(run_b))
    print_json(found) if as_json else print(render(found))
    return 0


def _side(side: Side) -> str:
    if side.status == "reused":
        return f"reused from {side.reused_from}"
    said = side.status
    if side.confidence is not None and side.status != "blocked":
        said += f" {side.confidence:.2f}"
    if side.tokens:
        said += f", {side.tokens} tok ${side.cost_usd:.4f} {side.duration_s:.1f}s"
    if side.votes:
        said += ", " + " ".join(f"{role[:4]}:{vote}" for role, vote in side.votes.items())
    if side.checks:
        failed = [name for name, ok in side.checks.items() if not ok]
        said += ", checks " + (f"failed: {' '.join(failed)}" if failed else "passed")
    return said


def _run(run: RunSummary) -> str:
    fork = f", a fork of {run.fork_of}" if run.fork_of else ""
    return (
        f"{run.run_id} ({run.status}{fork}): {run.tokens} tokens, ${run.cost_usd:.4f}, "
        f"{run.duration_s:.1f} s; goal {run.goal[:80]!r}"
    )


def _value(value: Any) -> str:
    return repr(value) if isinstance(value, str) else str(value)


def render(found: RunDiff) -> str:
    """The comparison as text: the runs, a table of stages, then each stage's changes."""
    lines = [f"A {_run(found.a)}", f"B {_run(found.b)}", ""]
    rows = [
        (s.stage, _side(s.a), _side(s.b), "same" if s.same_artifact else f"{len(s.changes)} diff")
        for s in found.stages
    ]
    lines.append(table(["STAGE", "A", "B", "ARTIFACT"], rows))
    for stage in found.stages:
        if stage.changes:
            lines.append(f"\n{stage.stage}: {len(stage.changes)} differences (A → B)")
            for change in stage.changes:
                if change.kind == "added":
                    lines.append(f"  + {change.path}: {_value(change.b)}")
                elif change.kind == "removed":
                    lines.append(f"  - {change.path}: {_value(change.a)}")
                else:
                    lines.append(f"  ~ {change.path}: {_value(change.a)} → {_value(change.b)}")
        if stage.diff_of_diffs:
            lines.append(f"\n{stage.stage}: how B's change differs from A's")
            lines.append(stage.diff_of_diffs)
    return "\n".join(lines)
