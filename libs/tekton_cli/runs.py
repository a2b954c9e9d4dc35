"""`tekton run` and `tekton runs list|show|events|artifacts|watch`."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import uuid
from typing import Any

import msgspec
import nats.errors
import nats.js.errors
from nats.js.api import DeliverPolicy
from opentelemetry import trace

from tekton_cli.output import print_json, table
from tekton_cli.postgres import history_dsn
from tekton_common import bus, spans
from tekton_common.catalog import get_ci
from tekton_common.client import BusClient
from tekton_common.errors import ConfigError, NotFoundError
from tekton_common.providers.select import choose_model
from tekton_common.settings import Settings
from tekton_rhetor.models import DEFAULT_ROLES, ROLES
from tekton_stages.events import TERMINAL, read_events, run_subject
from tekton_stages.history import list_runs, list_runs_db, summarize
from tekton_stages.pipeline import DIAMOND, check_request, select


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


def run_request(args: argparse.Namespace) -> dict[str, Any]:
    """The `tekton.runs.start` request from the flags; paths made absolute, because the
    stages service does not share this command's working directory."""
    if args.repo and not os.path.isdir(args.repo):
        raise ConfigError(f"--repo {args.repo}: not a folder")
    request = {
        "goal": args.goal or "",
        "from_stage": args.from_stage,
        "to_stage": args.to_stage,
        "consensus_free": args.consensus_free,
        "model": args.run_model,
        "output": os.path.abspath(args.output) if args.output else None,
        "max_rounds": args.max_rounds,
        "threshold": args.threshold,
        "repo": os.path.abspath(args.repo) if args.repo else None,
    }
    check_request(request)  # a bad value fails here, before anything starts
    return request


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


def event_line(event: dict[str, Any]) -> str | None:
    """One line of the live timeline (None for events not shown)."""
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
        return f"  artifact {event['name']} → {event['files'][0]}"
    if kind == "StageFinished":
        return (
            f"✓ {event['stage']} {event['status']} in {event['duration_s']:.2f}s "
            f"({event['tokens']} tokens, ${event['cost_usd']:.4f}, confidence "
            f"{event['confidence']:.2f})"
        )
    if kind == "RunFinished":
        return (
            f"run finished in {event['duration_s']:.2f}s: {len(event['artifacts'])} "
            f"artifacts in {event['output']} ({event['tokens']} tokens, "
            f"${event['cost_usd']:.4f})"
        )
    if kind == "RunFailed":
        return f"run failed: {event['reason']}"
    return None


async def follow(
    settings: Settings,
    run_id: str,
    as_json: bool,
    replay: bool = True,
    idle_timeout: float | None = None,
) -> dict[str, Any] | None:
    """Print a run's events (stored ones first), until it finishes or fails."""
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
            if as_json:
                sys.stdout.write(msgspec.json.encode(event).decode() + "\n")
            elif (line := event_line(event)) is not None:
                print(line)
            sys.stdout.flush()
            if event["type"] in TERMINAL:
                return event
    finally:
        await bus.close(nc)


async def start(
    settings: Settings, request: dict[str, Any], as_json: bool, resume: str | None
) -> int:
    """Start (or resume) a run in the stages service and follow it live."""
    nc = await bus.connect(settings, "tekton-cli")
    try:
        client = BusClient(nc, 30)
        run_id = resume or uuid.uuid4().hex[:12]
        trace.get_current_span().set_attribute(spans.RUN_ID, run_id)  # `tekton trace` finds it
        if resume:
            reply = await client.request(
                "tekton.runs.resume", msgspec.json.encode({"run_id": resume}), "tekton-stages"
            )
        else:
            request = {**request, "run_id": run_id}
            reply = await client.request(
                "tekton.runs.start", msgspec.json.encode(request), "tekton-stages"
            )
    finally:
        await bus.close(nc)
    run_id = json.loads(reply.data)["run_id"]
    try:
        last = await follow(settings, run_id, as_json, replay=not resume)
    except (KeyboardInterrupt, asyncio.CancelledError):
        print(f"\nthe run goes on; follow it with: tekton runs watch {run_id}", file=sys.stderr)
        return 130
    return 0 if last and last["type"] == "RunFinished.v1" else 1


async def history(settings: Settings, verb: str, run_id: str | None, as_json: bool) -> int:
    """list, show, events and artifacts, read from the event log."""
    nc = await bus.connect(settings, "tekton-cli")
    try:
        js = nc.jetstream(timeout=10)
        if verb == "list":
            runs = await list_runs_db(history_dsn(settings)) or await list_runs(js)
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
        assert run_id is not None
        events = await read_events(js, run_id)
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
        artifacts = [
            {"stage": e["stage"], "name": e["name"], "files": e["files"]}
            for e in events
            if e["type"] == "ArtifactCreated.v1"
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
