"""Moderated team chat: broadcast, gather replies until a deadline, then moderate.

Modes: ``pass_through`` (every reply), ``directed`` (only the named CIs),
``synthesis`` (a mediator CI writes one answer from the replies) and ``consensus``
(each CI votes; the confidence-weighted tally decides). Replies reach the caller as
they arrive; a final ``team.result`` message ends the exchange.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from nats.aio.client import Client

from tekton_common.catalog import CIId
from tekton_common.client import ERROR_CODE_HEADER
from tekton_common.contract.debates import TeamRequest
from tekton_common.errors import ProtocolError
from tekton_common.gather import gather
from tekton_common.subjects import TEAM_CHAT
from tekton_rhetor.calls import CallStats, call_ci

VOTE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["vote", "self_confidence", "reason"],
    "properties": {
        "vote": {"enum": ["accept", "reject"]},
        "self_confidence": {"type": "number", "minimum": 0, "maximum": 1},
        "reason": {"type": "string"},
    },
}
Emit = Callable[[dict[str, Any]], Awaitable[None]]


async def _collect(
    nc: Client, request: TeamRequest, payload: dict[str, Any], stats: CallStats, emit: Emit
) -> list[dict[str, Any]]:
    replies: list[dict[str, Any]] = []
    started = time.perf_counter()

    async def keep(reply: dict[str, Any]) -> None:
        reply["elapsed_s"] = round(time.perf_counter() - started, 4)
        replies.append(reply)
        await emit({"type": "team.reply", **reply})

    if request.cis:  # a chosen set: ask each directly, all at once

        async def one(ci: str) -> None:
            attempt = await call_ci(nc, ci, payload, request.deadline, stats)
            if attempt.reply is not None:
                await keep(
                    {
                        "ai_id": attempt.reply.ai_id,
                        "content": attempt.reply.content,
                        "model": attempt.reply.model,
                        "latency": attempt.reply.latency,
                    }
                )
            else:
                await emit({"type": "team.error", "ai_id": ci, "error": attempt.error})

        await asyncio.gather(*(one(str(CIId.from_str(ci))) for ci in request.cis))
        return replies
    async for msg in gather(nc, TEAM_CHAT, msgspec.json.encode(payload), deadline=request.deadline):
        if not (msg.headers or {}).get(ERROR_CODE_HEADER):
            await keep(msgspec.json.decode(msg.data))
    return replies


async def moderate(nc: Client, request: TeamRequest, stats: CallStats, emit: Emit) -> None:
    """Run one moderated exchange, emitting replies and then the result."""
    if request.mode == "directed" and not request.cis:
        raise ProtocolError("directed mode needs the CIs to address (cis)")
    payload: dict[str, Any] = {"content": request.message}
    if request.mode == "consensus":
        payload |= {
            "json_schema": VOTE_SCHEMA,
            "content": f"Vote accept or reject, with your confidence and reason: {request.message}",
        }
    replies = await _collect(nc, request, payload, stats, emit)
    result: dict[str, Any] = {
        "type": "team.result",
        "mode": request.mode,
        "answered": sorted(r["ai_id"] for r in replies),
    }
    if request.mode == "consensus":
        result |= tally(replies, request.threshold)
    elif request.mode == "synthesis" and replies:
        digest = "\n".join(f"[{r['ai_id']}] {r['content']}" for r in replies)
        mediator = str(CIId.from_str(request.mediator))
        attempt = await call_ci(
            nc,
            mediator,
            {
                "content": (
                    f"Write one answer to: {request.message}\nfrom these replies of the team:\n"
                    f"{digest}"
                )
            },
            max(request.deadline, 30.0),
            stats,
        )
        result |= {
            "mediator": mediator,
            "synthesis": attempt.reply.content if attempt.reply else None,
            "error": attempt.error,
        }
    await emit(result)


def tally(replies: list[dict[str, Any]], threshold: float) -> dict[str, Any]:
    """Confidence-weighted vote count of consensus replies."""
    votes: dict[str, dict[str, Any]] = {}
    for reply in replies:
        try:
            data = json.loads(reply["content"])
            votes[reply["ai_id"]] = {
                "vote": data["vote"],
                "confidence": float(data["self_confidence"]),
            }
        except (ValueError, KeyError, TypeError):
            votes[reply["ai_id"]] = {"vote": "abstain", "confidence": 0.0}
    weight = sum(v["confidence"] for v in votes.values() if v["vote"] != "abstain")
    accept = sum(v["confidence"] for v in votes.values() if v["vote"] == "accept")
    share = accept / weight if weight else 0.0
    return {
        "votes": votes,
        "accept_share": round(share, 4),
        "decision": "accept" if share + 1e-9 >= threshold else "reject",
    }
