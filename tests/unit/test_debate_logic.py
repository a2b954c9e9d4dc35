"""The debate's decisions, with scripted replies in place of the CIs (no NATS): early
consensus, impossible quorum, the mediator's repair loop, and each way a debate blocks."""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

import pytest

from tekton_common.budget import BudgetGuard
from tekton_common.contract.debates import DebateRequest
from tekton_common.contract.events import DebateEvent, RepairAsked, RoundEnded
from tekton_common.wire import ChatRequest, Response, Usage
from tekton_rhetor.calls import Attempt
from tekton_rhetor.debate import Debate

ARTIFACT = {
    "summary": "s",
    "decision": "d",
    "rationale": "r",
    "actions": ["a"],
    "confidence": 0.9,
}


def position(vote: str, confidence: float = 0.9) -> str:
    return json.dumps({"position": f"I vote {vote}", "self_confidence": confidence, "vote": vote})


def outcome(artifact: Any = None, status: str = "approved", confidence: float = 0.9) -> str:
    body = {
        "artifact": ARTIFACT if artifact is None else artifact,
        "status": status,
        "rationale": "weighed the positions",
        "confidence": confidence,
    }
    return json.dumps(body)


class Script:
    """Replies per role, taken in order; None is a CI that does not answer. Every
    request is kept, so a test can read what the mediator was told."""

    def __init__(self, **replies: list[str | None]) -> None:
        self.replies = {role: list(items) for role, items in replies.items()}
        self.asked: dict[str, list[ChatRequest]] = defaultdict(list)

    async def __call__(self, ci: str, request: ChatRequest, timeout: float) -> Attempt:
        role = str((request.context or {})["debate_role"])
        self.asked[role].append(request)
        queue = self.replies[role]
        reply = queue.pop(0) if len(queue) > 1 else queue[0]
        if reply is None:
            return Attempt(error=f"{ci} timed out after {timeout:g}s", timed_out=True)
        usage = Usage(input_tokens=10, output_tokens=5)
        return Attempt(reply=Response(ci, reply, "simulated", usage, 0.01), latency=0.01)


async def debate(script: Script, **fields: Any) -> tuple[Any, list[DebateEvent]]:
    events: list[DebateEvent] = []

    async def publish(event: DebateEvent) -> None:
        events.append(event)

    request = DebateRequest(prompt="Adopt JetStream?", **fields)
    result = await Debate(request, script, BudgetGuard("rhetor"), 5.0, publish).run()
    return result, events


def agreeing(**overrides: list[str | None]) -> Script:
    replies: dict[str, list[str | None]] = {
        "proponent": [position("accept")],
        "skeptic": [position("accept")],
        "pragmatist": [position("accept")],
        "mediator": [outcome()],
    }
    replies.update(overrides)
    return Script(**replies)


async def test_consensus_in_the_first_round_skips_the_rest() -> None:
    script = agreeing()
    result, events = await debate(script, max_rounds=3)
    assert result.status == "approved", result.reason
    assert result.loops_run == 1
    assert result.artifact == ARTIFACT
    assert result.total_tokens == 4 * 15
    assert [e.round for e in events if isinstance(e, RoundEnded)] == [1]


async def test_debate_runs_every_round_until_the_share_is_reached() -> None:
    script = agreeing(
        skeptic=[position("reject"), position("accept")],
        pragmatist=[position("revise"), position("accept")],
    )
    result, _ = await debate(script, max_rounds=3)
    assert result.status == "approved"
    assert result.loops_run == 2
    # the second round's question carries the others' first-round positions
    first, second = script.asked["skeptic"][:2]
    assert "Round 1 positions:" in second.content and "I vote revise" in second.content
    assert "I vote reject" not in second.content  # its own is in its thread
    # and its prompt begins with everything the first one held, then what it answered
    # (so a provider's prompt cache serves that part again), marked as the shared prefix
    assert second.history[: len(first.history)] == first.history
    assert second.history[len(first.history)].content == first.content
    assert second.history[len(first.history) + 1].content == position("reject")
    assert second.cache_prefix == len(second.history) == len(first.history) + 2


async def test_two_abstentions_make_quorum_impossible() -> None:
    script = agreeing(skeptic=[None], pragmatist=[None])
    result, _ = await debate(script)
    assert result.status == "blocked"
    assert result.reason.startswith("quorum impossible")
    assert not script.asked["mediator"]
    # an unanswered turn is asked once more before the debater abstains
    assert len(script.asked["skeptic"]) == 2


async def test_no_quorum_blocks_after_the_last_round() -> None:
    script = agreeing(skeptic=[position("reject")], pragmatist=[position("revise")])
    result, _ = await debate(script, max_rounds=2)
    assert result.status == "blocked"
    assert result.loops_run == 2
    assert result.reason.startswith("no quorum: weighted accept share 0.33 < 0.67")


async def test_mediator_is_told_the_threshold_in_force() -> None:
    script = agreeing()
    await debate(script, threshold=0.9)
    assert "threshold of 0.90" in script.asked["mediator"][0].content


async def test_invalid_artifact_is_repaired_with_its_errors() -> None:
    broken = {k: v for k, v in ARTIFACT.items() if k != "actions"}
    script = agreeing(mediator=[outcome(broken), outcome()])
    result, events = await debate(script)
    assert result.status == "approved"
    assert result.repairs == 1
    (repair,) = [e for e in events if isinstance(e, RepairAsked)]
    assert any("actions" in error for error in repair.errors)
    assert "actions" in script.asked["mediator"][1].content


async def test_repairs_run_out() -> None:
    script = agreeing(mediator=["not json at all"])
    result, _ = await debate(script, max_repairs=1)
    assert result.status == "blocked"
    assert result.reason.startswith("failed repair after 1 attempts")
    assert len(script.asked["mediator"]) == 2


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        (outcome(status="blocked"), "mediator blocked"),
        (outcome(confidence=0.2), "low confidence: 0.20 < 0.70"),
    ],
)
async def test_mediator_verdicts_that_block(reply: str, reason: str) -> None:
    result, _ = await debate(agreeing(mediator=[reply]))
    assert result.status == "blocked"
    assert result.reason.startswith(reason)
    assert result.artifact is None


async def test_silent_mediator_blocks_as_unavailable_work() -> None:
    result, _ = await debate(agreeing(mediator=[None]))
    assert result.status == "blocked"
    assert result.reason.startswith("timeout: mediator")


async def test_consensus_free_asks_the_proponent_alone() -> None:
    script = agreeing(skeptic=[None], pragmatist=[None])
    result, _ = await debate(script, consensus_free=True)
    assert result.status == "approved"
    assert not script.asked["skeptic"] and not script.asked["pragmatist"]
    assert "Consensus-free" in script.asked["mediator"][0].content


async def test_token_budget_stops_before_the_mediator() -> None:
    result, _ = await debate(agreeing(skeptic=[position("reject")]), token_budget=40)
    assert result.status == "blocked"
    assert result.reason.startswith("budget: ")
