"""Runs and debates: run, runs, debate, roster."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from tekton_cli import compare, debate, durations, output, repos, retention, runs
from tekton_cli.app import run
from tekton_common.contract.codec import make
from tekton_common.contract.debates import DebateRequest, SeatAnswer
from tekton_common.contract.ids import check_id, check_run_id
from tekton_common.contract.limits import DEFAULT_ROUNDS, DEFAULT_THRESHOLD
from tekton_common.contract.runs import ForkRequest, RetryRequest, new_run_id
from tekton_common.contract.seats import overlay, parse_seat, seats_for
from tekton_common.errors import ConfigError
from tekton_common.settings import Settings

commands = typer.Typer()
Json = Annotated[bool, typer.Option("--json", help="print the result as JSON")]
RUNS_VERBS = (
    "list",
    "show",
    "events",
    "artifacts",
    "watch",
    "fetch",
    "patch",
    *runs.DECISION_VERBS,
    "retry",
    "diff",
    *retention.VERBS,
)
Roles = Annotated[
    list[str] | None,
    typer.Option(
        "--role",
        metavar="[STAGE:]ROLE=CI[@MODEL]",
        help="who sits in a seat (proponent, skeptic, pragmatist, mediator) and on which "
        "model, e.g. code:skeptic=athena@local or mediator=apollo@premium or "
        "skeptic=@local, or plan:skeptic=human for a person's seat (tekton answer); "
        "repeatable; a stage's own seat wins",
    ),
]


@commands.command("run")
def run_goal(
    ctx: typer.Context,
    goal: Annotated[str | None, typer.Option(help="what the run should achieve")] = None,
    repo: Annotated[
        str | None,
        typer.Option(
            metavar="PATH|URL",
            help="repository to work on: a folder here (packed and sent as a workspace; "
            "the result branch tekton/RUN_ID comes back into it) or an https://, ssh:// "
            "or git:// URL. Its files are indexed; the code stage's change is applied and "
            "its checks run in a sandbox",
        ),
    ] = None,
    check: Annotated[
        list[str] | None,
        typer.Option(
            metavar="NAME=COMMAND",
            help="a check to run on the change (repeatable); else the repository's "
            "tekton.toml [checks], else detected (pytest, npm test, go test, cargo test, "
            "make test)",
        ),
    ] = None,
    repair_attempts: Annotated[
        int | None,
        typer.Option(
            min=0,
            max=5,
            help="times a change that breaks a check goes back to the code stage "
            "(default: the repair_attempts setting, 2)",
        ),
    ] = None,
    from_stage: Annotated[str | None, typer.Option("--from", help="first stage")] = None,
    to_stage: Annotated[str | None, typer.Option("--to", help="last stage")] = None,
    consensus_free: Annotated[
        list[str] | None,
        typer.Option(
            "--consensus-free",
            metavar="STAGE…",
            help="stages run as one proponent pass plus the mediator (several may follow)",
        ),
    ] = None,
    model: Annotated[
        str | None, typer.Option("--model", help="model for every debate turn")
    ] = None,
    role: Roles = None,
    approve: Annotated[
        list[str] | None,
        typer.Option(
            "--approve",
            metavar="STAGE…",
            help="stages whose artifact waits for your decision (tekton runs approve, "
            "reject or edit) before the run goes on; several may follow",
        ),
    ] = None,
    approval_timeout: Annotated[
        str | None,
        typer.Option(
            metavar="DURATION",
            help="how long a gate waits for its decision (90s, 30m, 2h, 7d); past it the "
            "run is blocked (tekton runs retry runs the stage again). Default: for ever",
        ),
    ] = None,
    out: Annotated[
        str,
        typer.Option(
            "--output",
            help="where this command keeps its copy of the artifacts: OUTPUT/<run id>; the "
            "stages service keeps its own under $TEKTON_HOME",
        ),
    ] = "artifacts",
    max_rounds: Annotated[
        int | None,
        typer.Option(help="debate rounds per stage (1-5)", show_default=str(DEFAULT_ROUNDS)),
    ] = None,
    threshold: Annotated[
        float | None,
        typer.Option(
            help="confidence-weighted accept share that ends a debate early (0.5-1)",
            show_default=f"2/3 ({DEFAULT_THRESHOLD:.3f})",
        ),
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="print the stage order, roles and models; call nothing"),
    ] = False,
    resume: Annotated[
        str | None, typer.Option(metavar="RUN_ID", help="continue a run after its last stage")
    ] = None,
    fork: Annotated[
        str | None,
        typer.Option(
            metavar="RUN_ID",
            help="a new run of RUN_ID's goal, repository and settings that reuses its "
            "artifacts of the stages before --from and runs the rest (--model, --threshold, "
            "--max-rounds and --approve may change; compare with tekton runs diff)",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="events as JSON lines")] = False,
) -> None:
    """Carry a goal through the staged pipeline (Diamond), its timeline shown live.

    The run goes on in the stages service if this command goes away."""
    free = consensus_free or []
    keep = Path(os.path.abspath(out)) if out else None
    here = Path(os.path.abspath(repo)) if repo else None

    async def go(settings: Settings) -> int:
        checks = repos.parse_checks(check or [])
        if dry_run:
            plan = runs.dry_run(settings, from_stage, to_stage, free, model, role)
            output.print_json(plan) if as_json else print(runs.render_plan(plan))
            print(repos.planned_checks(repo, checks), file=sys.stderr if as_json else sys.stdout)
            return 0
        if fork:
            if goal or repo or to_stage or free or role or check or approval_timeout:
                raise ConfigError(
                    "--fork takes its run's goal, repository, stages, checks, seats and "
                    "approval timeout: "
                    "give only --from, --model, --threshold, --max-rounds and --approve"
                )
            if not from_stage:
                raise ConfigError("--fork RUN_ID needs --from STAGE (the first stage run again)")
            ask = make(
                ForkRequest,
                fork_of=check_run_id(fork),
                from_stage=from_stage,
                run_id=new_run_id(),
                model=model,
                threshold=threshold,
                max_rounds=max_rounds,
                approve=approve,
            )
            return await runs.fork(settings, ask, as_json, keep)
        if not resume and not goal:
            raise ConfigError("give --goal TEXT (or --resume RUN_ID, or --fork RUN_ID)")
        runs.check_stages(from_stage, to_stage, [*free, *(approve or [])])
        if resume:
            return await runs.resume(settings, resume, as_json, keep)
        request = runs.run_request(
            goal or "",
            from_stage=from_stage,
            to_stage=to_stage,
            consensus_free=free,
            model=model,
            max_rounds=max_rounds,
            threshold=threshold,
            repo=repo,
            checks=checks,
            repair_attempts=repair_attempts,
            seats=role,
            approve=approve,
            approval_timeout=(
                durations.seconds("--approval-timeout", approval_timeout)
                if approval_timeout
                else None
            ),
        )
        folder = None if request.repo_url else here
        return await runs.start(settings, request, as_json, keep, folder)

    run(ctx, go)


@commands.command("runs")
def run_history(
    ctx: typer.Context,
    verb: Annotated[str, typer.Argument(help=", ".join(RUNS_VERBS))],
    run_id: Annotated[
        str | None,
        typer.Argument(help="the run (all verbs but list and prune; import: the tar, '-': stdin)"),
    ] = None,
    other: Annotated[
        str | None, typer.Argument(metavar="[RUN_B]", help="diff: the run compared with")
    ] = None,
    out: Annotated[
        str | None,
        typer.Option(
            "--output",
            help="artifacts: also write them to OUTPUT/<run id> here; export: the tar file",
        ),
    ] = None,
    older_than: Annotated[
        str | None,
        typer.Option(
            metavar="DURATION",
            help="prune: remove the runs that ended longer ago (30d, 12h, 0s)",
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="prune: only say what would be removed")
    ] = False,
    repo: Annotated[str, typer.Option(help="fetch: the git repository the branch goes into")] = ".",
    stage: Annotated[
        str | None,
        typer.Option(
            help="approve, reject, edit: the gated stage (edit needs it); retry: the blocked stage"
        ),
    ] = None,
    comment: Annotated[str | None, typer.Option(help="approve, edit: a note kept with it")] = None,
    reason: Annotated[str | None, typer.Option(help="reject: why (required)")] = None,
    artifact: Annotated[
        str | None,
        typer.Option(metavar="FILE", help="edit: the artifact (JSON) that flows on ('-': stdin)"),
    ] = None,
    by: Annotated[str | None, typer.Option(help="who decides (default: this OS user)")] = None,
    decision_id: Annotated[
        str | None,
        typer.Option(help="the decision's id (default: a new one); the same id twice is one"),
    ] = None,
    model: Annotated[str | None, typer.Option(help="retry: the stage's model from now")] = None,
    threshold: Annotated[
        float | None, typer.Option(help="retry: the accept share from now (0.5-1)")
    ] = None,
    max_rounds: Annotated[int | None, typer.Option(help="retry: debate rounds from now")] = None,
    as_json: Json = False,
) -> None:
    """Run history: list, show, events, artifacts, watch; fetch brings a finished run's
    branch tekton/RUN_ID into a repository, patch prints its change as a patch; approve,
    reject and edit decide the gate a paused run waits at (`tekton run --approve`);
    retry runs a failed run's blocked stage again (told why it was blocked; --model,
    --threshold, --max-rounds change it) and goes on; diff RUN_A RUN_B compares two runs
    stage by stage (a fork with its source: `tekton run --fork`); prune --older-than D
    removes ended runs from every store (events, rows, artifacts, workspace objects,
    lessons); export RUN writes the run as a tar (> run.tar), import FILE keeps it here."""
    keep = Path(os.path.abspath(out)) if out else None
    target = Path(os.path.abspath(repo))

    async def go(settings: Settings) -> int:
        if verb not in RUNS_VERBS:
            raise ConfigError(f"tekton runs takes {', '.join(RUNS_VERBS)}, not {verb!r}")
        if verb == "prune":
            return await retention.prune(settings, older_than, dry_run, as_json)
        if verb == "import":
            if not run_id:
                raise ConfigError("tekton runs import needs the export's FILE ('-': stdin)")
            return await retention.restore(settings, run_id, as_json)
        if verb != "list" and not run_id:
            raise ConfigError(f"tekton runs {verb} needs a RUN_ID")
        if run_id:
            check_run_id(run_id)
        if other and verb != "diff":
            raise ConfigError(f"tekton runs {verb} takes one run, not {other!r} too")
        if verb == "diff":
            if not other:
                raise ConfigError("tekton runs diff needs two runs: RUN_A RUN_B")
            return await compare.diff(settings, run_id or "", check_run_id(other), as_json)
        if verb == "retry":
            again = make(
                RetryRequest,
                run_id=run_id,
                stage=stage,
                model=model,
                threshold=threshold,
                max_rounds=max_rounds,
            )
            return await runs.resume(settings, run_id or "", as_json, keep, again)
        if verb == "watch":
            return await runs.watch(settings, run_id or "", as_json)
        if verb == "export":
            return await retention.export(settings, run_id or "", keep, as_json)
        if verb in ("fetch", "patch"):
            return await runs.result(settings, verb, run_id or "", target)
        if verb in runs.DECISION_VERBS:
            ask = runs.decision(
                verb,
                run_id or "",
                stage=stage,
                comment=reason if verb == "reject" else comment,
                artifact=artifact,
                by=by,
                decision_id=decision_id,
            )
            return await runs.decide(settings, ask, as_json)
        return await runs.history(settings, verb, run_id, as_json, keep)

    run(ctx, go)


@commands.command("debate")
def run_debate(
    ctx: typer.Context,
    question: Annotated[str, typer.Argument(help="what to debate")],
    stage: Annotated[str, typer.Option(help="stage (chooses the default roles)")] = "general",
    rounds: Annotated[int, typer.Option(help="maximum rounds")] = DEFAULT_ROUNDS,
    consensus_free: Annotated[
        bool, typer.Option("--consensus-free", help="one proponent pass plus the mediator")
    ] = False,
    schema: Annotated[str, typer.Option(help="registered artifact schema name")] = "decision",
    role: Roles = None,
    model: Annotated[str | None, typer.Option("--model", help="model for every turn")] = None,
    token_budget: Annotated[int, typer.Option(help="stop past this many tokens")] = 0,
    timeout: Annotated[float, typer.Option(help="seconds to wait")] = 600.0,
    as_json: Json = False,
) -> None:
    """Ask Rhetor for a triad debate and watch it live (exit 3 when it is blocked).

    Three debaters answer in parallel each round; the mediator reconciles into an
    artifact validated against the schema."""

    async def go(settings: Settings) -> int:
        try:
            other = [s for s in role or [] if parse_seat(s).stage not in (None, stage)]
        except ValueError as exc:
            raise ConfigError(f"--role: {exc}") from None
        if other:
            raise ConfigError(f"--role {other[0]}: this debate's stage is {stage}")
        roles, models = seats_for(overlay(settings.seats, role or []), stage)
        request = make(
            DebateRequest,
            prompt=question,
            stage=stage,
            max_rounds=rounds,
            consensus_free=consensus_free,
            artifact_schema=schema,
            roles=roles,
            models=models,
            model=model,
            token_budget=token_budget,
        )
        result = await debate.debate(settings, request, timeout, as_json)
        return 0 if result.status == "approved" else 3

    run(ctx, go)


@commands.command("answer")
def answer_seat(
    ctx: typer.Context,
    debate_id: Annotated[str, typer.Argument(help="the debate (shown where its seat waits)")],
    role: Annotated[str, typer.Option(help="the seat: proponent, skeptic, pragmatist, mediator")],
    position: Annotated[
        str | None,
        typer.Option(
            metavar="FILE",
            help="the answer as JSON ('-': stdin): a debater's position (tekton schema "
            "PositionReply), the mediator's outcome (OutcomeReply, its artifact the stage's)",
        ),
    ] = None,
    show: Annotated[
        bool,
        typer.Option(
            "--show", help="print what the seat is asked (a run's debate), and answer nothing"
        ),
    ] = False,
    by: Annotated[str | None, typer.Option(help="who answers (default: this OS user)")] = None,
    answer_round: Annotated[
        int | None,
        typer.Option(
            "--round", help="the round answered (refused when the seat waits for another)"
        ),
    ] = None,
    as_json: Json = False,
) -> None:
    """Answer for a person's seat of a debate (--role ROLE=human): the debate takes the
    answer when it holds to the seat's schema, else says what is wrong and waits on.
    With --show, what the seat is asked, as a CI in it would be."""

    async def go(settings: Settings) -> int:
        checked = check_id("debate id", debate_id)
        if show:
            return await debate.show_ask(settings, checked, role, as_json)
        if position is None:
            raise ConfigError("give the answer (--position FILE), or --show the question")
        said = make(
            SeatAnswer,
            role=role,
            answer=runs.read_json("--position", position),
            by=by or runs.user(),
            round=answer_round,
        )
        return await debate.answer(settings, checked, said, as_json)

    run(ctx, go)


@commands.command()
def roster(ctx: typer.Context, as_json: Json = False) -> None:
    """CIs Rhetor can use: health, turns, failures, latency, tokens."""

    async def go(settings: Settings) -> int:
        await debate.roster(settings, as_json)
        return 0

    run(ctx, go)
