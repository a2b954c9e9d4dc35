"""Rhetor's tools: the roster it keeps, and a run's debate transcripts (its turns in the
run's events, ``TEKTON_RUNS``)."""

from __future__ import annotations

from typing import Annotated

import msgspec
from nats.aio.client import Client

from tekton_common.contract.debates import TurnRecord
from tekton_common.contract.events import DebateTurn
from tekton_common.contract.ids import Id, RunId
from tekton_common.contract.platform import Roster
from tekton_common.runlog import read_events
from tekton_common.tools.base import NoInput, Tool, UnknownToolError
from tekton_rhetor.roster import RosterKeeper


class TranscriptInput(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One run's debates, or one stage's."""

    run_id: Annotated[RunId, msgspec.Meta(description="the run's id")]
    stage: Annotated[Id, msgspec.Meta(description="only this stage's debate")] | None = None


class Transcript(msgspec.Struct, frozen=True):
    """The turns of a run's debates, in order, with the stage and debate of each."""

    run_id: str
    turns: list[DebateTurn]


def _roster_line(roster: Roster) -> str:
    healthy = [e.ci for e in roster.cis if e.healthy]
    down = [e.ci for e in roster.cis if not e.healthy]
    line = f"{len(healthy)} of {len(roster.cis)} CIs healthy"
    return line + (f"; not healthy: {', '.join(down)}" if down else "")


def _turn_line(turn: TurnRecord) -> str:
    said = turn.position.vote if turn.position is not None else "outcome"
    return f"r{turn.round} {turn.role} {turn.ci}: {'abstained' if turn.abstained else said}"


def rhetor_tools(nc: Client, roster: RosterKeeper) -> list[Tool]:
    """The roster and the transcripts."""

    async def listed(_asked: NoInput) -> Roster:
        return Roster(cis=await roster.snapshot())

    async def transcript(asked: TranscriptInput) -> Transcript:
        events = await read_events(nc.jetstream(timeout=5), asked.run_id)
        if not events:
            raise UnknownToolError(f"no run {asked.run_id}")
        turns = [
            e
            for e in events
            if isinstance(e, DebateTurn) and (asked.stage is None or e.stage == asked.stage)
        ]
        return Transcript(run_id=asked.run_id, turns=turns)

    return [
        Tool(
            ci="rhetor",
            name="roster",
            description="The roster: every CI's instances, health, ping, model and debate "
            "counters (turns, failures, mean latency, tokens).",
            input=NoInput,
            output=Roster,
            run=listed,
            summary=_roster_line,
            keywords=("roster", "team", "healthy", "debaters"),
        ),
        Tool(
            ci="rhetor",
            name="transcript",
            description="A run's debate turns (every stage's, or one stage's): each seat's "
            "position, vote and confidence, and the mediator's outcome.",
            input=TranscriptInput,
            output=Transcript,
            run=transcript,
            summary=lambda t: (
                f"run {t.run_id}: {len(t.turns)} turns; "
                + "; ".join(f"{e.stage} {_turn_line(e.turn)}" for e in t.turns[-6:])
            ),
            keywords=("transcript", "debate", "debates", "votes"),
        ),
    ]
