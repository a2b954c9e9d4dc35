"""`tekton run` and `tekton runs list|show|events|artifacts|watch`."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path
from typing import Any

import msgspec
import nats.errors
import nats.js.errors
from nats.js.api import DeliverPolicy
from opentelemetry import trace

from tekton_cli.output import print_json, table
from tekton_cli.postgres import history_dsn
from tekton_common import bus, spans
from tekton_common.artifact_files import run_folder, write_artifact
from tekton_common.catalog import get_ci
from tekton_common.client import BusClient
from tekton_common.contract.codec import encode, make
from tekton_common.contract.debates import ROLES
from tekton_common.contract.ids import check_run_id
from tekton_common.contract.runs import ResumeRequest, RunRequest, new_run_id
from tekton_common.errors import ConfigError, NotFoundError
from tekton_common.providers.select import choose_model
from tekton_common.settings import Settings
from tekton_rhetor.models import DEFAULT_ROLES
from tekton_stages.events import TERMINAL, read_events, run_subject
from tekton_stages.history import all_runs, summarize
from tekton_stages.pipeline import DIAMOND, select


def dry_run(
    settings: Settings,
    start: str | None,
    end: str | None,
    consensus_free: list[str],
    model: str | None,
) -> list[dict[str, Any]]:
    """Stage order, roles and models, without calling anything."""
    plan = []
    for stage in select(DIAMOND, start, end):
        cast = dict(zip(ROLES, DEFAULT_ROLES[stage], strict=True))
        if stage in consensus_free:
            cast = {"proponent": cast["proponent"], "mediator": cast["mediator"]}
        plan.append(
            {
                "stage": stage,
                "consensus_free": stage in consensus_free,
                "roles": {
                    role: {
                        "ci": f"{ci}-ci",
                        "model": choose_model(get_ci(ci), settings, stage, model),
                    }
                    for role, ci in cast.items()
                },
            }
        )
    return plan


def check_stages(start: str | None, end: str | None, consensus_free: list[str]) -> None:
    """Fail early, with the stage names, on a typo."""
    select(DIAMOND, start, end)
    for stage in consensus_free:
        select(DIAMOND, stage, stage)


def run_request(args: argparse.Namespace) -> RunRequest:
    """The `tekton.runs.start` request from the flags, checked like the service checks
    it (a bad value fails here, before anything starts)."""
    if args.repo and not os.path.isdir(args.repo):
        raise ConfigError(f"--repo {args.repo}: not a folder")
    return make(
        RunRequest,
        goal=args.goal or "",
        run_id=new_run_id(),
        from_stage=args.from_stage,
        to_stage=args.to_stage,
        consensus_free=args.consensus_free,
        model=args.run_model,
        max_rounds=args.max_rounds,
        threshold=args.threshold,
        repo=os.path.abspath(args.repo) if args.repo else None,
    )


def render_plan(plan: list[dict[str, Any]]) -> str:
    """The dry run as a table."""
    return table(
        ["#", "STAGE", "MODE", "ROLES (CI: MODEL)"],
        [
            (
                i,
                p["stage"],
                "consensus-free" if p["consensus_free"] else "triad",
                ", ".join(f"{r}={v['ci']}:{v['model']}" for r, v in p["roles"].items()),
            )
            for i, p in enumerate(plan, 1)
        ],
    )


def turn_vote(turn: dict[str, Any]) -> str:
    """What a debate turn said: a debater's vote, the mediator's verdict, or abstained."""
    return str(
        (turn.get("position") or {}).get("vote")
        or (turn.get("outcome") or {}).get("status")
        or ("abstained" if turn.get("abstained") else "-")
    )


def event_line(event: dict[str, Any], local: Path | None = None) -> str | None:
    """One line of the live timeline (None for events not shown); `local` is where the
    command line keeps its copy of the run's artifacts, if it does."""
    kind = event["type"].removesuffix(".v1")
    if kind == "RunStarted":
        return f"run {event['run_id']}: {event['goal']}\n  stages: {' → '.join(event['stages'])}"
    if kind == "RunResumed":
        return f"run {event['run_id']} resumed; done: {', '.join(event['done']) or '-'}"
    if kind == "StageStarted":
        return f"▶ {event['stage']}"
    if kind == "StageProgress":
        share = event.get("accept_share")
        detail = f" (accept share {share:.2f})" if share is not None else ""
        detail += f": {event['detail']}" if event.get("detail") else ""
        return f"  {event['stage']}: {event['step']}{detail}"
    if kind == "DebateTurn":
        turn = event["turn"]
        return f"    {turn['role']:<10} {turn['ci']:<14} {turn_vote(turn)}"
    if kind == "StageBlocked":
        return f"✗ {event['stage']} blocked: {event['reason']}"
    if kind == "ArtifactCreated":
        where = local / event["name"] if local else event["files"][0]
        return f"  artifact {event['name']} → {where}"
    if kind == "StageFinished":
        return (
            f"✓ {event['stage']} {event['status']} in {event['duration_s']:.2f}s "
            f"({event['tokens']} tokens, ${event['cost_usd']:.4f}, confidence "
            f"{event['confidence']:.2f})"
        )
    if kind == "RunFinished":
        return (
            f"run finished in {event['duration_s']:.2f}s: {len(event['artifacts'])} "
            f"artifacts in {local or event['output']} ({event['tokens']} tokens, "
            f"${event['cost_usd']:.4f})"
        )
    if kind == "RunFailed":
        return f"run failed: {event['reason']}"
    return None


