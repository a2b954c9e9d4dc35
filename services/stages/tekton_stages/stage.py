"""One stage: build the prompt, ask Rhetor for a debate, check the artifact.

Endpoint ``tekton.stage.<stage>.run``. The prompt carries the goal, the artifacts of
earlier stages, lessons of earlier runs and (with ``--repo``) the repository chunks
closest to the goal, both from Milvus. The debate is held to the stage's artifact
schema, and the artifact is validated once more here before it is returned; with a
repository, the code stage's diff must pass ``git apply --check``. What was recalled
and checked is published on the debate's event subject for the run's timeline.
"""

from __future__ import annotations

import json
from typing import Any

import msgspec
from nats.aio.client import Client

from tekton_common import spans
from tekton_common.artifacts import artifact_model
from tekton_common.client import BusClient
from tekton_common.contract.runs import Recall, StageOutcome, StageRequest
from tekton_common.errors import ProtocolError
from tekton_common.subjects import RHETOR_DEBATE
from tekton_stages.memory import Memory, MemoryUnavailableError
from tekton_stages.repo import check_diff

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


def stage_prompt(request: StageRequest, recall: Recall) -> tuple[str, str]:
    """The debate prompt and context for a stage."""
    parts = [f"Goal: {request.goal}", STAGE_FOCUS[request.stage]]
    if recall.lessons:
        parts.append("Lessons from earlier runs:")
        parts.extend(f"- [{x.run_id} {x.stage}, {x.status}] {x.text}" for x in recall.lessons)
    if recall.chunks:
        parts.append("Relevant repository code:")
        parts.extend(f"--- {c.path}:{c.start}-{c.end}\n{c.text}" for c in recall.chunks)
    context = {"stage": request.stage, "earlier_artifacts": request.earlier}
    return "\n".join(parts), json.dumps(context, ensure_ascii=False)


async def recall(memory: Memory, goal: str, stage: str, run_id: str, repo: str | None) -> Recall:
    """Lessons (and repository chunks) for a stage; a note instead when Milvus fails."""
    query = f"{goal}\n{STAGE_FOCUS[stage]}"
    attributes = {"db.system.name": "milvus", "tekton.stage": stage}
    with spans.span("recall memory", attributes) as current:
        try:
            lessons = await memory.recall(query, stage, exclude_run=run_id)
            chunks = await memory.search_repo(repo, query) if repo else []
        except MemoryUnavailableError as exc:
            spans.fail(current, str(exc))
            return Recall(note=f"memory unavailable, going on without it: {exc}")
        current.set_attributes({"tekton.lessons": len(lessons), "tekton.chunks": len(chunks)})
    return Recall(lessons=lessons, chunks=chunks)


async def _publish(nc: Client, request: StageRequest, event: dict[str, Any]) -> None:
    subject = f"tekton.debates.{request.debate_id}.events"
    await nc.publish(subject, msgspec.json.encode(event))


async def run_stage(
    nc: Client, request: StageRequest, timeout: float, memory: Memory
) -> StageOutcome:
    """Recall, hold the stage's debate, validate its artifact (and check a diff), in an
    ``invoke_workflow stage`` span."""
    with spans.workflow("stage", request.run_id, **{"tekton.stage": request.stage}) as current:
        outcome = await _run_stage(nc, request, timeout, memory)
        current.set_attributes(
            {
                "tekton.status": outcome.status,
                "tekton.tokens": outcome.debate.get("total_tokens", 0),
                "tekton.cost_usd": outcome.debate.get("cost_usd", 0.0),
            }
        )
        if outcome.reason:
            spans.fail(current, outcome.reason)
        return outcome


async def _run_stage(
    nc: Client, request: StageRequest, timeout: float, memory: Memory
) -> StageOutcome:
    if request.stage not in STAGE_FOCUS:
        raise ProtocolError(f"unknown stage {request.stage!r}")
    found = request.recall or await recall(
        memory, request.goal, request.stage, request.run_id, request.repo
    )
    await _publish(
        nc,
        request,
        {
            "type": "stage.recalled",
            "note": found.note,
            "lessons": [
                {"run_id": x.run_id, "stage": x.stage, "score": x.score} for x in found.lessons
            ],
            "chunks": [f"{c.path}:{c.start}-{c.end}" for c in found.chunks],
        },
    )
    prompt, context = stage_prompt(request, found)
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
        "threshold": request.threshold,
    }
    reply = await BusClient(nc, timeout).request(
        RHETOR_DEBATE, msgspec.json.encode(debate), "rhetor-ci"
    )
    result: dict[str, Any] = msgspec.json.decode(reply.data)
    summary = {k: v for k, v in result.items() if k != "transcript"}

    def blocked(reason: str) -> StageOutcome:
        return StageOutcome(request.stage, "blocked", reason, None, summary)

    if result["status"] != "approved":
        return blocked(result["reason"])
    try:  # belt and braces: the artifact is checked by the stage that owns its schema
        artifact = artifact_model(request.stage).model_validate(result["artifact"])
    except ValueError as exc:
        return blocked(f"invalid artifact: {exc}")
    made = artifact.model_dump(mode="json")
    if request.stage == "code" and request.repo:
        with spans.span("git apply --check", {"tekton.repo": request.repo}) as checking:
            applies, output = await check_diff(request.repo, made["diff"])
            if not applies:
                spans.fail(checking, output)
        check = {"type": "stage.checked", "check": "git apply --check", "ok": applies}
        await _publish(nc, request, {**check, "output": output})
        if not applies:
            return blocked(f"the diff does not apply to {request.repo}: {output}")
    return StageOutcome(request.stage, "approved", None, made, summary)
