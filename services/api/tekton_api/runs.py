"""Runs: start, list, state, live events (Server-Sent Events), artifacts."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path
from fastapi.responses import PlainTextResponse
from nats.aio.client import Client
from nats.js.api import DeliverPolicy
from sse_starlette.sse import EventSourceResponse

from tekton_api import deps
from tekton_api.config import load_config
from tekton_api.models import RunCreate, RunStarted
from tekton_common.client import raise_for_error
from tekton_common.contract.codec import encode, make
from tekton_common.contract.ids import ID_CHARS, MAX_RUN_ID
from tekton_common.contract.runs import RunRequest
from tekton_common.errors import NotFoundError
from tekton_common.settings import Settings
from tekton_stages.events import TERMINAL, read_events, run_subject
from tekton_stages.history import all_runs, summarize

router = APIRouter(prefix="/runs", tags=["runs"], dependencies=[Depends(deps.authorized)])
Bus = Annotated[Client, Depends(deps.bus)]
#: a run id in a path: the contract's pattern (a bad one is a 400)
RunIdPath = Annotated[
    str, Path(pattern=f"^[{ID_CHARS}]+$", max_length=MAX_RUN_ID, description="a run id")
]


async def events_of(nc: Client, run_id: str) -> list[dict[str, Any]]:
    """The run's stored events; 404 when there is no such run."""
    events = await read_events(nc.jetstream(timeout=10), run_id)
    if not events:
        raise NotFoundError(f"no run {run_id}")
    return events


@router.post("", status_code=201, response_model=RunStarted)
async def start_run(
    ask: RunCreate, nc: Bus, settings: Annotated[Settings, Depends(deps.settings)]
) -> dict[str, Any]:
    """Start a run in the stages service; it goes on whoever watches."""
    config = load_config(settings)
    request = make(
        RunRequest,
        goal=ask.goal,
        from_stage=ask.from_stage,
        to_stage=ask.to_stage,
        consensus_free=ask.consensus_free,
        model=ask.model or config.model,
        max_rounds=config.max_rounds,
        threshold=config.threshold,
        repo=ask.repo,
    )
    reply = await nc.request("tekton.runs.start", encode(request), timeout=30)
    raise_for_error(reply, "tekton-stages")
    started: dict[str, Any] = json.loads(reply.data)
    return started


@router.get("")
async def runs(nc: Bus, dsn: Annotated[str | None, Depends(deps.history)]) -> list[dict[str, Any]]:
    """Every run, oldest first (from PostgreSQL when reachable, else the event log)."""
    return await all_runs(nc.jetstream(timeout=10), dsn)


@router.get("/{run_id}")
async def run(run_id: RunIdPath, nc: Bus) -> dict[str, Any]:
    """One run's state."""
    return summarize(await events_of(nc, run_id))


@router.get(
    "/{run_id}/events",
    response_class=EventSourceResponse,
    responses={200: {"description": "the events", "content": {"text/event-stream": {}}}},
)
async def run_events(run_id: RunIdPath, nc: Bus) -> EventSourceResponse:
    """The run's events as Server-Sent Events: every stored one, then live ones until the
    run finishes or fails (event name: the event type; id: its seq)."""
    await events_of(nc, run_id)
    sub = await nc.jetstream(timeout=10).subscribe(
        run_subject(run_id), ordered_consumer=True, deliver_policy=DeliverPolicy.ALL
    )

    async def stream() -> AsyncIterator[dict[str, str]]:
        try:
            while True:
                msg = await sub.next_msg(timeout=3600)
                event = json.loads(msg.data)
                yield {"event": event["type"], "id": str(event["seq"]), "data": msg.data.decode()}
                if event["type"] in TERMINAL:
                    return
        finally:
            await sub.unsubscribe()

    return EventSourceResponse(stream(), ping=15)


@router.get("/{run_id}/artifacts")
async def artifacts(run_id: RunIdPath, nc: Bus) -> list[dict[str, Any]]:
    """The run's artifacts: stage, name and content."""
    return [
        {"stage": e["stage"], "name": e["name"], "artifact": e["artifact"]}
        for e in await events_of(nc, run_id)
        if e["type"] == "ArtifactCreated.v1"
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
async def artifact(run_id: RunIdPath, name: str, nc: Bus) -> Any:
    """One artifact by name (plan.json, …); diff.patch is the code stage's diff as text."""
    for event in await events_of(nc, run_id):
        if event["type"] == "ArtifactCreated.v1" and event["name"] == name:
            if name.endswith(".patch"):
                return PlainTextResponse(event["artifact"]["diff"], media_type="text/x-diff")
            return event["artifact"]
    raise NotFoundError(f"run {run_id} has no artifact {name!r}")
