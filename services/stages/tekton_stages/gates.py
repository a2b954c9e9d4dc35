"""Approval gates, read from a run's event log: which gate waits, which decisions were
made, and whether a new decision may be recorded. The log is the only state: a paused
run holds nothing in memory, and any stages process can take the decision."""

from __future__ import annotations

import time
from collections.abc import Sequence

from pydantic import ValidationError

from tekton_common.artifacts import artifact_model
from tekton_common.contract.debates import DebateResult
from tekton_common.contract.events import (
    TERMINAL,
    AnyRunEvent,
    DecisionRecorded,
    RunResumed,
    StageAwaitingApproval,
    StageBlocked,
)
from tekton_common.contract.runs import DecisionMade, DecisionRequest, RunRequest
from tekton_common.contract.schemas import JsonObject
from tekton_common.errors import ConflictError, ProtocolError
from tekton_common.settings import Settings


def gated(request: RunRequest, settings: Settings) -> set[str]:
    """The stages whose artifact waits for a person: the run's, and the configuration's."""
    return {*request.approve, *settings.approve}


def awaiting(events: Sequence[AnyRunEvent]) -> StageAwaitingApproval | None:
    """The gate the run waits at: the last one asked that no decision answered (and
    that did not time out: a run that ended waits for nothing)."""
    for event in reversed(events):
        if isinstance(event, (DecisionRecorded, RunResumed, *TERMINAL)):
            return None
        if isinstance(event, StageAwaitingApproval):
            return event
    return None


def since_last_went_on(events: Sequence[AnyRunEvent]) -> Sequence[AnyRunEvent]:
    """The events after the run last resumed or ended (older decisions are answered)."""
    marks = [i for i, e in enumerate(events) if isinstance(e, (RunResumed, *TERMINAL))]
    return events[marks[-1] + 1 :] if marks else events


def decisions(events: Sequence[AnyRunEvent]) -> dict[str, DecisionRecorded]:
    """The decision on each gated stage."""
    return {e.stage: e for e in events if isinstance(e, DecisionRecorded)}


def recorded(events: Sequence[AnyRunEvent], ask: DecisionRequest) -> DecisionRecorded | None:
    """This very decision, when it was recorded before (sent twice, it is one)."""
    same = [e for e in events if isinstance(e, DecisionRecorded)]
    return next((e for e in same if e.decision_id == ask.decision_id), None)


def check(events: Sequence[AnyRunEvent], ask: DecisionRequest) -> StageAwaitingApproval:
    """The gate `ask` decides; a clear error when there is none or it was decided."""
    gate = awaiting(events)
    made = decisions(events)
    if gate is None:
        stage = ask.stage or (max(made.values(), key=lambda e: e.seq).stage if made else None)
        if stage in made:
            done = made[stage]
            raise ConflictError(
                f"run {ask.run_id}: the {stage} gate was already decided "
                f"({done.decision} by {done.by}, decision {done.decision_id})"
            )
        raise ProtocolError(f"run {ask.run_id} is not awaiting a decision")
    if ask.stage is not None and ask.stage != gate.stage:
        raise ProtocolError(
            f"run {ask.run_id} awaits a decision on {gate.stage}, not on {ask.stage}"
        )
    return gate


def kept_artifact(gate: StageAwaitingApproval, decision: DecisionRecorded) -> JsonObject:
    """What flows on from a gate approved or edited."""
    return decision.artifact if decision.artifact is not None else gate.artifact


def edited(stage: str, artifact: JsonObject) -> JsonObject:
    """A person's artifact for `stage`, held to the stage's schema (ProtocolError with
    what is wrong, else the artifact as the schema writes it)."""
    try:
        kept: JsonObject = artifact_model(stage).model_validate(artifact).model_dump(mode="json")
    except ValidationError as exc:
        wrong = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or '(root)'}: {e['msg']}" for e in exc.errors()[:10]
        )
        raise ProtocolError(
            f"the edited {stage} artifact does not follow its schema: {wrong}"
        ) from None
    return kept


def summary(stage: str, artifact: JsonObject, rationale: str) -> str:
    """What a person reads first about a gated stage's artifact."""
    fields = ", ".join(
        f"{k} ({len(v)})" if isinstance(v, list) else k for k in artifact for v in [artifact[k]]
    )
    return f"{stage}: {rationale[:500]}\nartifact fields: {fields}"


def pause(
    stage: str, artifact: JsonObject, debate: DebateResult, timeout: float | None
) -> StageAwaitingApproval:
    """The event a gated stage's run pauses with (`timeout`: seconds it may wait)."""
    return StageAwaitingApproval(
        deadline=round(time.time() + timeout, 3) if timeout is not None else None,
        stage=stage,
        artifact=artifact,
        summary=summary(stage, artifact, debate.rationale),
        tokens=debate.total_tokens,
        cost_usd=debate.cost_usd,
        duration_s=debate.duration_s,
        confidence=debate.confidence,
    )


def expired(gate: StageAwaitingApproval) -> StageBlocked:
    """What a gate nobody decided in time becomes."""
    return StageBlocked(stage=gate.stage, reason="no decision before the approval timeout")


def made(decision: DecisionRecorded, repeated: bool = False) -> DecisionMade:
    """The reply to a decision."""
    return DecisionMade(
        run_id=decision.run_id,
        stage=decision.stage,
        decision=decision.decision,
        decision_id=decision.decision_id,
        by=decision.by,
        repeated=repeated,
    )
