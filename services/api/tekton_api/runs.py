"""Runs: start (or fork), list, state, live events (Server-Sent Events), artifacts,
decisions, retry, and two runs compared."""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator
from pathlib import Path as FilePath
from typing import Annotated, Any

import msgspec
from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import PlainTextResponse
from nats.aio.client import Client
from sse_starlette.sse import EventSourceResponse

from tekton_api import deps
from tekton_api.config import load_config
from tekton_api.models import DecisionIn, RetryIn, RunCreate, RunStarted, WorkspaceUploaded
from tekton_common.contract import events as ev
from tekton_common.contract.codec import make
from tekton_common.contract.events import AnyRunEvent, ArtifactCreated, event_type
from tekton_common.contract.ids import ID_CHARS, MAX_RUN_ID
from tekton_common.contract.runs import (
    DecisionRequest,
    ForkRequest,
    RetryRequest,
    RunRequest,
    new_run_id,
)
from tekton_common.contract.seats import overlay
from tekton_common.errors import NotFoundError, ProtocolError
from tekton_common.rundiff import compare
from tekton_common.settings import Settings
from tekton_common.workspace import kind_of

router = APIRouter(prefix="/runs", tags=["runs"], dependencies=[Depends(deps.authorized)])
#: what is not one run's
feed = APIRouter(tags=["runs"], dependencies=[Depends(deps.authorized)])
Bus = Annotated[Client, Depends(deps.bus)]
#: a run id in a path: the contract's pattern (a bad one is a 400)
RunIdPath = Annotated[
    str, Path(pattern=f"^[{ID_CHARS}]+$", max_length=MAX_RUN_ID, description="a run id")
]


#: the events that change a run's row in the runs list (its status, stages done, cost)
ROW_EVENTS = (
    ev.RunStarted,
    ev.RunResumed,
    ev.StageFinished,
    ev.StageBlocked,
    ev.StageAwaitingApproval,
    ev.DecisionRecorded,
    ev.RunFinished,
    ev.RunFailed,
)


def artifact_events(events: list[AnyRunEvent]) -> list[ArtifactCreated]:
    """The run's artifacts, in the order they were made."""
    return [e for e in events if isinstance(e, ArtifactCreated)]


@router.post("", status_code=201, response_model=RunStarted)
async def start_run(
    ask: RunCreate, tekton: deps.Platform, settings: Annotated[Settings, Depends(deps.settings)]
) -> dict[str, Any]:
    """Start a run in the stages service; it goes on whoever watches. What it does not
    say comes from /config (its seats after the saved ones). With `fork_of` and
    `from_stage`, a fork of that run (reused stages in `skipped`)."""
    if ask.fork_of is not None:
        fork = make(
            ForkRequest,
            fork_of=ask.fork_of,
            from_stage=ask.from_stage,
            model=ask.model,
            threshold=ask.threshold,
            max_rounds=ask.max_rounds,
            approve=ask.approve or None,
        )
        accepted = await tekton.fork_run(fork)
    else:
        config = load_config(settings)
        request = make(
            RunRequest,
            goal=ask.goal,
            from_stage=ask.from_stage,
            to_stage=ask.to_stage,
            consensus_free=config.consensus_free
            if ask.consensus_free is None
            else ask.consensus_free,
            model=ask.model or config.model,
            seats=overlay(config.seats, ask.seats),
            approve=ask.approve,
            approval_timeout=ask.approval_timeout,
            max_rounds=config.max_rounds if ask.max_rounds is None else ask.max_rounds,
            threshold=config.threshold if ask.threshold is None else ask.threshold,
            repo_url=ask.repo_url,
            run_id=ask.run_id or new_run_id(),
            workspace=ask.workspace.model_dump() if ask.workspace else None,
        )
        accepted = await tekton.start_run(request)
    return msgspec.to_builtins(accepted)  # type: ignore[no-any-return]


@router.post(
    "/workspaces",
    status_code=201,
    response_model=WorkspaceUploaded,
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": "a git bundle, or a gzipped tar of a folder",
            "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
            },
        }
    },
)
async def upload_workspace(
    request: Request, tekton: deps.Platform, settings: Annotated[Settings, Depends(deps.settings)]
) -> dict[str, Any]:
    """Upload a repository for a run: the body is a git bundle (``git bundle create f
    --all``) or a gzipped tar of a folder. Start the run with the run id and workspace
    this returns."""
    limit = int(settings.workspace_limit_mb * 2**20)
    run_id = new_run_id()
    with tempfile.TemporaryDirectory() as scratch:
        packed = FilePath(scratch) / "upload"
        size = 0
        with packed.open("wb") as out:
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise ProtocolError(f"the upload is larger than {limit / 2**20:g} MiB")
                out.write(chunk)
        with packed.open("rb") as head:
            kind = kind_of(head.read(20))
        if kind is None:
            raise ProtocolError("the upload is neither a git bundle nor a gzipped tar")
        ref = await tekton.upload_packed(packed, run_id, kind, "upload")
    return {"run_id": run_id, "workspace": msgspec.to_builtins(ref)}


