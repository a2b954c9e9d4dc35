"""One stage: build the prompt, ask Rhetor for a debate, check the artifact.

Endpoint ``tekton.stage.<stage>.run``. The prompt carries the goal, the artifacts of
earlier stages, lessons of earlier runs and (with ``--repo``) the repository chunks
closest to the goal, both from Milvus, and what was measured in the repository (the
checks' results; the coordinator applies and checks a change, never a stage). The
debate is held to the stage's artifact schema, and the artifact is validated once more
here before it is returned. What was recalled is published on the debate's event
subject for the run's timeline.
"""

from __future__ import annotations

import json

import msgspec
from nats.aio.client import Client

from tekton_common import spans
from tekton_common.artifacts import artifact_model
from tekton_common.client import BusClient
from tekton_common.contract.codec import encode
from tekton_common.contract.debates import DebateRequest, DebateResult
from tekton_common.contract.events import DebateEvent, LessonRef, StageRecalled
from tekton_common.contract.runs import Recall, StageOutcome, StageRequest
from tekton_common.stages import STAGES
from tekton_common.subjects import RHETOR_DEBATE, debate_events
from tekton_stages.memory import Memory, MemoryUnavailableError


def stage_prompt(request: StageRequest, recall: Recall) -> tuple[str, str]:
    """The debate prompt and context for a stage."""
    parts = [f"Goal: {request.goal}", STAGES[request.stage].focus]
    if recall.lessons:
        parts.append("Lessons from earlier runs:")
        parts.extend(f"- [{x.run_id} {x.stage}, {x.status}] {x.text}" for x in recall.lessons)
    if recall.chunks:
        parts.append("Relevant repository code:")
        parts.extend(f"--- {c.path}:{c.start}-{c.end}\n{c.text}" for c in recall.chunks)
    if request.evidence:
        parts.append(
            "Measured in the repository (these results were run, not claimed; they "
            "outweigh any argument):"
        )
        parts.append(request.evidence)
    if request.feedback:
        parts.append(
            "This stage was tried before and blocked; answer what stopped it (a person's "
            "reason outweighs the debate's):"
        )
        parts.append(request.feedback)
    context = {"stage": request.stage, "earlier_artifacts": request.earlier}
    return "\n".join(parts), json.dumps(context, ensure_ascii=False)


async def recall(memory: Memory, goal: str, stage: str, run_id: str, repo: str | None) -> Recall:
    """Lessons (and repository chunks) for a stage; a note instead when Milvus fails."""
    query = f"{goal}\n{STAGES[stage].focus}"
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


async def _publish(nc: Client, request: StageRequest, event: DebateEvent) -> None:
    """An event of the stage on its debate's subject (for the run's timeline)."""
    stamped = msgspec.structs.replace(
        event, debate_id=request.debate_id, stage=request.stage, run_id=request.run_id
    )
    await nc.publish(debate_events(request.debate_id), msgspec.json.encode(stamped))


async def run_stage(
    nc: Client, request: StageRequest, timeout: float, memory: Memory
) -> StageOutcome:
    """Recall, hold the stage's debate, validate its artifact (and check a diff), in an
    ``invoke_workflow stage`` span."""
    with spans.workflow("stage", request.run_id, **{"tekton.stage": request.stage}) as current:
        outcome = await _run_stage(nc, request, timeout, memory)
        debate = outcome.debate
        current.set_attributes(
            {
                "tekton.status": outcome.status,
                "tekton.tokens": debate.total_tokens if debate else 0,
                "tekton.cost_usd": debate.cost_usd if debate else 0.0,
            }
        )
        if outcome.reason:
            spans.fail(current, outcome.reason)
        return outcome


async def _run_stage(
    nc: Client, request: StageRequest, timeout: float, memory: Memory
) -> StageOutcome:
    found = request.recall or await recall(
        memory, request.goal, request.stage, request.run_id, request.repo_key
    )
    recalled = StageRecalled(
        note=found.note,
        lessons=[LessonRef(x.run_id, x.stage, x.score) for x in found.lessons],
        chunks=[f"{c.path}:{c.start}-{c.end}" for c in found.chunks],
    )
    await _publish(nc, request, recalled)
    prompt, context = stage_prompt(request, found)
    debate = DebateRequest(
        prompt=prompt,
        stage=request.stage,
        context=context,
        artifact_schema=request.stage,
        run_id=request.run_id,
        debate_id=request.debate_id,
        consensus_free=request.consensus_free,
        model=request.model,
        roles=request.roles,
        models=request.models,
        max_rounds=request.max_rounds,
        threshold=request.threshold,
    )
    reply = await BusClient(nc, timeout).request(RHETOR_DEBATE, encode(debate), "rhetor-ci")
    result = msgspec.json.decode(reply.data, type=DebateResult)
    summary = msgspec.structs.replace(result, transcript=[])

    def blocked(reason: str | None) -> StageOutcome:
        return StageOutcome(request.stage, "blocked", reason, None, summary)

    if result.status != "approved":
        return blocked(result.reason)
    try:  # belt and braces: the artifact is checked by the stage that owns its schema
        artifact = artifact_model(request.stage).model_validate(result.artifact)
    except ValueError as exc:
        return blocked(f"invalid artifact: {exc}")
    made = artifact.model_dump(mode="json")
    return StageOutcome(request.stage, "approved", None, made, summary)
