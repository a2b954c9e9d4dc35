"""The terminal UI's view of run events, without an API (it says so and goes on)."""

from __future__ import annotations

from textual.widgets import Log

from tekton_cli.tui import TektonTUI
from tekton_common.contract.events import StageProgress

NOWHERE = "http://127.0.0.1:9"  # nothing listens on the discard port


async def test_a_persons_question_is_shown_under_the_wait() -> None:
    app = TektonTUI(NOWHERE)
    async with app.run_test(size=(160, 40)) as pilot:
        await pilot.pause(0.2)
        assert app.sub_title.startswith("API unreachable")
        log = app.query_one("#transcript", Log)
        asked = "Stage: plan\nGoal: rate limits\nReply with your position."
        waiting = StageProgress(
            stage="plan",
            step="awaiting answer",
            detail="skeptic waits for a person: tekton answer d1 --role skeptic",
            role="skeptic",
            ask=asked,
        )
        app.show(waiting, log)
        app.show(StageProgress(stage="plan", step="awaiting answer", detail="no question"), log)
        await pilot.pause(0.1)
        lines = list(log.lines)
    assert lines[:5] == [
        "plan: skeptic waits for a person: tekton answer d1 --role skeptic",
        "  skeptic is asked:",
        "    Stage: plan",
        "    Goal: rate limits",
        "    Reply with your position.",
    ]
    assert lines[5:] == ["plan: no question"]
