"""Moderated team chat: broadcast, gather replies until a deadline, then moderate.

Modes: ``pass_through`` (every reply), ``directed`` (only the named CIs),
``synthesis`` (a mediator CI writes one answer from the replies) and ``consensus``
(each CI votes; the confidence-weighted tally decides). Replies reach the caller as
they arrive (TeamAnswer, TeamMiss); a final TeamResult ends the exchange.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Literal

import msgspec
from nats.aio.client import Client

from tekton_common.catalog import CIId
from tekton_common.client import error_of
from tekton_common.contract.debates import TeamRequest, reply_schema
from tekton_common.contract.platform import (
    Ballot,
    TeamAnswer,
    TeamEvent,
    TeamMiss,
    TeamResult,
    TeamVote,
)
from tekton_common.errors import ProtocolError
from tekton_common.gather import gather
from tekton_common.subjects import TEAM_CHAT
from tekton_common.wire import ChatRequest, TeamReply
from tekton_rhetor.calls import CallStats, call_ci

VOTE_SCHEMA = reply_schema(TeamVote)
Emit = Callable[[TeamEvent], Awaitable[None]]
_vote = msgspec.json.Decoder(TeamVote)


async def _collect(
    nc: Client, request: TeamRequest, asked: ChatRequest, stats: CallStats, emit: Emit
) -> list[TeamAnswer]:
    replies: list[TeamAnswer] = []
    started = time.perf_counter()

    async def keep(reply: TeamReply) -> None:
        answer = TeamAnswer(
            ai_id=reply.ai_id,
            content=reply.content,
            model=reply.model,
            latency=reply.latency,
            elapsed_s=round(time.perf_counter() - started, 4),
        )
        replies.append(answer)
        await emit(answer)

    if request.cis:  # a chosen set: ask each directly, all at once

        async def one(ci: str) -> None:
            attempt = await call_ci(nc, ci, asked, request.deadline, stats)
            if attempt.reply is not None:
                got = attempt.reply
                await keep(TeamReply(got.ai_id, got.content, got.model, got.latency))
            else:
                await emit(TeamMiss(ai_id=ci, error=attempt.error))

        await asyncio.gather(*(one(str(CIId.from_str(ci))) for ci in request.cis))
        return replies
    async for msg in gather(nc, TEAM_CHAT, msgspec.json.encode(asked), deadline=request.deadline):
        if error_of(msg) is None:
            await keep(msgspec.json.decode(msg.data, type=TeamReply))
    return replies


async def moderate(nc: Client, request: TeamRequest, stats: CallStats, emit: Emit) -> None:
    """Run one moderated exchange, emitting replies and then the result."""
    if request.mode == "directed" and not request.cis:
        raise ProtocolError("directed mode needs the CIs to address (cis)")
    asked = ChatRequest(content=request.message)
    if request.mode == "consensus":
        asked = ChatRequest(
            content=f"Vote accept or reject, with your confidence and reason: {request.message}",
            json_schema=VOTE_SCHEMA,
        )
    replies = await _collect(nc, request, asked, stats, emit)
    answered = sorted(r.ai_id for r in replies)
    if request.mode == "consensus":
        votes = {r.ai_id: ballot(r.content) for r in replies}
        share = accept_share(votes)
        passed = share + 1e-9 >= request.threshold
        decision: Literal["accept", "reject"] = "accept" if passed else "reject"
        await emit(
            TeamResult(request.mode, answered, votes=votes, accept_share=share, decision=decision)
        )
        return
    if request.mode != "synthesis" or not replies:
        await emit(TeamResult(request.mode, answered))
        return
    digest = "\n".join(f"[{r.ai_id}] {r.content}" for r in replies)
    mediator = str(CIId.from_str(request.mediator))
    ask = f"Write one answer to: {request.message}\nfrom these replies of the team:\n{digest}"
    attempt = await call_ci(
        nc, mediator, ChatRequest(content=ask), max(request.deadline, 30.0), stats
    )
    await emit(
        TeamResult(
            request.mode,
            answered,
            mediator=mediator,
            synthesis=attempt.reply.content if attempt.reply else None,
            error=attempt.error,
        )
    )


def ballot(content: str) -> Ballot:
    """One reply counted as a vote: `abstain` when it is not a TeamVote."""
    try:
        vote = _vote.decode(content)
    except msgspec.DecodeError:
        return Ballot("abstain", 0.0)
    return Ballot(vote.vote, float(vote.self_confidence))


def accept_share(votes: dict[str, Ballot]) -> float:
    """The confidence-weighted share of accepts among the votes cast."""
    weight = sum(b.confidence for b in votes.values() if b.vote != "abstain")
    accept = sum(b.confidence for b in votes.values() if b.vote == "accept")
    return round(accept / weight, 4) if weight else 0.0
