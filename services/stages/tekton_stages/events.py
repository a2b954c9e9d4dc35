"""Run events on ``tekton.runs.<id>.events``, kept by the JetStream stream TEKTON_RUNS.

Types: RunStarted, StageStarted, StageProgress, DebateTurn, StageBlocked,
ArtifactCreated, StageFinished, RunFinished, RunFailed, each with ``.v1``. Every event
carries the run id and a sequence number; the message id ``<run>-<seq>`` lets
JetStream drop a duplicate if a publish is retried.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import msgspec
import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import DeliverPolicy, StreamConfig

from tekton_common import bus, spans
from tekton_common.bus import replicas
from tekton_common.contract.ids import check_run_id
from tekton_common.errors import TransportError

logger = logging.getLogger(__name__)
RUNS_STREAM = "TEKTON_RUNS"
RUNS_SUBJECTS = "tekton.runs.*.events"
TERMINAL = ("RunFinished.v1", "RunFailed.v1")


def run_subject(run_id: str) -> str:
    """Where a run's events go (the id checked: it becomes a subject token)."""
    return f"tekton.runs.{check_run_id(run_id)}.events"


async def ensure_runs_stream(nc: Client) -> None:
    """Create TEKTON_RUNS if missing (idempotent)."""
    await nc.jetstream(timeout=5).add_stream(
        StreamConfig(
            name=RUNS_STREAM,
            subjects=[RUNS_SUBJECTS],
            description="Tekton run events",
            duplicate_window=120,
            num_replicas=replicas(nc),
        )
    )


class EventLog:
    """Publishes one run's events in order, each acknowledged by JetStream.

    A publish that gets no acknowledgement (NATS restarting, a JetStream leader moving)
    is sent again with the same message id, which JetStream deduplicates, until it is
    acknowledged or `patience` seconds have passed. What no retry can mend ends at once:
    no stream capturing the subject, or (with `nc`) the server refusing it to this
    process's user. Events are published one at a time, so the stream holds them in
    `seq` order.
    """

    def __init__(
        self,
        js: JetStreamContext,
        run_id: str,
        seq: int = 0,
        patience: float = 120.0,
        nc: Client | None = None,
    ) -> None:
        self.js = js
        self.nc = nc
        self.run_id = run_id
        self.subject = run_subject(run_id)
        self.seq = seq
        self.patience = patience
        self.lock = asyncio.Lock()
        self.publishing: set[asyncio.Future[dict[str, Any]]] = set()

    async def emit(self, kind: str, **data: Any) -> dict[str, Any]:
        """Publish one event; returns it.

        The publish goes on when the caller is cancelled (a debate's event callback ends
        with its subscription): an event that may have reached the stream is always
        counted, so the next event never reuses its seq and message id (which JetStream
        would drop as a duplicate)."""
        task = asyncio.ensure_future(self._emit(kind, data))
        self.publishing.add(task)
        task.add_done_callback(self._published)
        return await asyncio.shield(task)

    def _published(self, task: asyncio.Future[dict[str, Any]]) -> None:
        self.publishing.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            logger.debug("run %s: event not published: %r", self.run_id, exc)

    async def _emit(self, kind: str, data: dict[str, Any]) -> dict[str, Any]:
        async with self.lock:
            event = {
                "type": f"{kind}.v1",
                "run_id": self.run_id,
                "seq": self.seq + 1,
                "ts": time.time(),
                **data,
            }
            await self._publish(msgspec.json.encode(event), f"{self.run_id}-{self.seq + 1}")
            self.seq += 1
            return event

    async def _publish(self, payload: bytes, msg_id: str) -> None:
        async def publish() -> None:
            try:
                with spans.quiet_hops():
                    await self.js.publish(
                        self.subject, payload, timeout=5, headers={"Nats-Msg-Id": msg_id}
                    )
            except nats.js.errors.NoStreamResponseError:
                await self._stream_exists()
                raise  # a stream without a leader, for now: asked again

        await bus.patiently(
            publish, f"event {msg_id}", self.patience, nc=self.nc, subject=self.subject
        )

    async def _stream_exists(self) -> None:
        """TransportError (not retried) when no stream captures the run's subject."""
        try:
            await self.js.find_stream_name_by_subject(self.subject)
        except nats.js.errors.NotFoundError:
            raise TransportError(f"no JetStream stream captures {self.subject}") from None
        except (nats.errors.Error, OSError):
            return  # JetStream cannot say now; the publish is asked again


async def read_events(js: JetStreamContext, run_id: str, idle: float = 0.5) -> list[dict[str, Any]]:
    """Every stored event of a run, in order."""
    try:
        last = await js.get_last_msg(RUNS_STREAM, run_subject(run_id))
    except nats.js.errors.NotFoundError:
        return []
    sub = await js.subscribe(
        run_subject(run_id), ordered_consumer=True, deliver_policy=DeliverPolicy.ALL
    )
    events: list[dict[str, Any]] = []
    try:
        while True:
            try:
                msg = await sub.next_msg(timeout=idle)
            except nats.errors.TimeoutError:
                break
            events.append(msgspec.json.decode(msg.data))
            if msg.metadata.sequence.stream >= (last.seq or 0):
                break
    finally:
        await sub.unsubscribe()
    return events
