"""The run event log: ``tekton.runs.<run_id>.events``, kept by the JetStream stream
``TEKTON_RUNS``. The run coordinator writes it (`EventLog`); the coordinator, the
command line, the API and the recorder read it (`read_events`, `follow_events`,
`run_ids`). The events are `tekton_common.contract.events`.

Every event carries the run id and its sequence number; the message id
``<run>-<seq>`` lets JetStream drop a duplicate when a publish is retried.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from typing import Any, TypeVar

import msgspec
import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import DeliverPolicy, StreamConfig

from tekton_common import bus, spans
from tekton_common.bus import replicas
from tekton_common.contract.events import AnyRunEvent, RunEvent, read_run_event
from tekton_common.contract.ids import check_run_id
from tekton_common.errors import ConflictError, TransportError
from tekton_common.subjects import RUN_EVENTS

logger = logging.getLogger(__name__)
#: JetStream's error code for a publish whose expected last sequence no longer holds
WRONG_LAST_SEQUENCE = 10071
E = TypeVar("E", bound=RunEvent)
RUNS_STREAM = "TEKTON_RUNS"
RUNS_SUBJECTS = RUN_EVENTS.format(run_id="*")


def run_subject(run_id: str) -> str:
    """Where a run's events go (the id checked: it becomes a subject token)."""
    return RUN_EVENTS.format(run_id=check_run_id(run_id))


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
        self.publishing: set[asyncio.Future[Any]] = set()

    async def emit_after(self, event: E, last: int, key: str) -> E:
        """Publish `event` only if the run's last stored message is still stream
        sequence `last`; ConflictError when another came first (two decisions racing:
        one wins). `key` names the event for JetStream's deduplication in place of its
        seq, so the same event sent again is one, and another is not taken for it."""
        expect = {
            "Nats-Expected-Last-Subject-Sequence": str(last),
            "Nats-Msg-Id": f"{self.run_id}:event:{key}",  # ':' is in no id
        }
        return await self.emit(event, expect)

    async def emit(self, event: E, expect: dict[str, str] | None = None) -> E:
        """Publish one event (its run id, seq and time filled in); returns it.

        The publish goes on when the caller is cancelled (a debate's event callback ends
        with its subscription): an event that may have reached the stream is always
        counted, so the next event never reuses its seq and message id (which JetStream
        would drop as a duplicate)."""
        task = asyncio.ensure_future(self._emit(event, expect))
        self.publishing.add(task)
        task.add_done_callback(self._published)
        return await asyncio.shield(task)

    def _published(self, task: asyncio.Future[Any]) -> None:
        self.publishing.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            logger.debug("run %s: event not published: %r", self.run_id, exc)

    async def _emit(self, event: E, expect: dict[str, str] | None) -> E:
        async with self.lock:
            stamped = msgspec.structs.replace(
                event, run_id=self.run_id, seq=self.seq + 1, ts=time.time()
            )
            await self._publish(
                msgspec.json.encode(stamped), f"{self.run_id}-{self.seq + 1}", expect or {}
            )
            self.seq += 1
            return stamped

    async def _publish(self, payload: bytes, msg_id: str, expect: dict[str, str]) -> None:
        async def publish() -> None:
            try:
                with spans.quiet_hops():
                    await self.js.publish(
                        self.subject,
                        payload,
                        timeout=5,
                        headers={"Nats-Msg-Id": msg_id, **expect},
                    )
            except nats.js.errors.APIError as exc:
                if exc.err_code == WRONG_LAST_SEQUENCE:
                    raise ConflictError(f"run {self.run_id}: another event came first") from None
                raise
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


async def read_stored(js: JetStreamContext, run_id: str, idle: float = 0.5) -> list[bytes]:
    """Every stored event of a run as it was stored (JSON), in order."""
    try:
        last = await js.get_last_msg(RUNS_STREAM, run_subject(run_id))
    except nats.js.errors.NotFoundError:
        return []
    return [msg.data async for msg in bus.stored(js, run_subject(run_id), idle, last.seq or 0)]


async def read_events(js: JetStreamContext, run_id: str, idle: float = 0.5) -> list[AnyRunEvent]:
    """Every stored event of a run, in order (events this version cannot read are
    skipped)."""
    read = (read_run_event(data) for data in await read_stored(js, run_id, idle))
    return [event for event in read if event is not None]


async def restore(js: JetStreamContext, run_id: str, stored: list[bytes]) -> None:
    """Store a run's events as they were stored elsewhere (an import): each only if the
    run's subject holds exactly the ones before it, so a run already here, or another
    import of it at once, is a ConflictError and nothing of this one is mixed in."""
    last = 0
    for seq, data in enumerate(stored, 1):
        headers = {
            "Nats-Msg-Id": f"{run_id}-{seq}",
            "Nats-Expected-Last-Subject-Sequence": str(last),
        }
        try:
            ack = await js.publish(run_subject(run_id), data, timeout=5, headers=headers)
        except nats.js.errors.APIError as exc:
            if exc.err_code == WRONG_LAST_SEQUENCE:
                raise ConflictError(f"run {run_id} is already here") from None
            raise
        if ack.duplicate:
            raise ConflictError(f"run {run_id} was stored moments ago (event {seq} again)")
        last = ack.seq


async def follow_events(
    js: JetStreamContext, run_id: str, idle: float = 3600.0
) -> AsyncIterator[tuple[AnyRunEvent, bytes, int]]:
    """A run's events as they are stored: every stored one first, then live ones (with
    each event's JSON as it was stored, and how many were stored after it when it was
    delivered), until none comes for `idle` seconds."""
    what = f"following run {run_id}"
    async for found in _follow(js, run_subject(run_id), DeliverPolicy.ALL, what, idle):
        yield found


async def follow_all(
    js: JetStreamContext, idle: float = 3600.0
) -> AsyncIterator[tuple[AnyRunEvent, bytes, int]]:
    """Every run's events from now on, as they are stored, until none comes for `idle`
    seconds."""
    async for found in _follow(js, RUNS_SUBJECTS, DeliverPolicy.NEW, "following the runs", idle):
        yield found


async def _follow(
    js: JetStreamContext, subject: str, policy: DeliverPolicy, what: str, idle: float
) -> AsyncIterator[tuple[AnyRunEvent, bytes, int]]:
    sub = await bus.patiently(
        lambda: js.subscribe(subject, ordered_consumer=True, deliver_policy=policy), what
    )
    try:
        while True:
            try:
                msg = await sub.next_msg(timeout=idle)
            except nats.errors.TimeoutError:
                return
            if (event := read_run_event(msg.data)) is not None:
                yield event, msg.data, msg.metadata.num_pending or 0
    finally:
        # a connection already closing (the command ends) has let the subscription go
        with contextlib.suppress(nats.errors.Error):
            await sub.unsubscribe()


async def run_ids(js: JetStreamContext) -> list[str]:
    """The id of every run in the event log."""
    try:
        info = await js.stream_info(RUNS_STREAM, subjects_filter=RUNS_SUBJECTS)
    except nats.js.errors.NotFoundError:
        return []
    return sorted(subject.split(".")[2] for subject in info.state.subjects or {})
