"""`tekton run` and `tekton runs list|show|events|artifacts|watch`, through the client."""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import os
import sys
from pathlib import Path
from typing import Any

import msgspec
from opentelemetry import trace
from rich.console import Console

from tekton_cli import repos
from tekton_cli.output import print_json, table
from tekton_cli.progress import RunProgress
from tekton_cli.timeline import event_line
from tekton_common import spans
from tekton_common.artifact_files import run_folder, write_artifact
from tekton_common.client import Tekton
from tekton_common.contract.codec import make
from tekton_common.contract.events import (
    TERMINAL,
    AnyRunEvent,
    ArtifactCreated,
    RunFinished,
    StageAwaitingApproval,
    event_type,
)
from tekton_common.contract.ids import check_run_id
from tekton_common.contract.limits import DEFAULT_ROUNDS, DEFAULT_THRESHOLD
from tekton_common.contract.runs import (
    DecisionRequest,
    ForkRequest,
    RetryRequest,
    RunRequest,
    new_run_id,
)
from tekton_common.contract.seats import check_seats
from tekton_common.contract.workspaces import CheckSpec
from tekton_common.errors import ConfigError
from tekton_common.history import RunState, history_dsn, summarize
from tekton_common.seating import FREE_SEATS, Cast, seating
from tekton_common.settings import Settings
from tekton_common.stages import select


class PlannedStage(msgspec.Struct, frozen=True):
    """One stage of a dry run."""

    stage: str
    consensus_free: bool
    roles: dict[str, Cast]


def dry_run(
    settings: Settings,
    start: str | None,
    end: str | None,
    consensus_free: list[str],
    model: str | None,
    seats: list[str] | None = None,
) -> list[PlannedStage]:
    """Stage order, roles and models (the configuration's seats, then `seats`), without
    calling anything."""
    plan = []
    try:
        check_seats(seats or [])
    except ValueError as exc:
        raise ConfigError(f"--role: {exc}") from None
    for stage in select(start, end):
        roles = seating(settings, seats or [], stage, model)
        if stage in consensus_free:
            roles = {role: roles[role] for role in FREE_SEATS}
        plan.append(PlannedStage(stage, stage in consensus_free, roles))
    return plan


def check_stages(start: str | None, end: str | None, consensus_free: list[str]) -> None:
    """Fail early, with the stage names, on a typo."""
    select(start, end)
    for stage in consensus_free:
        select(stage, stage)


def run_request(
    goal: str,
    *,
    from_stage: str | None,
    to_stage: str | None,
    consensus_free: list[str],
    model: str | None,
    max_rounds: int | None,
    threshold: float | None,
    repo: str | None,
    checks: list[CheckSpec] | None = None,
    repair_attempts: int | None = None,
    seats: list[str] | None = None,
    approve: list[str] | None = None,
    approval_timeout: float | None = None,
) -> RunRequest:
    """The `tekton.runs.start` request, checked like the service checks it (a bad value
    fails here, before anything starts). A folder given as `repo` is packed and sent by
    `start`; a URL goes in the request."""
    url = repo if repo and repos.is_url(repo) else None
    if repo and not url and not os.path.isdir(repo):
        raise ConfigError(f"--repo {repo}: not a folder")
    return make(
        RunRequest,
        goal=goal,
        run_id=new_run_id(),
        from_stage=from_stage,
        to_stage=to_stage,
        consensus_free=consensus_free,
        model=model,
        max_rounds=DEFAULT_ROUNDS if max_rounds is None else max_rounds,
        threshold=DEFAULT_THRESHOLD if threshold is None else threshold,
        repo_url=url,
        checks=checks or [],
        repair_attempts=repair_attempts,
        seats=seats or [],
        approve=approve or [],
        approval_timeout=approval_timeout,
    )


def render_plan(plan: list[PlannedStage]) -> str:
    """The dry run as a table."""
    return table(
        ["#", "STAGE", "MODE", "ROLES (CI: MODEL)"],
        [
            (
                i,
                p.stage,
                "consensus-free" if p.consensus_free else "triad",
                ", ".join(f"{r}={v.ci}:{v.model}" for r, v in p.roles.items()),
            )
            for i, p in enumerate(plan, 1)
        ],
    )


def keep_artifact(event: ArtifactCreated, folder: Path) -> list[str]:
    """Write an ArtifactCreated event's artifact into the user's copy of the run."""
    return write_artifact(folder, event.stage, event.artifact)


