"""Approval gates read from a run's event log: which gate waits, a decision repeated,
a gate already decided, a decision on the wrong stage, an edit held to the schema."""

from __future__ import annotations

import msgspec
import pytest

from tekton_common.contract.events import (
    DecisionRecorded,
    RunFailed,
    RunResumed,
    RunStarted,
    StageAwaitingApproval,
)
from tekton_common.contract.runs import DecisionRequest
from tekton_common.errors import ConflictError, ProtocolError
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
