"""`tekton debate`, `tekton roster` and Rhetor-moderated `tekton team`."""

from __future__ import annotations

import sys

import msgspec

from tekton_cli.output import print_json, table
from tekton_common.client import Tekton
from tekton_common.contract.debates import (
    DebateRequest,
    DebateResult,
    SeatAnswer,
    TeamRequest,
    TurnRecord,
)
from tekton_common.contract.events import (
    AnyDebateEvent,
    AnyRunEvent,
    DebateStarted,
    RepairAsked,
    RoundEnded,
    SeatAwaited,
    StageProgress,
    StageStarted,
    TurnTaken,
)
from tekton_common.contract.platform import RosterEntry, TeamAnswer, TeamMiss, TeamResult
from tekton_common.errors import NotFoundError
from tekton_common.settings import Settings


def _turn_line(turn: TurnRecord) -> str:
    head = f"  round {turn.round} {turn.role:<10} {turn.ci:<14}"
    cost = f"({turn.latency_s:.2f}s, {turn.tokens} tok)"
    if turn.abstained:
        return f"{head} abstained: {turn.error} {cost}"
    if turn.role == "mediator":
        outcome = turn.outcome or {}
        state = outcome.get("status", "no outcome")
        note = f" invalid: {turn.error}" if turn.error else ""
        return f"{head} {state} (confidence {outcome.get('confidence', '-')}){note} {cost}"
    position = turn.position
    if position is None:
        return f"{head} no position {cost}"
    text = " ".join(position.position.split())[:90]
    return f"{head} {position.vote:<7} ({position.self_confidence:.2f}) {text} {cost}"


def print_event(event: AnyDebateEvent) -> None:
    """One debate event as a line of the live view."""
    match event:
        case DebateStarted():
            roles = ", ".join(
                f"{r}={c}" + (f"@{event.models[r]}" if r in event.models else "")
                for r, c in event.roles.items()
            )
            print(f"debate {event.debate_id} ({event.stage}): {roles}")
        case TurnTaken():
            print(_turn_line(event.turn))
        case RoundEnded():
            print(f"  round {event.round}: weighted accept share {event.accept_share:.2f}")
        case RepairAsked():
            print(f"  repair {event.attempt}: {'; '.join(event.errors[:3])}")
        case SeatAwaited():
            print(
                f"  round {event.round} {event.role:<10} waits for a person: tekton answer "
                f"{event.debate_id} --role {event.role} --position FILE (its {event.kind}); "
                "asked:"
            )
            print("    " + event.ask.replace("\n", "\n    "))
    sys.stdout.flush()


def _asked(events: list[AnyRunEvent], debate_id: str, role: str) -> StageProgress | None:
    """The last question a run's events keep for `role`'s seat of debate `debate_id`."""
    found, inside = None, None
    for event in events:
        if isinstance(event, StageStarted):
            if event.debate_id == debate_id:
                inside = event.stage
            elif event.stage == inside:
                inside = None  # the stage again (a retry): another debate
        elif (
            isinstance(event, StageProgress)
            and event.stage == inside
            and event.step == "awaiting answer"
            and event.role == role
        ):
            found = event
    return found


async def show_ask(settings: Settings, debate_id: str, role: str, as_json: bool) -> int:
    """`tekton answer --show`: what a person's seat of a run's debate is asked."""
    run_id = debate_id.rsplit("-", 2)[0]  # a stage's debate is <run>-<stage>-<seq>
    async with Tekton.connect(settings) as tekton:
        try:
            events = await tekton.events(run_id)
        except (NotFoundError, ValueError):
            events = []
    asked = _asked(events, debate_id, role)
    if asked is None or asked.ask is None:
        raise NotFoundError(
            f"no run keeps a question for the {role} seat of debate {debate_id} (a debate "
            f"of no run prints its question where it runs: tekton debate)"
        )
    if as_json:
        print_json({"debate_id": debate_id, "role": role, "stage": asked.stage, "ask": asked.ask})
    else:
        print(asked.ask)
    return 0


async def answer(settings: Settings, debate_id: str, said: SeatAnswer, as_json: bool) -> int:
    """`tekton answer`: a person's answer for a debate's human seat."""
    async with Tekton.connect(settings) as tekton:
        taken = await tekton.answer(debate_id, said)
    if as_json:
        print_json(taken)
    else:
        print(
            f"the {taken.role} seat of debate {taken.debate_id} took {taken.by}'s answer "
            f"(round {taken.round})"
        )
    return 0


async def debate(
    settings: Settings, request: DebateRequest, timeout: float, as_json: bool
) -> DebateResult:
    """Ask Rhetor for a debate, showing its turns as they happen."""

    async def shown(event: AnyDebateEvent) -> None:
        if not as_json:
            print_event(event)

    async with Tekton.connect(settings) as tekton:
        result = await tekton.debate(request, shown, timeout)
    if as_json:
        print_json(result)
        return result
    print(
        f"{result.status.upper()}"
        + (f": {result.reason}" if result.reason else "")
        + f" · rounds {result.loops_run} · accept share {result.accept_share:.2f} · "
        f"confidence {result.confidence:.2f} · {result.total_tokens} tokens · "
        f"${result.cost_usd:.4f} · {result.duration_s:.2f}s"
    )
    if result.artifact is not None:
        print_json(result.artifact)
    return result


async def roster(settings: Settings, as_json: bool) -> list[RosterEntry]:
    """Rhetor's roster."""
    async with Tekton.connect(settings) as tekton:
        entries = await tekton.roster()
    if as_json:
        print_json(entries)
    else:
        print(
            table(
                [
                    "CI",
                    "INSTANCES",
                    "ACTIVE",
                    "HEALTHY",
                    "PING",
                    "MODEL",
                    "TURNS",
                    "FAILURES",
                    "MEAN LATENCY",
                    "TOKENS",
                ],
                [
                    (
                        e.ci,
                        e.instances,
                        e.active,
                        "yes" if e.healthy else "no",
                        f"{e.ping_ms:.1f}ms" if e.ping_ms is not None else "-",
                        e.model or "-",
                        e.turns,
                        e.failures,
                        f"{e.mean_latency_s:.3f}s",
                        e.tokens,
                    )
                    for e in entries
                ],
            )
        )
    return entries


async def moderated_team(settings: Settings, request: TeamRequest, as_json: bool) -> int:
    """Team chat through Rhetor; replies print as they come, then the moderation."""
    count = 0
    async with Tekton.connect(settings) as tekton:
        async for event in tekton.moderated_team(request):
            if as_json:
                sys.stdout.write(msgspec.json.encode(event).decode() + "\n")
            elif isinstance(event, TeamAnswer):
                count += 1
                print(f"[{event.ai_id} · {event.elapsed_s:.2f}s] {event.content}")
            elif isinstance(event, TeamMiss):
                print(f"[{event.ai_id}] error: {event.error}", file=sys.stderr)
            else:
                _print_result(event)
            sys.stdout.flush()
    return count


def _print_result(result: TeamResult) -> None:
    print(f"-- {result.mode}: {len(result.answered)} answered")
    if result.synthesis:
        print(f"[synthesis by {result.mediator}] {result.synthesis}")
    if result.decision is not None:
        print(f"decision: {result.decision} (weighted accept {result.accept_share or 0:.2f})")
        for ci, vote in sorted((result.votes or {}).items()):
            print(f"  {ci}: {vote.vote} ({vote.confidence:.2f})")
