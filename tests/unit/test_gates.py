"""Approval gates read from a run's event log: which gate waits, a decision repeated,
a gate already decided, a decision on the wrong stage, an edit held to the schema."""

from __future__ import annotations

import time

import msgspec
import pytest

from tekton_cli import durations
from tekton_common.contract.debates import DebateResult
from tekton_common.contract.events import (
    DecisionRecorded,
    RunFailed,
    RunResumed,
    RunStarted,
    StageAwaitingApproval,
)
from tekton_common.contract.runs import DecisionRequest
from tekton_common.errors import ConfigError, ConflictError, ProtocolError
from tekton_stages import gates

START = RunStarted(run_id="r1", seq=1, goal="g", stages=["plan"], output="o", request={})


def gate(stage: str = "plan", seq: int = 2) -> StageAwaitingApproval:
    return StageAwaitingApproval(
        run_id="r1",
        seq=seq,
        stage=stage,
        artifact={"a": 1},
        summary="s",
        tokens=1,
        cost_usd=0.0,
        duration_s=0.1,
        confidence=0.9,
    )


def decided(decision: str = "approve", decision_id: str = "d1", seq: int = 3) -> DecisionRecorded:
    return DecisionRecorded(
        run_id="r1", seq=seq, stage="plan", decision=decision, decision_id=decision_id, by="al"
    )


def ask(decision: str = "approve", **fields: object) -> DecisionRequest:
    return msgspec.convert(
        {"run_id": "r1", "decision": decision, "by": "bo", **fields}, DecisionRequest
    )


def test_the_gate_waits_until_a_decision_or_a_resume() -> None:
    assert gates.awaiting([START, gate()]) == gate()
    assert gates.awaiting([START, gate(), decided()]) is None
    assert gates.awaiting([START, gate(), RunResumed(seq=3, done=[], remaining=[])]) is None
    assert gates.awaiting([START]) is None
    # a gate that timed out (its run blocked and failed) waits for nothing
    ended = RunFailed(seq=4, reason="plan blocked", duration_s=1.0, tokens=1, cost_usd=0.0)
    blocked = gates.expired(gate())
    assert blocked.stage == "plan" and "approval timeout" in blocked.reason
    assert gates.awaiting([START, gate(), blocked, ended]) is None


def test_a_gate_says_when_it_times_out() -> None:
    debate = DebateResult(
        debate_id="d",
        stage="plan",
        status="ok",
        reason=None,
        artifact={"a": 1},
        rationale="why",
        dissent=[],
        risks=[],
        checklist=[],
        confidence=0.8,
        votes={},
        accept_share=1.0,
        loops_run=1,
        repairs=0,
        roles={},
        transcript=[],
        total_tokens=1,
        cost_usd=0.0,
        duration_s=0.1,
    )
    before = time.time()
    timed = gates.pause("plan", {"a": 1}, debate, 90.0)
    assert timed.deadline is not None and before + 89.99 <= timed.deadline <= time.time() + 90.01
    assert gates.pause("plan", {"a": 1}, debate, None).deadline is None


def test_durations_on_the_command_line() -> None:
    assert durations.seconds("--t", "90") == 90.0
    assert durations.seconds("--t", "1.5m") == 90.0
    assert durations.seconds("--t", " 2h ") == 7200.0
    assert durations.seconds("--t", "7d") == 7 * 86400.0
    for wrong in ("", "soon", "-5s", "3y", "1h30m"):
        with pytest.raises(ConfigError, match=r"--t .*a duration such as 90s"):
            durations.seconds("--t", wrong)


def test_a_decision_repeated_is_found_and_another_is_refused() -> None:
    events = [START, gate(), decided()]
    assert gates.recorded(events, ask(decision_id="d1")) == decided()
    assert gates.recorded(events, ask(decision_id="d2")) is None
    with pytest.raises(ConflictError, match=r"the plan gate was already decided \(approve by al"):
        gates.check(events, ask("reject", comment="no", decision_id="d2"))
    with pytest.raises(ProtocolError, match="not awaiting a decision"):
        gates.check([START], ask())
    with pytest.raises(ProtocolError, match="awaits a decision on plan, not on code"):
        gates.check([START, gate()], ask(stage="code"))
    assert gates.check([START, gate()], ask()) == gate()


def test_what_a_decision_must_carry() -> None:
    with pytest.raises(msgspec.ValidationError, match="gives its reason"):
        ask("reject")
    with pytest.raises(msgspec.ValidationError, match="names its stage and carries"):
        ask("edit", artifact={"x": 1})
    with pytest.raises(msgspec.ValidationError, match="carries no artifact"):
        ask("approve", artifact={"x": 1})
    with pytest.raises(msgspec.ValidationError):
        ask(by="al; rm -rf /")


def test_an_edit_is_held_to_the_stage_schema() -> None:
    with pytest.raises(ProtocolError, match="the edited plan artifact does not follow its schema"):
        gates.edited("plan", {"goals": []})
    plan = {
        "goals": ["g"],
        "milestones": [{"name": "n", "deliverable": "d", "check": "c"}],
        "acceptance_criteria": ["a"],
        "risks": [],
        "confidence": 0.5,
    }
    assert gates.edited("plan", plan) == plan
    edit = msgspec.structs.replace(decided("edit"), artifact=plan)
    assert gates.kept_artifact(gate(), edit) == plan
    assert gates.kept_artifact(gate(), decided()) == {"a": 1}


def test_only_decisions_since_the_run_last_went_on_count() -> None:
    failed = RunFailed(run_id="r1", seq=5, ts=30.0, reason="x", duration_s=0, tokens=0, cost_usd=0)
    events = [
        msgspec.structs.replace(START, ts=10.0),
        gate(),
        decided("reject", seq=3),
        failed,
        RunResumed(run_id="r1", seq=6, done=[], remaining=["plan"]),
    ]
    assert gates.decisions(gates.since_last_went_on(events)) == {}  # the old rejection
    assert gates.decisions(gates.since_last_went_on(events[:3])) == {"plan": decided("reject")}