async def follow(
    tekton: Tekton,
    run_id: str,
    as_json: bool,
    idle_timeout: float | None = None,
    output: Path | None = None,
    after: int = 0,
) -> AnyRunEvent | None:
    """Print a run's events (stored ones first, but for the first `after`), until it
    finishes, fails or waits at a gate; with `output`, each artifact is also written to
    ``output/<run id>/`` on this machine. Returns the last event (None on idleness)."""
    local = run_folder(output, run_id) if output else None
    console = Console()
    live = RunProgress(console) if console.is_terminal and not as_json else None
    last: AnyRunEvent | None = None
    with live or contextlib.nullcontext():
        # the client's follow ends at the run's end (not at an end it went on from)
        async for event, data in tekton.follow(run_id, idle_timeout or 3600):
            last = event
            if event.seq <= after:
                continue
            if local is not None and isinstance(event, ArtifactCreated):
                await asyncio.to_thread(keep_artifact, event, local)
            line = event_line(event, local)
            if as_json:
                sys.stdout.write(data.decode() + "\n")
            elif live is not None:
                live.show(event, line)
            elif line is not None:
                print(line)
            sys.stdout.flush()
            if isinstance(event, StageAwaitingApproval) and await _waits(tekton, event):
                return event
    return last if isinstance(last, TERMINAL) else None


async def _waits(tekton: Tekton, gate: StageAwaitingApproval) -> bool:
    """True when the run still waits at `gate` (no event came after it: a gate a
    decision answered is history)."""
    stored = await tekton.events(gate.run_id)
    return not stored or stored[-1].seq <= gate.seq


DECISION_VERBS = ("approve", "reject", "edit")


def decision(
    verb: str,
    run_id: str,
    *,
    stage: str | None,
    comment: str | None,
    artifact: str | None,
    by: str | None,
    decision_id: str | None,
) -> DecisionRequest:
    """The decision `tekton runs approve|reject|edit` sends, checked here first."""
    body = read_json("--artifact", artifact) if artifact is not None else None
    fields = {"decision_id": decision_id} if decision_id else {}
    return make(
        DecisionRequest,
        run_id=check_run_id(run_id),
        decision=verb,
        by=by or user(),
        stage=stage,
        comment=comment,
        artifact=body,
        **fields,
    )


def read_json(option: str, source: str) -> Any:
    """The JSON in the file `source` (``-``: standard input); ConfigError naming
    `option` when it cannot be read or is no JSON."""
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text()
        return msgspec.json.decode(text)
    except OSError as exc:
        raise ConfigError(f"{option} {source}: {exc.strerror or exc}") from None
    except msgspec.DecodeError as exc:
        raise ConfigError(f"{option} {source}: not JSON ({exc})") from None


def user() -> str:
    """Who runs this command (the OS user), for a decision given without --by."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (a container's user)
        raise ConfigError("who decides? give --by NAME") from None


async def decide(settings: Settings, ask: DecisionRequest, as_json: bool) -> int:
    """Send a decision; then the run goes on (or ends, rejected)."""
    async with Tekton.connect(settings) as tekton:
        made = await tekton.decide(ask)
    if as_json:
        print_json(made)
    else:
        again = " (already recorded)" if made.repeated else ""
        print(
            f"{made.decision} on {made.stage} of run {made.run_id} by {made.by}{again}; "
            f"decision {made.decision_id}"
        )
    return 0


def waiting(last: AnyRunEvent | None) -> int | None:
    """Exit 4, saying what to do, when a run waits at a gate."""
    if not isinstance(last, StageAwaitingApproval):
        return None
    run_id, stage = last.run_id, last.stage
    print(
        f"run {run_id} awaits a decision on {stage}: tekton runs approve {run_id}, "
        f"tekton runs reject {run_id} --reason TEXT, or tekton runs edit {run_id} "
        f"--stage {stage} --artifact FILE",
        file=sys.stderr,
    )
    return 4


async def watch(settings: Settings, run_id: str, as_json: bool) -> int:
    """`tekton runs watch`: 0 when the run finishes."""
    async with Tekton.connect(settings) as tekton:
        last = await follow(tekton, check_run_id(run_id), as_json)
    return waiting(last) or (0 if isinstance(last, RunFinished) else 1)


async def _to_the_end(
    tekton: Tekton, run_id: str, as_json: bool, output: Path | None, after: int
) -> int:
    try:
        last = await follow(tekton, run_id, as_json, output=output, after=after)
    except (KeyboardInterrupt, asyncio.CancelledError):
        print(f"\nthe run goes on; follow it with: tekton runs watch {run_id}", file=sys.stderr)
        return 130
    return waiting(last) or (0 if isinstance(last, RunFinished) else 1)


async def start(
    settings: Settings,
    request: RunRequest,
    as_json: bool,
    output: Path | None = None,
    folder: Path | None = None,
) -> int:
    """Start a run in the stages service and follow it live, keeping a copy of its
    artifacts under `output`; with `folder` (a repository on this machine) it is packed
    and sent first, and the run's branch is brought back into it when the run finishes."""
    async with Tekton.connect(settings) as tekton:
        trace.get_current_span().set_attribute(spans.RUN_ID, request.run_id)  # `tekton trace`
        if folder is not None:
            limit = int(settings.workspace_limit_mb * 2**20)
            if not as_json:
                print(f"packing {folder} …", file=sys.stderr)
            ref = await tekton.upload_workspace(folder, request.run_id, limit)
            request = msgspec.structs.replace(request, workspace=ref)
            if not as_json:
                print(f"sent {ref.size / 2**20:.1f} MiB as workspace {ref.name}", file=sys.stderr)
        await tekton.start_run(request)
        code = await _to_the_end(tekton, request.run_id, as_json, output, 0)
        if code == 0 and folder is not None:
            finished = await tekton.result(request.run_id)
            said = await repos.bring_back(tekton, finished, folder, output)
            print(said, file=sys.stderr if as_json else sys.stdout)
        return code


