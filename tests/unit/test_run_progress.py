"""The live progress of a run on a terminal: lines above, the bar following stages."""

from __future__ import annotations

import io

from rich.console import Console

from tekton_cli.progress import RunProgress
from tekton_cli.timeline import event_line
from tekton_common.contract.events import (
    RunResumed,
    RunStarted,
    StageFinished,
    StageProgress,
    StageStarted,
)


def finished(stage: str) -> StageFinished:
    return StageFinished(
        stage=stage, status="approved", tokens=10, cost_usd=0.0, duration_s=1.0, confidence=0.9
    )


def test_bar_follows_the_stages_and_lines_print_above() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=120)
    events = [
        RunStarted(goal="Add rate limiting", stages=["plan", "code"], output="o", request={}),
        StageStarted(stage="plan", debate_id="d1"),
        StageProgress(stage="plan", step="round 1", accept_share=0.5),
    ]
    with RunProgress(console) as live:
        for event in events:
            live.show(event, event_line(event))
        (task,) = live.bar.tasks
        assert (task.description, task.completed, task.total) == ("plan: round 1", 0, 2)
        live.show(finished("plan"), event_line(finished("plan")))
        assert (task.description, task.completed) == ("plan: approved", 1)
    text = out.getvalue()
    assert "run : Add rate limiting" in text and "✓ plan approved in 1.00s" in text


def test_resumed_run_counts_what_was_done() -> None:
    console = Console(file=io.StringIO(), force_terminal=True)
    with RunProgress(console) as live:
        live.show(RunResumed(done=["plan", "research"], remaining=["code"]), None)
        (task,) = live.bar.tasks
        assert (task.completed, task.total) == (2, 3)
