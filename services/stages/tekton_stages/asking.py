"""Asking a stage over NATS while its debate's events become the run's events.

The stage endpoint (``tekton.stage.<stage>.run``) may live in any stages process. While
it works, Rhetor's turns and rounds and the stage's own recall and checks arrive on
``tekton.debates.<debate_id>.events``; each becomes a run event (DebateTurn,
StageProgress) in the run's log, in order. A stage that falls silent (its request or
reply died with a NATS server) is asked again, at most twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import msgspec
import nats.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from tekton_common import bus
from tekton_common.client import error_of
from tekton_common.contract.codec import encode
from tekton_common.contract.events import (
    MAX_ASK,
    AnyRunEvent,
    DebateFinished,
    DebateTurn,
    RoundEnded,
    SeatAwaited,
    StageProgress,
    StageRecalled,
    TurnTaken,
    debate_event,
)
from tekton_common.contract.runs import StageOutcome, StageRequest
from tekton_common.runlog import EventLog
from tekton_common.subjects import debate_events, stage_run

logger = logging.getLogger(__name__)
#: how long a stage request is asked again while nothing serves its subject
NO_RESPONDER_PATIENCE = 30.0


def recalled_line(event: StageRecalled) -> str:
    """What a stage recalled, in a few words."""
    if event.note != "ok":
        return event.note
    runs = sorted({x.run_id for x in event.lessons})
    said = f"{len(event.lessons)} lessons" + (f" from runs {', '.join(runs)}" if runs else "")
    return said + (f", {len(event.chunks)} repository chunks" if event.chunks else "")


def as_run_event(request: StageRequest, data: bytes) -> AnyRunEvent | None:
    """The run event a debate event becomes (None for those the run does not keep)."""
    event = debate_event(data)
    stage = request.stage
    if isinstance(event, TurnTaken):
        return DebateTurn(stage=stage, debate_id=request.debate_id, turn=event.turn)
    if isinstance(event, RoundEnded):
        return StageProgress(
            stage=stage, step=f"round {event.round}", accept_share=event.accept_share
        )
    if isinstance(event, SeatAwaited):
        until = time.strftime("%H:%M:%S UTC", time.gmtime(event.deadline))
        return StageProgress(
            stage=stage,
            step="awaiting answer",
            role=event.role,
            detail=f"the {event.role} seat (round {event.round}) waits for a person until "
            f"{until}: tekton answer {request.debate_id} --role {event.role} --position FILE",
            ask=event.ask[:MAX_ASK],
        )
    if isinstance(event, StageRecalled):
        return StageProgress(
            stage=stage,
            step="recalled",
            detail=recalled_line(event),
            lessons=event.lessons,
            chunks=event.chunks,
        )
    return None


_DRAINING: set[asyncio.Task[None]] = set()


async def _close(sub: Subscription) -> None:
    """End a debate's event subscription once the events already received are handled
    (the stage's last ones arrive with its reply). Waits up to 5 s; past that (NATS
    restarting) the drain goes on in the background."""
    drain = asyncio.ensure_future(sub.drain())  # type: ignore[no-untyped-call]
    _DRAINING.add(drain)
    drain.add_done_callback(_drained)
    with contextlib.suppress(TimeoutError, nats.errors.Error):
        await asyncio.wait_for(asyncio.shield(drain), 5.0)


def _drained(task: asyncio.Task[None]) -> None:
    _DRAINING.discard(task)
    if not task.cancelled() and task.exception() is not None:  # closed already: nothing left
        logger.debug("debate events subscription: %r", task.exception())


class StageCaller:
    """Asks stages for one coordinator (`timeout`: a stage's whole work; `silence`: how
    long a stage may say nothing before it is asked again)."""

    def __init__(self, nc: Client, timeout: float, silence: float) -> None:
        self.nc = nc
        self.timeout = timeout
        self.silence = silence

    async def ask(self, request: StageRequest, log: EventLog) -> StageOutcome:
        """The stage's outcome; its debate's events are in `log` before it returns."""
        finished = asyncio.Event()
        heard = [time.monotonic()]  # when the stage last showed it is alive

        async def forward(msg: Msg) -> None:
            heard[0] = time.monotonic()
            if isinstance(debate_event(msg.data), DebateFinished):
                finished.set()
            elif (event := as_run_event(request, msg.data)) is not None:
                await log.emit(event)

        sub = await self.nc.subscribe(debate_events(request.debate_id), cb=forward)
        try:
            reply = await self._ask_patiently(request, heard)
            if (error := error_of(reply)) is not None:
                return StageOutcome(request.stage, "blocked", str(error), None)
            outcome = msgspec.json.decode(reply.data, type=StageOutcome)
            # the debate's last events may still be in flight: forward them first
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(finished.wait(), 2.0)
            return outcome
        finally:
            await _close(sub)

    async def _request(self, subject: str, data: bytes) -> Msg:
        """The stage request; asked again while the stage has no responder (its endpoints
        are being registered, or their process is starting again)."""
        return await bus.while_unanswered(
            lambda: self.nc.request(subject, data, timeout=self.timeout),
            NO_RESPONDER_PATIENCE,
        )

    async def _ask_patiently(self, request: StageRequest, heard: list[float]) -> Msg:
        """The stage request, sent again (at most twice) when the stage falls silent for
        `silence` seconds."""
        subject, data = stage_run(request.stage), encode(request)
        for resends_left in (2, 1, 0):
            heard[0] = time.monotonic()
            ask = asyncio.ensure_future(self._request(subject, data))
            while not ask.done():
                await asyncio.wait({ask}, timeout=1.0)
                silent = time.monotonic() - heard[0] > self.silence
                if silent and resends_left and not ask.done():
                    ask.cancel()
                    logger.warning("stage %s silent; asking again", request.stage)
                    break
            else:
                return ask.result()
        raise AssertionError("the last attempt is never cancelled")