@router.get("")
async def runs(
    tekton: deps.Platform, dsn: Annotated[str | None, Depends(deps.history)]
) -> list[dict[str, Any]]:
    """Every run, oldest first (from PostgreSQL when reachable, with runs not yet recorded
    from the event log)."""
    rows: list[dict[str, Any]] = msgspec.to_builtins(await tekton.runs(dsn))
    return rows


@router.post("/{run_id}/decisions", status_code=201)
async def decide(
    run_id: RunIdPath, ask: DecisionIn, tekton: deps.Platform, request: Request
) -> dict[str, Any]:
    """Approve, reject or edit the gate a paused run waits at; the run goes on (or ends,
    rejected). The same decision id twice is one decision (`repeated`); a different
    decision on a gate already decided is a 409. Who decides is the named token's name
    (TEKTON_API_TOKENS), else `by`."""
    fields = {**ask.model_dump(exclude_none=True), "by": deps.decider(request, ask.by)}
    made: dict[str, Any] = msgspec.to_builtins(
        await tekton.decide(make(DecisionRequest, run_id=run_id, **fields))
    )
    return made


@router.post("/{run_id}/retry", status_code=201, response_model=RunStarted)
async def retry(run_id: RunIdPath, ask: RetryIn, tekton: deps.Platform) -> dict[str, Any]:
    """Run a failed run's blocked stage again (told why it was blocked; another model,
    threshold or rounds when given) and go on; 400 when the run has not failed."""
    fields = ask.model_dump(exclude_none=True)
    accepted = await tekton.retry_run(make(RetryRequest, run_id=run_id, **fields))
    return msgspec.to_builtins(accepted)  # type: ignore[no-any-return]


@router.get("/{run_id}/diff/{other}")
async def diff(run_id: RunIdPath, other: RunIdPath, tekton: deps.Platform) -> dict[str, Any]:
    """Run `run_id` against run `other`, stage by stage: status, reuse, tokens, cost,
    duration, the last round's votes, models, checks, the artifacts' JSON differences
    and, for a change, the diff of the two diffs."""
    found = compare(await tekton.events(run_id), await tekton.events(other))
    return msgspec.to_builtins(found)  # type: ignore[no-any-return]


@router.get("/{run_id}")
async def run(run_id: RunIdPath, tekton: deps.Platform) -> dict[str, Any]:
    """One run's state."""
    state: dict[str, Any] = msgspec.to_builtins(await tekton.state(run_id))
    return state


@router.get(
    "/{run_id}/events",
    response_class=EventSourceResponse,
    responses={200: {"description": "the events", "content": {"text/event-stream": {}}}},
)
async def run_events(run_id: RunIdPath, tekton: deps.Platform) -> EventSourceResponse:
    """The run's events as Server-Sent Events: every stored one, then live ones until the
    run finishes or fails (event name: the event type; id: its seq)."""
    await tekton.events(run_id)  # 404 at once for no such run

    async def stream() -> AsyncIterator[dict[str, str]]:
        async for event, data in tekton.follow(run_id):
            yield {"event": event_type(type(event)), "id": str(event.seq), "data": data.decode()}

    return EventSourceResponse(stream(), ping=15)


@feed.get(
    "/events",
    response_class=EventSourceResponse,
    responses={200: {"description": "the events", "content": {"text/event-stream": {}}}},
)
async def all_events(tekton: deps.Platform) -> EventSourceResponse:
    """Every run's events that change its row in the runs list (started, a stage done,
    blocked or awaiting a decision, a decision, finished, failed), from now on, as
    Server-Sent Events (event name: the event type). The dashboard follows it to name the
    runs awaiting a decision on every page."""

    async def stream() -> AsyncIterator[dict[str, str]]:
        async for event, data in tekton.follow_runs():
            if isinstance(event, ROW_EVENTS):
                yield {"event": event_type(type(event)), "data": data.decode()}

    return EventSourceResponse(stream(), ping=15)


@router.get("/{run_id}/artifacts")
async def artifacts(run_id: RunIdPath, tekton: deps.Platform) -> list[dict[str, Any]]:
    """The run's artifacts: stage, name and content."""
    return [
        {"stage": e.stage, "name": e.name, "artifact": e.artifact}
        for e in artifact_events(await tekton.events(run_id))
    ]


@router.get(
    "/{run_id}/artifacts/{name}",
    responses={
        200: {
            "description": "the artifact: JSON, or the diff as text for diff.patch",
            "content": {"application/json": {}, "text/x-diff": {"schema": {"type": "string"}}},
        }
    },
)
async def artifact(run_id: RunIdPath, name: str, tekton: deps.Platform) -> Any:
    """One artifact by name (plan.json, …); diff.patch is the code stage's diff as text."""
    for event in artifact_events(await tekton.events(run_id)):
        if event.name == name:
            if name.endswith(".patch"):
                return PlainTextResponse(event.artifact["diff"], media_type="text/x-diff")
            return event.artifact
    raise NotFoundError(f"run {run_id} has no artifact {name!r}")
