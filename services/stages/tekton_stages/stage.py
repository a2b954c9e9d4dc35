"""One stage: build the prompt, ask Rhetor for a debate, check the artifact.

Endpoint ``tekton.stage.<stage>.run``. The prompt carries the goal and the artifacts of
earlier stages; the debate is held to the stage's artifact schema, and the artifact is
validated once more here before it is returned.
"""

from __future__ import annotations

import json
from typing import Any

import msgspec
from nats.aio.client import Client

from tekton_common.artifacts import artifact_model
from tekton_common.client import BusClient
from tekton_common.errors import ProtocolError
from tekton_common.subjects import RHETOR_DEBATE

STAGE_FOCUS = {
    "plan": "Plan the work: goals, milestones with checks, acceptance criteria, risks.",
    "research": "Research what the plan depends on: questions, findings with sources, "
    "recommendations, open questions.",
    "plan_update": "Turn the plan and research into an ordered backlog of small tasks.",
    "code": "Write the change as a unified diff, with the commands run, the tests "
    "executed and the risks.",
    "review": "Review the change: verdict, issues by severity, strengths.",
    "threat": "Model the threats to the change: assets, threats, mitigations, residual risk.",
    "integrate": "Plan how the change is integrated: steps, dependencies, rollback.",
    "test_debug": "Test the change and report: tests and outcomes, failures fixed.",
    "release": "Prepare the release: version, summary, changes, checks passed, rollout.",
}


class StageRequest(msgspec.Struct, frozen=True):
    """What the coordinator sends a stage."""

    run_id: str
    stage: str
    goal: str
    debate_id: str
    earlier: dict[str, Any] = {}
    consensus_free: bool = False
    model: str | None = None
    max_rounds: int = 2


class StageOutcome(msgspec.Struct):
    """What a stage returns: an artifact, or a block with its reason."""

    stage: str
    status: str
    reason: str | None
    artifact: dict[str, Any] | None
    debate: dict[str, Any]
    type: str = "stage_outcome.v1"


def stage_prompt(request: StageRequest) -> tuple[str, str]:
    """The debate prompt and context for a stage."""
    prompt = f"Goal: {request.goal}\n{STAGE_FOCUS[request.stage]}"
    context = {"stage": request.stage, "earlier_artifacts": request.earlier}
    return prompt, json.dumps(context, ensure_ascii=False)


async def run_stage(nc: Client, request: StageRequest, timeout: float) -> StageOutcome:
    """Hold the stage's debate and validate its artifact."""
    if request.stage not in STAGE_FOCUS:
        raise ProtocolError(f"unknown stage {request.stage!r}")
    prompt, context = stage_prompt(request)
    debate = {
        "prompt": prompt,
        "stage": request.stage,
        "context": context,
        "artifact_schema": request.stage,
        "run_id": request.run_id,
        "debate_id": request.debate_id,
        "consensus_free": request.consensus_free,
        "model": request.model,
        "max_rounds": request.max_rounds,
    }
    reply = await BusClient(nc, timeout).request(
        RHETOR_DEBATE, msgspec.json.encode(debate), "rhetor-ci"
    )
    result: dict[str, Any] = msgspec.json.decode(reply.data)
    summary = {k: v for k, v in result.items() if k != "transcript"}
    if result["status"] != "approved":
        return StageOutcome(
            stage=request.stage,
            status="blocked",
            reason=result["reason"],
            artifact=None,
            debate=summary,
        )
    try:  # belt and braces: the artifact is checked by the stage that owns its schema
        artifact = artifact_model(request.stage).model_validate(result["artifact"])
    except ValueError as exc:
        return StageOutcome(
            stage=request.stage,
            status="blocked",
            reason=f"invalid artifact: {exc}",
            artifact=None,
            debate=summary,
        )
    return StageOutcome(
        stage=request.stage,
        status="approved",
        reason=None,
        artifact=artifact.model_dump(mode="json"),
        debate=summary,
    )
