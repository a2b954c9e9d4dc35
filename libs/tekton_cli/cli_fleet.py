"""The fleet's commands: up, down, status, ask, team, ci, usage, trace, deploy, schema, tui."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from tekton_cli import debate, deploy, fleet, output, status, talk, trace, usage
from tekton_cli.app import CI_NAMES, run
from tekton_common.catalog import CIId
from tekton_common.contract.codec import make
from tekton_common.contract.debates import TeamRequest
from tekton_common.contract.ids import check_run_id
from tekton_common.errors import ConfigError
from tekton_common.secrets import read_secret
from tekton_common.settings import Settings

commands = typer.Typer()
Json = Annotated[bool, typer.Option("--json", help="print the result as JSON")]


def _say(quiet: bool) -> fleet.Say:
    def say(line: str) -> None:
        if not quiet:
            print(line, flush=True)

    return say


@commands.command()
def up(
    ctx: typer.Context,
    cis: Annotated[list[str] | None, typer.Argument(help="CIs to start (default: all 17)")] = None,
    timeout: Annotated[float, typer.Option(help="seconds to wait per process")] = 90.0,
    local: Annotated[
        bool,
        typer.Option(
            "--local",
            help="also serve the local model (started anyway when a chosen model is local), "
            "for runs that seat it with --role ROLE=CI@local",
        ),
    ] = False,
    as_json: Json = False,
) -> None:
    """Start nats-server (embedded) and the CIs, Numa last; wait until every one is ready.

    Starts the embedded nats-server (unless TEKTON_NATS_URL is set), PostgreSQL and
    Milvus (for the whole platform), each CI as its own detached process, the stages
    service and the API; with the local model, its llama.cpp server (TEKTON_LOCAL_PORT,
    8092). Logs go to $TEKTON_HOME/logs."""

    async def go(settings: Settings) -> int:
        results = await fleet.up(settings, cis or [], _say(as_json), timeout, local)
        ready = sum(r.ready for r in results)
        if as_json:
            output.print_json(results)
        else:
            print(f"{ready}/{len(results)} processes ready; logs in {settings.home_path / 'logs'}")
        return 0 if ready == len(results) else 1

    run(ctx, go)


@commands.command()
def down(
    ctx: typer.Context,
    cis: Annotated[list[str] | None, typer.Argument(help="CIs to stop (default: all)")] = None,
    grace: Annotated[float, typer.Option(help="seconds before SIGKILL")] = 10.0,
    as_json: Json = False,
) -> None:
    """Deregister and stop CIs (Numa first), and nats-server when all stop.

    SIGTERM, then SIGKILL after the grace period; registry records are removed. With no
    CI named, the stages service, the API, PostgreSQL, Milvus and nats-server stop too."""

    async def go(settings: Settings) -> int:
        outcome = await fleet.down(settings, cis or [], _say(as_json), grace)
        if as_json:
            output.print_json(outcome)
        elif not outcome:
            print("nothing was running")
        return 0 if all(v != "still running after SIGKILL" for v in outcome.values()) else 1

    run(ctx, go)


@commands.command("status")
def show_status(ctx: typer.Context, as_json: Json = False) -> None:
    """Per-CI ports, pid, registration, activity, model, uptime, memory, restarts."""

    async def go(settings: Settings) -> int:
        report = await status.fleet_status(settings)
        if as_json:
            output.print_json(report)
        else:
            print(status.render(settings, report))
        return 0

    run(ctx, go)


@commands.command()
def ask(
    ctx: typer.Context,
    ci: Annotated[str, typer.Argument(help=f"CI id or alias ({CI_NAMES})")],
    message: Annotated[str, typer.Argument(help="the message")] = "",
    use_socket: Annotated[
        bool, typer.Option("--socket", help="use the CI's socket port, not NATS")
    ] = False,
    stream: Annotated[bool, typer.Option("--stream", help="print the reply as it streams")] = False,
    timeout: Annotated[float, typer.Option(help="seconds to wait for a reply")] = 60.0,
    as_json: Json = False,
) -> None:
    """Ask one CI and print its reply; text piped on stdin is appended.

    cat design.md | tekton ask athena "Review" """

    async def go(settings: Settings) -> int:
        CIId.from_str(ci)  # a bad name fails before stdin is read
        text = message
        if not sys.stdin.isatty():
            piped = sys.stdin.read()
            text = f"{text}\n\n{piped}" if text else piped
        if not text.strip():
            raise ConfigError("nothing to send: give a message or pipe text on stdin")
        await talk.ask(
            settings,
            ci,
            text,
            use_socket=use_socket,
            stream=stream,
            as_json=as_json,
            timeout=timeout,
        )
        return 0

    run(ctx, go)


@commands.command()
def team(
    ctx: typer.Context,
    message: Annotated[str, typer.Argument(help="the message")],
    deadline: Annotated[float, typer.Option(help="seconds to gather replies")] = 10.0,
    mode: Annotated[
        str | None, typer.Option(help="pass_through, directed, synthesis or consensus")
    ] = None,
    to: Annotated[str | None, typer.Option(help="comma-separated CIs to address")] = None,
    mediator: Annotated[str, typer.Option(help="who writes the synthesis")] = "apollo",
    as_json: Json = False,
) -> None:
    """Broadcast to every CI; replies print as they arrive.

    Without --mode or --to the message goes straight to every CI. With them, Rhetor
    moderates: pass_through (all replies), directed (only --to), synthesis (a mediator
    writes one answer), consensus (each CI votes; the weighted tally decides)."""

    async def go(settings: Settings) -> int:
        if not (mode or to):
            count = await talk.team(settings, message, deadline=deadline, as_json=as_json)
            return 0 if count else 1
        request = make(
            TeamRequest,
            message=message,
            mode=mode or "pass_through",
            cis=[c.strip() for c in (to or "").split(",") if c.strip()],
            deadline=deadline,
            mediator=mediator,
        )
        return 0 if await debate.moderated_team(settings, request, as_json) > 0 else 1

    run(ctx, go)


@commands.command("ci")
def ci_probe(
    ctx: typer.Context,
    verb: Annotated[str, typer.Argument(help="ls, info or stats")],
    name: Annotated[str | None, typer.Argument(help="only this CI")] = None,
    as_json: Json = False,
) -> None:
    """Micro services on the bus (what `nats micro ls|info|stats` shows)."""

    async def go(settings: Settings) -> int:
        verbs = {"ls": "ping", "info": "info", "stats": "stats"}
        if verb not in verbs:
            raise ConfigError(f"tekton ci takes ls, info or stats, not {verb!r}")
        replies = await talk.probe(settings, verbs[verb], name)
        if as_json:
            output.print_json(replies)
        else:
            rendered = talk.render_probe(verbs[verb], replies)
            print(rendered if replies else "no CI answered on the bus")
        return 0 if replies else 1

    run(ctx, go)


@commands.command("usage")
def show_usage(
    ctx: typer.Context,
    ci: Annotated[str | None, typer.Option(help="only this CI")] = None,
    run_id: Annotated[str | None, typer.Option("--run", help="only this run id")] = None,
    day: Annotated[
        str | None, typer.Option(help="only this UTC day, YYYY-MM-DD (tokens and cost)")
    ] = None,
    as_json: Json = False,
) -> None:
    """Tokens and cost per CI, run or model, and budget verdicts."""

    async def go(settings: Settings) -> int:
        ledger = await usage.usage(settings, ci, check_run_id(run_id) if run_id else None, day)
        output.print_json(ledger) if as_json else print(usage.render(ledger))
        return 0

    run(ctx, go)


@commands.command("trace")
def show_trace(
    ctx: typer.Context,
    run_id: Annotated[str, typer.Argument(help="the run")],
    as_json: Json = False,
) -> None:
    """Draw a run's trace across every process, from the local span files.

    Each span with its process, duration, tokens and cost, as a tree. Reads
    $TEKTON_HOME/traces, where spans go when no OTLP exporter is configured."""

    async def go(settings: Settings) -> int:
        spans_ = trace.load_run(settings.home_path, check_run_id(run_id))
        roots = trace.build_tree(spans_)
        if as_json:
            output.print_json(roots)
            return 0
        print(trace.summary(spans_))
        print(trace.render(roots))
        return 0

    run(ctx, go)


@commands.command("deploy")
def deploy_files(
    ctx: typer.Context,
    verb: Annotated[str, typer.Argument(help="render")],
    out: Annotated[str, typer.Option(help="the deploy folder")] = "deploy",
    check: Annotated[bool, typer.Option("--check", help="only compare; exit 1 on drift")] = False,
) -> None:
    """Render the compose stack and Kubernetes workloads from the CI catalog.

    Writes deploy/compose.yaml, deploy/k8s/base/tekton.yaml and deploy/k8s/base/catalog.yaml
    (ports, commands, probes, limits); --check writes nothing and fails on drift."""

    async def go(settings: Settings) -> int:
        if verb != "render":
            raise ConfigError(f"tekton deploy takes render, not {verb!r}")
        folder = Path(out)
        if check:
            drift = deploy.stale(folder)
            for name in drift:
                print(
                    f"{name}: differs from the catalog; run `tekton deploy render`", file=sys.stderr
                )
            return 1 if drift else 0
        for written in deploy.render(folder):
            print(f"wrote {written}")
        return 0

    run(ctx, go)


@commands.command("schema")
def show_schema(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Argument(help="a message (RunRequest, RunEvent, …)")] = None,
    markdown: Annotated[
        bool, typer.Option("--markdown", help="every message, as docs/contract.md")
    ] = False,
    as_json: Json = False,
) -> None:
    """JSON Schemas of the contract's messages, generated from their Structs.

    With no NAME, the messages and where each travels; with one, its JSON Schema."""

    async def go(settings: Settings) -> int:
        from tekton_common.contract import messages  # noqa: PLC0415 (only this command)

        if markdown:
            sys.stdout.write(messages.markdown())
        elif name:
            if name not in messages.MESSAGES:
                known = ", ".join(messages.MESSAGES)
                raise ConfigError(f"no message {name!r}; messages: {known}")
            output.print_json(messages.schema(name))
        elif as_json:
            output.print_json({n: where for n, (_, where) in messages.MESSAGES.items()})
        else:
            rows = [(n, where) for n, (_, where) in messages.MESSAGES.items()]
            print(output.table(["MESSAGE", "WHERE"], rows))
        return 0

    run(ctx, go)


@commands.command()
def tui(
    ctx: typer.Context,
    api: Annotated[
        str | None, typer.Option(help="API base URL (default http://HOST:TEKTON_API_PORT)")
    ] = None,
) -> None:
    """Runs in the terminal: list, live progress, transcripts, artifacts.

    A terminal UI on the Tekton API (started by `tekton up`). Keys: enter follows a run,
    a shows its artifacts, r refreshes, q quits."""

    async def go(settings: Settings) -> int:
        from tekton_cli.tui import TektonTUI  # noqa: PLC0415 (Textual loads only here)

        base = api or f"http://{settings.host}:{settings.api_port}"
        await TektonTUI(base, read_secret("TEKTON_API_TOKEN")).run_async()
        return 0

    run(ctx, go)