def keep_artifact(event: dict[str, Any], folder: Path) -> list[str]:
    """Write an ArtifactCreated event's artifact into the user's copy of the run."""
    return write_artifact(folder, event["stage"], event["artifact"])


async def follow(
    settings: Settings,
    run_id: str,
    as_json: bool,
    replay: bool = True,
    idle_timeout: float | None = None,
    output: Path | None = None,
    after: int = 0,
) -> dict[str, Any] | None:
    """Print a run's events (stored ones first, but for the first `after`), until it
    finishes or fails; with `output`, each artifact is also written to
    ``output/<run id>/`` on this machine."""
    local = run_folder(output, run_id) if output else None
    nc = await bus.connect(settings, "tekton-cli")
    try:
        js = nc.jetstream(timeout=10)
        sub = await bus.patiently(
            lambda: js.subscribe(
                run_subject(run_id),
                ordered_consumer=True,
                deliver_policy=DeliverPolicy.ALL if replay else DeliverPolicy.NEW,
            ),
            f"following run {run_id}",
        )
        while True:
            try:
                msg = await sub.next_msg(timeout=idle_timeout or 3600)
            except nats.errors.TimeoutError:
                return None
            event: dict[str, Any] = msgspec.json.decode(msg.data)
            if event["seq"] <= after:
                continue
            if local is not None and event["type"] == "ArtifactCreated.v1":
                await asyncio.to_thread(keep_artifact, event, local)
            if as_json:
                sys.stdout.write(msgspec.json.encode(event).decode() + "\n")
            elif (line := event_line(event, local)) is not None:
                print(line)
            sys.stdout.flush()
            if event["type"] in TERMINAL:
                return event
    finally:
        await bus.close(nc)


async def start(
    settings: Settings, request: RunRequest, as_json: bool, output: Path | None = None
) -> int:
    """Start a run in the stages service and follow it live, keeping a copy of its
    artifacts under `output`."""
    nc = await bus.connect(settings, "tekton-cli")
    try:
        trace.get_current_span().set_attribute(spans.RUN_ID, request.run_id)  # for `tekton trace`
        await BusClient(nc, 30).request("tekton.runs.start", encode(request), "tekton-stages")
    finally:
        await bus.close(nc)
    return await _follow_to_the_end(settings, request.run_id, as_json, output, 0)


async def resume(settings: Settings, run_id: str, as_json: bool, output: Path | None = None) -> int:
    """Resume a run after its last finished stage and follow it from there; the local
    copy gets the artifacts it made before too."""
    check_run_id(run_id)
    nc = await bus.connect(settings, "tekton-cli")
    try:
        trace.get_current_span().set_attribute(spans.RUN_ID, run_id)
        stored = await read_events(nc.jetstream(timeout=10), run_id)
        if output:
            for event in stored:
                if event["type"] == "ArtifactCreated.v1":
                    keep_artifact(event, run_folder(output, run_id))
        request = encode(ResumeRequest(run_id=run_id))
        await BusClient(nc, 30).request("tekton.runs.resume", request, "tekton-stages")
    finally:
        await bus.close(nc)
    # the timeline shows what happens from here on
    after = stored[-1]["seq"] if stored else 0
    return await _follow_to_the_end(settings, run_id, as_json, output, after)


async def _follow_to_the_end(
    settings: Settings, run_id: str, as_json: bool, output: Path | None, after: int
) -> int:
    try:
        last = await follow(settings, run_id, as_json, output=output, after=after)
    except (KeyboardInterrupt, asyncio.CancelledError):
        print(f"\nthe run goes on; follow it with: tekton runs watch {run_id}", file=sys.stderr)
        return 130
    return 0 if last and last["type"] == "RunFinished.v1" else 1


async def history(
    settings: Settings,
    verb: str,
    run_id: str | None,
    as_json: bool,
    output: Path | None = None,
) -> int:
    """list, show, events and artifacts, read from the event log (artifacts: with
    `output`, written to ``output/<run id>/`` on this machine)."""
    nc = await bus.connect(settings, "tekton-cli")
    try:
        js = nc.jetstream(timeout=10)
        if verb == "list":
            runs = await all_runs(js, history_dsn(settings))
            if as_json:
                print_json(runs)
            else:
                print(
                    table(
                        ["RUN", "STATUS", "STAGES DONE", "GOAL"],
                        [(r["run_id"], r["status"], r["done"], r["goal"][:60]) for r in runs],
                    )
                    if runs
                    else "no runs yet"
                )
            return 0
        events = await read_events(js, check_run_id(run_id))
    finally:
        await bus.close(nc)
    if not events:
        raise NotFoundError(f"no run {run_id}")
    if verb == "events":
        for event in events:
            print(
                msgspec.json.encode(event).decode()
                if as_json
                else event_line(event) or f"  ({event['type']})"
            )
    elif verb == "artifacts":
        made = [e for e in events if e["type"] == "ArtifactCreated.v1"]
        local = run_folder(output, check_run_id(run_id)) if output else None
        artifacts = [
            {
                "stage": e["stage"],
                "name": e["name"],
                "files": keep_artifact(e, local) if local else e["files"],
            }
            for e in made
        ]
        if as_json:
            print_json(artifacts)
        else:
            print(
                table(
                    ["STAGE", "NAME", "FILES"],
                    [(a["stage"], a["name"], " ".join(a["files"])) for a in artifacts],
                )
            )
    else:
        summary = summarize(events)
        print_json(summary) if as_json else print(
            "\n".join(f"{k}: {v}" for k, v in summary.items())
        )
    return 0
