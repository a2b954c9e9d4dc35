"""The specialists' tools over their components' data, read from the bus only.

- Engram: lessons in retrieval memory (the stages service's ``tekton.memory.search``
  and ``tekton.memory.keep``);
- Athena: a run's repository searched, Terma: a command in its sandbox (the stages
  service's ``tekton.workspaces.search`` and ``tekton.sandbox.run``);
- Hermes: the registry (KV ``tekton-registry``) and the micro services on the bus;
- Apollo: runs and their state (the event log, ``TEKTON_RUNS``);
- Telos: a run's goal and acceptance criteria; Prometheus: its plan; Metis: its backlog
  (the artifacts in the run's events).

Sophia's measurements are in `measures`; the Budget CI's tools sit beside its ledger
(`budget`).
"""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

import msgspec
import nats.errors
from nats.aio.client import Client

from tekton_common.client.bus import raise_for_error
from tekton_common.contract.codec import encode
from tekton_common.contract.events import ArtifactCreated, RunStarted
from tekton_common.contract.ids import RunId
from tekton_common.contract.platform import (
    KeepLesson,
    LessonHits,
    LessonKept,
    LessonQuery,
    MicroReply,
    RepoHits,
    RepoSearch,
    SandboxCommand,
    SandboxRan,
)
from tekton_common.errors import TransportError
from tekton_common.gather import gather_all
from tekton_common.history import RunRow, RunState, rows_from_log, summarize
from tekton_common.registry import is_active, read_bucket
from tekton_common.runlog import read_events
from tekton_common.settings import Settings
from tekton_common.subjects import (
    MEMORY_KEEP,
    MEMORY_SEARCH,
    SANDBOX_RUN,
    WORKSPACES_SEARCH,
    srv,
)
from tekton_common.tools.base import NoInput, Tool, UnknownToolError
from tekton_common.wire import RegistryRecord
from tekton_specialists.measures import sophia_tools


class Instance(msgspec.Struct, frozen=True):
    """One registered instance and whether its heartbeat is fresh."""

    record: RegistryRecord
    active: bool
    heartbeat_age_s: float


class Instances(msgspec.Struct, frozen=True):
    """The registry as of now."""

    instances: list[Instance]


class Services(msgspec.Struct, frozen=True):
    """Every micro service answering ``$SRV.INFO``, with its endpoints' subjects."""

    services: list[MicroReply]


