"""One handler per `tekton` subcommand; each returns the exit code."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from tekton_cli import debate, deploy, fleet, output, runs, status, talk, trace, usage
from tekton_common.catalog import CIId
from tekton_common.contract.codec import make
from tekton_common.contract.debates import DebateRequest, TeamRequest
from tekton_common.contract.ids import check_run_id
from tekton_common.errors import ConfigError
from tekton_common.secrets import read_secret
from tekton_common.settings import Settings

Handler = Callable[[argparse.Namespace, Settings], Coroutine[Any, Any, int]]


def _say(quiet: bool) -> fleet.Say:
    def say(line: str) -> None:
        if not quiet:
            print(line, flush=True)

    return say


async def up(args: argparse.Namespace, settings: Settings) -> int:
    """Start the fleet."""
    results = await fleet.up(settings, args.cis, _say(args.json), args.timeout)
    ready = sum(r.ready for r in results)
    if args.json:
        output.print_json(results)
    else:
        print(f"{ready}/{len(results)} processes ready; logs in {settings.home_path / 'logs'}")
    return 0 if ready == len(results) else 1


async def down(args: argparse.Namespace, settings: Settings) -> int:
    """Stop the fleet."""
    outcome = await fleet.down(settings, args.cis, _say(args.json), args.grace)
    if args.json:
        output.print_json(outcome)
    elif not outcome:
        print("nothing was running")
    return 0 if all(v != "still running after SIGKILL" for v in outcome.values()) else 1


async def show_status(args: argparse.Namespace, settings: Settings) -> int:
    """Per-CI status."""
    report = await status.fleet_status(settings)
    if args.json:
        output.print_json(report)
        return 0
    print(status.nats_line(settings, report))
    headers = [
        "CI",
        "CI PORT",
        "HTTP",
        "PID",
        "REGISTERED",
        "ACTIVE",
        "MODEL",
        "LAST ACTIVITY",
        "UPTIME",
        "MEMORY",
        "RESTARTS",
    ]
    print(
        output.table(
            headers,
            [
                (
                    c.ci,
                    c.ci_port,
                    c.component_port,
                    c.pid or "-",
                    "yes" if c.registered else "no",
                    "yes" if c.active else "no",
                    c.model or "-",
                    output.ago(c.last_activity),
                    output.duration(c.uptime),
                    f"{c.memory_mb} MB" if c.memory_mb else "-",
                    f"{c.restarts} ({c.supervision})" if c.restarts else "0",
                )
                for c in report.cis
            ],
        )
    )
    return 0


async def ask(args: argparse.Namespace, settings: Settings) -> int:
    """Ask one CI; piped stdin is appended to the message."""
    CIId.from_str(args.ci)  # a bad name fails before stdin is read
    message = args.message
    if not sys.stdin.isatty():
        piped = sys.stdin.read()
        message = f"{message}\n\n{piped}" if message else piped
    if not message.strip():
        raise ConfigError("nothing to send: give a message or pipe text on stdin")
    await talk.ask(
        settings,
        args.ci,
        message,
        use_socket=args.socket,
        stream=args.stream,
        as_json=args.json,
        timeout=args.timeout,
    )
    return 0


async def team(args: argparse.Namespace, settings: Settings) -> int:
    """Team chat: straight to every CI, or moderated by Rhetor with --mode/--to."""
    if not (args.mode or args.to):
        count = await talk.team(settings, args.message, deadline=args.deadline, as_json=args.json)
        return 0 if count else 1
    cis = [c.strip() for c in (args.to or "").split(",") if c.strip()]
    request = make(
        TeamRequest,
        message=args.message,
        mode=args.mode or "pass_through",
        cis=cis,
        deadline=args.deadline,
        mediator=args.mediator,
    )
    count = await debate.moderated_team(settings, request, args.json)
    return 0 if count > 0 else 1


async def run_debate(args: argparse.Namespace, settings: Settings) -> int:
    """A debate, shown live; exit 3 when it is blocked."""
    roles = dict(r.split("=", 1) for r in args.role if "=" in r)
    if len(roles) != len(args.role):
        raise ConfigError("--role takes ROLE=CI, e.g. --role skeptic=nous")
    request = make(
        DebateRequest,
        prompt=args.question,
        stage=args.stage,
        max_rounds=args.rounds,
        consensus_free=args.consensus_free,
        artifact_schema=args.schema,
        roles=roles,
        model=args.debate_model,
        token_budget=args.token_budget,
    )
    result = await debate.debate(settings, request, args.timeout, args.json)
    return 0 if result["status"] == "approved" else 3


async def roster(args: argparse.Namespace, settings: Settings) -> int:
    """Rhetor's roster."""
    await debate.roster(settings, args.json)
    return 0


