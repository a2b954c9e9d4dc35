"""Human seats: a debate's seat that a person takes (``--role skeptic=human``).

Rhetor asks the person what it would ask a CI in the seat: the question goes out as a
`SeatAwaited` debate event, and the answer comes on ``tekton.debates.<id>.answer``
(``tekton answer``, ``POST /debates/{id}/answers``). An answer is held to the seat's
schema before the debate takes it: a wrong one is refused with what is wrong and the
seat waits on; an answer for a seat that waits for none is refused too. While a seat
waits, a `SeatWaiting` event every few seconds tells the stage that asked that the
debate is alive. A seat with no answer before its timeout abstains, as a CI that does
not answer does.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

import msgspec
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from tekton_common.client.bus import ERROR_CODE_HEADER, ERROR_HEADER
from tekton_common.contract.codec import decode
from tekton_common.contract.debates import HUMAN, SeatAnswer, SeatAnswered
from tekton_common.contract.events import DebateEvent, SeatAwaited, SeatWaiting
from tekton_common.contract.schemas import JsonObject
from tekton_common.errors import ConflictError, ProtocolError, TektonError
from tekton_common.secrets import failure
from tekton_common.subjects import debate_answers
from tekton_common.wire import Response, Usage
from tekton_rhetor.calls import Attempt

#: how often a waiting seat says it is alive (seconds; well within a stage's silence)
KEEPALIVE = 10.0
#: what is wrong with an answer (empty when it holds)
Check = Callable[[JsonObject], list[str]]
Emit = Callable[[DebateEvent], Awaitable[None]]


@dataclass
class _Waiting:
    round: int
    check: Check
    answer: asyncio.Future[tuple[JsonObject, str]]


class HumanSeats:
    """The human seats of one debate, and its answer subscription while it runs."""

    def __init__(
        self,
        nc: Client,
        debate_id: str,
        timeout: float,
        keepalive: float = KEEPALIVE,
        within: float | None = None,
    ) -> None:
        self.nc = nc
        self.debate_id = debate_id
        self.timeout = timeout
        self.keepalive = keepalive
        #: every seat's wait ends by then (monotonic): the debate's whole time
        self.until = time.monotonic() + within if within is not None else None
        self.waiting: dict[str, _Waiting] = {}
        self._sub: Subscription | None = None

    async def open(self) -> None:
        """Take answers (only this Rhetor holds the debate, so no queue group)."""
        self._sub = await self.nc.subscribe(debate_answers(self.debate_id), cb=self._answer)

    async def close(self) -> None:
        """Take no more answers."""
        if self._sub is not None:
            sub, self._sub = self._sub, None
            await sub.unsubscribe()

    async def ask(
        self,
        role: str,
        number: int,
        question: str,
        kind: Literal["position", "outcome"],
        check: Check,
        emit: Emit,
    ) -> Attempt:
        """The person's answer for `role` as a CI's reply would be (or, past the
        timeout, no reply: the seat abstains)."""
        answer = asyncio.get_running_loop().create_future()
        self.waiting[role] = _Waiting(number, check, answer)
        started = time.monotonic()
        limit = self.timeout if self.until is None else min(self.timeout, self.until - started)
        limit = max(limit, 0.0)
        deadline = round(time.time() + limit, 3)
        await emit(SeatAwaited(role=role, round=number, ask=question, kind=kind, deadline=deadline))
        try:
            while not answer.done():
                left = limit - (time.monotonic() - started)
                if left <= 0:
                    error = f"no answer from the person in the {role} seat in {limit:g}s"
                    return Attempt(error=error, timed_out=True, latency=limit)
                await asyncio.wait({answer}, timeout=min(self.keepalive, left))
                if not answer.done():
                    waited = round(time.monotonic() - started, 1)
                    await emit(SeatWaiting(role=role, waited_s=waited))
        finally:
            self.waiting.pop(role, None)
        given, by = answer.result()
        took = time.monotonic() - started
        reply = Response(
            ai_id=HUMAN,
            content=json.dumps(given, ensure_ascii=False),
            model=f"{HUMAN}:{by}",
            usage=Usage(),
            latency=round(took, 3),
        )
        return Attempt(reply=reply, latency=took)

    async def _answer(self, msg: Msg) -> None:
        try:
            await self._take(msg)
        except Exception as exc:  # an answer must never go unanswered
            if msg.reply:
                headers = {
                    ERROR_HEADER: f"internal error: {failure(exc)}",
                    ERROR_CODE_HEADER: "500",
                }
                await self.nc.publish(msg.reply, b"", headers=headers)

    async def _take(self, msg: Msg) -> None:
        try:
            said = decode(msg.data, SeatAnswer)
            waiting = self.waiting.get(said.role)
            if waiting is None or waiting.answer.done():
                now = ", ".join(self.waiting) or "none"
                raise ConflictError(
                    f"debate {self.debate_id} waits for no answer from the {said.role} seat "
                    f"(it waits for: {now})"
                )
            if said.round is not None and said.round != waiting.round:
                raise ConflictError(
                    f"the {said.role} seat waits for round {waiting.round}'s answer, "
                    f"not round {said.round}'s"
                )
            if errors := waiting.check(said.answer):
                raise ProtocolError(
                    f"the {said.role}'s answer does not hold: " + "; ".join(errors[:10])
                )
            waiting.answer.set_result((said.answer, said.by))
            reply = SeatAnswered(
                debate_id=self.debate_id, role=said.role, round=waiting.round, by=said.by
            )
            if msg.reply:
                await self.nc.publish(msg.reply, msgspec.json.encode(reply))
        except TektonError as exc:
            if msg.reply:
                headers = {ERROR_HEADER: str(exc)[:1000], ERROR_CODE_HEADER: str(exc.code)}
                await self.nc.publish(msg.reply, b"", headers=headers)