class RunsInput(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Which runs."""

    status: Annotated[
        Literal["any", "running", "finished", "failed", "awaiting_approval"],
        msgspec.Meta(description="only runs in this state"),
    ] = "any"
    limit: Annotated[int, msgspec.Meta(ge=1, le=100, description="newest runs to return")] = 10


class Runs(msgspec.Struct, frozen=True):
    """Runs from the event log, newest first."""

    runs: list[RunRow]


class RunInput(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One run; the newest when none is named."""

    run_id: Annotated[RunId, msgspec.Meta(description="the run's id")] | None = None


class RunArtifact(msgspec.Struct, frozen=True):
    """A run's goal and one of its artifacts (None while the stage has not made it)."""

    run_id: str
    goal: str
    stage: str
    artifact: dict[str, Any] | None


async def _newest(nc: Client) -> str:
    rows = await rows_from_log(nc.jetstream(timeout=5))
    if not rows:
        raise UnknownToolError("there are no runs yet")
    return rows[-1].run_id


async def _events(nc: Client, run_id: str | None) -> tuple[str, list[Any]]:
    chosen = run_id or await _newest(nc)
    events = await read_events(nc.jetstream(timeout=5), chosen)
    if not events:
        raise UnknownToolError(f"no run {chosen}")
    return chosen, events


async def run_artifact(nc: Client, run_id: str | None, stages: tuple[str, ...]) -> RunArtifact:
    """The newest artifact of the first of `stages` that made one (a plan_update's
    before the plan's)."""
    chosen, events = await _events(nc, run_id)
    goal = next((e.goal for e in events if isinstance(e, RunStarted)), "")
    made = {e.stage: e.artifact for e in events if isinstance(e, ArtifactCreated)}
    for stage in stages:
        if stage in made:
            return RunArtifact(run_id=chosen, goal=goal, stage=stage, artifact=made[stage])
    return RunArtifact(run_id=chosen, goal=goal, stage=stages[-1], artifact=None)


def _items(artifact: RunArtifact, field: str, what: str) -> str:
    listed = (artifact.artifact or {}).get(field) or []
    if artifact.artifact is None:
        return f"run {artifact.run_id} has no {what} yet (goal: {artifact.goal[:200]})"
    shown = "; ".join(
        str(i.get("title") or i.get("name") or i) if isinstance(i, dict) else str(i)
        for i in listed[:8]
    )
    return f"run {artifact.run_id}, {len(listed)} {what}: {shown}"


def hermes_tools(nc: Client, settings: Settings) -> list[Tool]:
    """The registry and the services on the bus."""

    async def registry(_asked: NoInput) -> Instances:
        now = time.time()
        records = sorted(await read_bucket(nc), key=lambda r: (r.ci, r.instance))
        return Instances(
            instances=[
                Instance(r, is_active(r, settings, now), round(now - r.last_heartbeat, 3))
                for r in records
            ]
        )

    async def services(_asked: NoInput) -> Services:
        replies = await gather_all(nc, srv("INFO"), deadline=0.5)
        found = [msgspec.json.decode(m.data, type=MicroReply) for m in replies]
        return Services(services=sorted(found, key=lambda s: (s.name, s.id)))

    def registry_line(found: Instances) -> str:
        active = sorted({i.record.ci for i in found.instances if i.active})
        stale = sorted({i.record.ci for i in found.instances if not i.active} - set(active))
        line = f"{len(found.instances)} instances registered, {len(active)} CIs active"
        return line + (f"; stale heartbeat: {', '.join(stale)}" if stale else "")

    return [
        Tool(
            ci="hermes",
            name="registry",
            description="Every registered CI instance (ports, model, pid, host, version, "
            "heartbeat) and whether its heartbeat is fresh.",
            input=NoInput,
            output=Instances,
            run=registry,
            summary=registry_line,
            keywords=("registry", "registered", "instances", "heartbeat", "heartbeats"),
        ),
        Tool(
            ci="hermes",
            name="services",
            description="Every NATS micro service answering $SRV.INFO, with its endpoints "
            "and their subjects.",
            input=NoInput,
            output=Services,
            run=services,
            summary=lambda found: (
                f"{len(found.services)} services on the bus: "
                + ", ".join(sorted({s.name for s in found.services}))
            ),
            keywords=("services", "subjects", "endpoints", "bus"),
        ),
    ]


def apollo_tools(nc: Client) -> list[Tool]:
    """Runs and their state."""

    async def runs(asked: RunsInput) -> Runs:
        rows = await rows_from_log(nc.jetstream(timeout=5))
        if asked.status != "any":
            rows = [r for r in rows if r.status == asked.status]
        return Runs(runs=list(reversed(rows))[: asked.limit])

    async def run(asked: RunInput) -> RunState:
        _, events = await _events(nc, asked.run_id)
        return summarize(events)

    def runs_line(found: Runs) -> str:
        shown = "; ".join(f"{r.run_id} {r.status} ({r.done})" for r in found.runs[:5])
        return f"{len(found.runs)} runs" + (f", newest: {shown}" if shown else "")

    return [
        Tool(
            ci="apollo",
            name="runs",
            description="The newest runs and their state, from the event log.",
            input=RunsInput,
            output=Runs,
            run=runs,
            summary=runs_line,
            keywords=("runs", "pipeline"),
        ),
        Tool(
            ci="apollo",
            name="run",
            description="One run's state: goal, status, stages done, reason, and with a "
            "repository its change and checks.",
            input=RunInput,
            output=RunState,
            run=run,
            summary=lambda s: (
                f"run {s.run_id} {s.status}, stages done: "
                f"{', '.join(s.done) or 'none'}" + (f"; {s.reason}" if s.reason else "")
            ),
            keywords=("progress",),
        ),
    ]


def artifact_tool(
    nc: Client, ci: str, name: str, stages: tuple[str, ...], field: str, what: str
) -> Tool:
    """A tool that reads one artifact of a run (Telos, Prometheus, Metis)."""

    async def read(asked: RunInput) -> RunArtifact:
        return await run_artifact(nc, asked.run_id, stages)

    return Tool(
        ci=ci,
        name=name,
        description=f"A run's goal and its {what} (the {stages[0]} stage's artifact; the "
        "newest run when none is named).",
        input=RunInput,
        output=RunArtifact,
        run=read,
        summary=lambda found: _items(found, field, what),
        keywords=(name, *what.split()),
    )


async def _ask(nc: Client, subject: str, message: msgspec.Struct, kind: type[Any]) -> Any:
    """One request to the stages service (memory), its errors kept."""
    try:
        msg = await nc.request(subject, encode(message), timeout=30)
    except nats.errors.NoRespondersError:
        raise TransportError("the stages service, which keeps memory, is not running") from None
    except nats.errors.TimeoutError:
        raise TransportError("the stages service did not answer within 30 s") from None
    raise_for_error(msg, "tekton-stages")
    return msgspec.json.decode(msg.data, type=kind)


def engram_tools(nc: Client) -> list[Tool]:
    """Lessons in retrieval memory (Milvus, through the stages service)."""

    async def lessons(asked: LessonQuery) -> LessonHits:
        found: LessonHits = await _ask(nc, MEMORY_SEARCH, asked, LessonHits)
        return found

    async def keep(asked: KeepLesson) -> LessonKept:
        kept: LessonKept = await _ask(nc, MEMORY_KEEP, asked, LessonKept)
        return kept

    def hits_line(found: LessonHits) -> str:
        shown = "; ".join(
            f"{h.stage} of {h.run_id} ({h.score}): {h.text[:80]}" for h in found.hits[:3]
        )
        return f"{len(found.hits)} lessons" + (f": {shown}" if shown else "")

    return [
        Tool(
            ci="engram",
            name="lessons",
            description="Search the lessons past runs left in retrieval memory (closest "
            "first; one stage's, or every stage's).",
            input=LessonQuery,
            output=LessonHits,
            run=lessons,
            summary=hits_line,
            keywords=("lessons", "lesson", "remember", "memory", "learned"),
        ),
        Tool(
            ci="engram",
            name="keep",
            description="Keep a lesson for later runs of a stage (later runs recall it).",
            input=KeepLesson,
            output=LessonKept,
            run=keep,
            summary=lambda kept: f"kept as {kept.run_id} for the {kept.stage} stage",
            sensitive=True,  # what later runs read: granted by name only
        ),
    ]


def repository_tools(nc: Client, name: str) -> list[Tool]:
    """Athena's search of a run's repository; Terma's command in its sandbox."""

    async def search(asked: RepoSearch) -> RepoHits:
        found: RepoHits = await _ask(nc, WORKSPACES_SEARCH, asked, RepoHits)
        return found

    async def command(asked: SandboxCommand) -> SandboxRan:
        ran: SandboxRan = await _ask(nc, SANDBOX_RUN, asked, SandboxRan)
        return ran

    if name == "athena":
        return [
            Tool(
                ci="athena",
                name="search",
                description="Search a run's repository: the file chunks closest to a "
                "question (from retrieval memory, indexed when the run began).",
                input=RepoSearch,
                output=RepoHits,
                run=search,
                summary=lambda hits: (
                    f"{len(hits.chunks)} chunks: "
                    + ", ".join(f"{c.path}:{c.start}-{c.end}" for c in hits.chunks[:6])
                ),
                keywords=("repository", "repo", "code", "file", "files", "where"),
            )
        ]
    return [
        Tool(
            ci="terma",
            name="run",
            description="Run one shell command in a fresh worktree of a run's repository "
            "(its change applied once it has one), in the sandbox the checks use: no "
            "network, limits on time, memory and output.",
            input=SandboxCommand,
            output=SandboxRan,
            run=command,
            summary=lambda ran: (
                f"`{ran.command[:80]}` on {ran.tree} {ran.commit[:10]}: "
                f"exit {ran.exit_code}{' (timed out)' if ran.timed_out else ''} in "
                f"{ran.duration_s}s, sandbox {ran.sandbox}"
            ),
            sensitive=True,  # granted by name only
        )
    ]


def specialist_tools(name: str, nc: Client, settings: Settings) -> list[Tool]:
    """The tools of one specialist CI (none for those without data of their own yet)."""
    if name == "hermes":
        return hermes_tools(nc, settings)
    if name == "engram":
        return engram_tools(nc)
    if name == "sophia":
        return sophia_tools(nc, settings)
    if name in ("athena", "terma"):
        return repository_tools(nc, name)
    if name == "apollo":
        return apollo_tools(nc)
    if name == "telos":
        return [
            artifact_tool(
                nc, "telos", "goal", ("plan",), "acceptance_criteria", "acceptance criteria"
            )
        ]
    if name == "prometheus":
        return [artifact_tool(nc, "prometheus", "plan", ("plan",), "milestones", "milestones")]
    if name == "metis":
        return [artifact_tool(nc, "metis", "backlog", ("plan_update",), "tasks", "tasks")]
    return []