async def show_usage(args: argparse.Namespace, settings: Settings) -> int:
    """The usage ledger."""
    if args.run:
        check_run_id(args.run)
    ledger = await usage.usage(settings, args.ci, args.run)
    if args.json:
        output.print_json(ledger)
    else:
        print(usage.render(ledger))
    return 0


async def ci(args: argparse.Namespace, settings: Settings) -> int:
    """`nats micro ls|info|stats` for the fleet."""
    verb = {"ls": "ping", "info": "info", "stats": "stats"}[args.verb]
    replies = await talk.probe(settings, verb, args.name)
    if args.json:
        output.print_json(replies)
    else:
        print(talk.render_probe(verb, replies) if replies else "no CI answered on the bus")
    return 0 if replies else 1


async def run(args: argparse.Namespace, settings: Settings) -> int:
    """Start, resume or dry-run a run."""
    if args.dry_run:
        plan = runs.dry_run(
            settings, args.from_stage, args.to_stage, args.consensus_free, args.run_model
        )
        print(runs.render_plan(plan)) if not args.json else output.print_json(plan)
        return 0
    if not args.resume and not args.goal:
        raise ConfigError("give --goal TEXT (or --resume RUN_ID)")
    runs.check_stages(args.from_stage, args.to_stage, args.consensus_free)
    keep = Path(args.output) if args.output else None
    if args.resume:
        return await runs.resume(settings, args.resume, args.json, keep)
    return await runs.start(settings, runs.run_request(args), args.json, keep)


async def run_history(args: argparse.Namespace, settings: Settings) -> int:
    """tekton runs …"""
    if args.verb != "list" and not args.run_id:
        raise ConfigError(f"tekton runs {args.verb} needs a RUN_ID")
    if args.run_id:
        check_run_id(args.run_id)
    if args.verb == "watch":
        last = await runs.follow(settings, args.run_id, args.json)
        return 0 if last and last["type"] == "RunFinished.v1" else 1
    keep = Path(args.output) if args.output else None
    return await runs.history(settings, args.verb, args.run_id, args.json, keep)


async def show_trace(args: argparse.Namespace, settings: Settings) -> int:
    """tekton trace RUN_ID"""
    spans = trace.load_run(settings.home_path, args.run_id)
    roots = trace.build_tree(spans)
    if args.json:
        output.print_json(roots)
        return 0
    print(trace.summary(spans))
    print(trace.render(roots))
    return 0


async def deploy_files(args: argparse.Namespace, settings: Settings) -> int:
    """tekton deploy render [--check]"""
    folder = Path(args.out)
    if args.check:
        drift = deploy.stale(folder)
        for name in drift:
            print(f"{name}: differs from the catalog; run `tekton deploy render`", file=sys.stderr)
        return 1 if drift else 0
    for written in deploy.render(folder):
        print(f"wrote {written}")
    return 0


async def terminal_ui(args: argparse.Namespace, settings: Settings) -> int:
    """tekton tui"""
    from tekton_cli.tui import TektonTUI  # noqa: PLC0415 (Textual loads only here)

    api = args.api or f"http://{settings.host}:{settings.api_port}"
    await TektonTUI(api, read_secret("TEKTON_API_TOKEN")).run_async()
    return 0


COMMANDS: dict[str, Handler] = {
    "tui": terminal_ui,
    "deploy": deploy_files,
    "trace": show_trace,
    "run": run,
    "runs": run_history,
    "up": up,
    "down": down,
    "status": show_status,
    "ask": ask,
    "team": team,
    "debate": run_debate,
    "roster": roster,
    "usage": show_usage,
    "ci": ci,
}