async def result(settings: Settings, verb: str, run_id: str, repo: Path) -> int:
    """`tekton runs fetch|patch`: a finished run's branch into `repo`, or its patch."""
    async with Tekton.connect(settings) as tekton:
        if verb == "fetch":
            branch = await repos.fetch(tekton, run_id, repo)
            print(f"branch {branch} is in {repo}")
        else:
            sys.stdout.write(await repos.patch(tekton, run_id))
    return 0


async def resume(
    settings: Settings,
    run_id: str,
    as_json: bool,
    output: Path | None = None,
    retry: RetryRequest | None = None,
) -> int:
    """Resume a run after its last finished stage (with `retry`, a failed run's blocked
    stage is run again) and follow it from there; the local copy gets the artifacts it
    made before too."""
    async with Tekton.connect(settings) as tekton:
        trace.get_current_span().set_attribute(spans.RUN_ID, run_id)
        stored = await tekton.events(run_id)
        if output:
            for event in stored:
                if isinstance(event, ArtifactCreated):
                    keep_artifact(event, run_folder(output, run_id))
        if retry is None:
            await tekton.resume_run(run_id)
        else:
            await tekton.retry_run(retry)
        # the timeline shows what happens from here on
        return await _to_the_end(tekton, run_id, as_json, output, stored[-1].seq)


async def fork(settings: Settings, ask: ForkRequest, as_json: bool, output: Path | None) -> int:
    """Start a fork of a run (`ForkRequest`) and follow it, like `start`."""
    async with Tekton.connect(settings) as tekton:
        trace.get_current_span().set_attribute(spans.RUN_ID, ask.run_id)
        accepted = await tekton.fork_run(ask)
        if not as_json:
            reused = ", ".join(accepted.skipped) or "nothing"
            print(f"run {ask.run_id} forks {ask.fork_of}; reused: {reused}", file=sys.stderr)
        return await _to_the_end(tekton, ask.run_id, as_json, output, 0)


async def history(
    settings: Settings,
    verb: str,
    run_id: str | None,
    as_json: bool,
    output: Path | None = None,
) -> int:
    """list, show, events and artifacts (artifacts: with `output`, written to
    ``output/<run id>/`` on this machine)."""
    async with Tekton.connect(settings) as tekton:
        if verb == "list":
            runs = await tekton.runs(history_dsn(settings))
            if as_json:
                print_json(runs)
            else:
                rows = [(r.run_id, r.status, r.done, r.goal[:60]) for r in runs]
                print(
                    table(["RUN", "STATUS", "STAGES DONE", "GOAL"], rows) if runs else "no runs yet"
                )
            return 0
        events = await tekton.events(check_run_id(run_id))
    if verb == "events":
        for event in events:
            line = event_line(event) or f"  ({event_type(type(event))})"
            print(msgspec.json.encode(event).decode() if as_json else line)
    elif verb == "artifacts":
        local = run_folder(output, check_run_id(run_id)) if output else None
        artifacts = [
            (e.stage, e.name, keep_artifact(e, local) if local else e.files)
            for e in events
            if isinstance(e, ArtifactCreated)
        ]
        if as_json:
            print_json([{"stage": s, "name": n, "files": f} for s, n, f in artifacts])
        else:
            listed = [(s, n, " ".join(f)) for s, n, f in artifacts]
            print(table(["STAGE", "NAME", "FILES"], listed))
    else:
        state = summarize(events)
        print_json(state) if as_json else print(render_state(state))
    return 0


def render_state(state: RunState) -> str:
    """`tekton runs show`: the run, then its change file by file and its checks."""
    plain = {k: v for k, v in msgspec.to_builtins(state).items() if not isinstance(v, list)}
    lines = [f"{k}: {v}" for k, v in plain.items() if v is not None]
    lines.append(f"stages: {' → '.join(state.stages)} (done: {', '.join(state.done) or '-'})")
    if state.files:
        lines.append("change:")
        lines += [f"  +{f.added} -{f.removed}  {f.path}" for f in state.files]
    for label, results in (("checks on the base", state.base_checks), ("checks", state.checks)):
        if results:
            lines.append(f"{label}:")
            lines += [f"  {r.summary()}" for r in results]
    for failed in (r for r in state.checks if not r.ok):
        tail = "\n".join(f"    {x}" for x in failed.output_tail.strip().splitlines()[-20:])
        lines.append(f"  output of {failed.name} (last lines):\n{tail}")
    return "\n".join(lines)
