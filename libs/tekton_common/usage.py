"""Usage records: every model call's tokens and cost, published to NATS and kept by
the JetStream stream ``TEKTON_USAGE`` (subjects ``tekton.usage.<ci name>``).

A CI sends its records in batches (`UsageOutbox`: at most 50 ms after a call, or 200
records at once, and whatever waits when it stops), so a busy CI costs JetStream one
stored message per batch, not one per call; a message is a `UsageBatch` or, from older
senders, one `UsageRecord` (`decode_usage` reads both). `UsageTotals` aggregates records
by CI, run and model; the Budget CI keeps one, and `tekton usage` reads the same
numbers.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import time
from collections.abc import Awaitable, Callable

import msgspec
import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.js.api import RetentionPolicy, StreamConfig

from tekton_common.bus import keep_stream, replicas, stored
from tekton_common.errors import ProtocolError
from tekton_common.subjects import USAGE
from tekton_common.wire import Usage, add_tokens, total_tokens

log = logging.getLogger(__name__)
USAGE_STREAM = "TEKTON_USAGE"
USAGE_SUBJECTS = USAGE.format(name=">")
USAGE_RETENTION_DAYS = 30.0


def usage_subject(ci: str) -> str:
    """Where a CI publishes its usage records."""
    return USAGE.format(name=ci.removesuffix("-ci"))


class UsageRecord(msgspec.Struct, frozen=True, tag_field="type", tag="usage.v1"):
    """One model call, or (`tool` set, no tokens) one tool call a model made."""

    ci: str
    model: str
    provider: str
    usage: Usage
    cost_usd: float
    run_id: str | None = None
    ts: float = msgspec.field(default_factory=time.time)
    tool: str | None = None


def day_of(ts: float) -> str:
    """The UTC day of a timestamp, ``YYYY-MM-DD`` (the ledger's period)."""
    return time.strftime("%Y-%m-%d", time.gmtime(ts))


class UsageBatch(msgspec.Struct, frozen=True, tag_field="type", tag="usage_batch.v1"):
    """Several model calls of one CI, in one message."""

    records: list[UsageRecord]


_usage_decoder = msgspec.json.Decoder(UsageRecord | UsageBatch)


def decode_usage(data: bytes) -> list[UsageRecord]:
    """The records of one usage message (a batch, or a single record)."""
    message = _usage_decoder.decode(data)
    return message.records if isinstance(message, UsageBatch) else [message]


Publish = Callable[[str, bytes], Awaitable[None]]


class UsageOutbox:
    """One CI's usage records on their way to ``tekton.usage.<ci>``, in batches.

    `add` never waits: the record joins a batch that leaves `delay` seconds after its
    first record or as soon as it holds `size`. `flush` sends what waits (the service
    calls it when it stops, before the connection drains). A batch that cannot be
    published is logged, never raised into a model call."""

    def __init__(self, ci: str, publish: Publish, delay: float = 0.05, size: int = 200) -> None:
        self.subject = usage_subject(ci)
        self.publish = publish
        self.delay = delay
        self.size = size
        self.waiting: list[UsageRecord] = []
        self.sending: set[asyncio.Task[None]] = set()
        self._timer: asyncio.TimerHandle | None = None

    def add(self, record: UsageRecord) -> None:
        """Queue one record."""
        self.waiting.append(record)
        if len(self.waiting) >= self.size:
            self._send()
        elif self._timer is None:
            # a fresh context: the batch belongs to no request's trace
            self._timer = asyncio.get_running_loop().call_later(
                self.delay, self._send, context=contextvars.Context()
            )

    def _send(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self.waiting:
            return
        batch, self.waiting = UsageBatch(records=self.waiting), []
        task = asyncio.get_running_loop().create_task(
            self._publish(batch), context=contextvars.Context()
        )
        self.sending.add(task)
        task.add_done_callback(self.sending.discard)

    async def _publish(self, batch: UsageBatch) -> None:
        try:
            await self.publish(self.subject, msgspec.json.encode(batch))
        except Exception as exc:  # usage is reported, never a reason to fail a reply
            log.error("usage of %d calls not published: %s", len(batch.records), exc)

    async def flush(self) -> None:
        """Send every waiting record now and wait until it is handed to NATS."""
        self._send()
        if self.sending:
            await asyncio.gather(*self.sending, return_exceptions=True)


class Tally(msgspec.Struct):
    """Token and cost totals of one group."""

    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0
    cost_usd: float = 0.0
    tool_calls: int = 0

    @property
    def tokens(self) -> int:
        """Every token the calls consumed (cache reads and writes included)."""
        return total_tokens(self)

    def add(self, record: UsageRecord) -> None:
        """Count one record."""
        if record.tool is not None:
            self.tool_calls += 1
            return
        self.calls += 1
        add_tokens(self, record.usage)
        self.cost_usd += record.cost_usd


class UsageTotals(msgspec.Struct):
    """Totals by CI, by run, by model and by UTC day (and by CI and by model within each
    day)."""

    total: Tally = msgspec.field(default_factory=Tally)
    by_ci: dict[str, Tally] = {}
    by_run: dict[str, Tally] = {}
    by_model: dict[str, Tally] = {}
    by_day: dict[str, Tally] = {}
    by_day_ci: dict[str, dict[str, Tally]] = {}
    by_day_model: dict[str, dict[str, Tally]] = {}

    def add(self, record: UsageRecord) -> None:
        """Count one record everywhere it belongs."""
        day = day_of(record.ts)
        self.total.add(record)
        self.by_ci.setdefault(record.ci, Tally()).add(record)
        self.by_day.setdefault(day, Tally()).add(record)
        self.by_day_ci.setdefault(day, {}).setdefault(record.ci, Tally()).add(record)
        if record.tool is None:
            self.by_model.setdefault(record.model, Tally()).add(record)
            self.by_day_model.setdefault(day, {}).setdefault(record.model, Tally()).add(record)
        if record.run_id:
            self.by_run.setdefault(record.run_id, Tally()).add(record)

    def view(
        self, ci: str | None = None, run: str | None = None, day: str | None = None
    ) -> tuple[Tally, dict[str, Tally], dict[str, Tally]]:
        """A query's figures: the total, the groups it asked for (every CI when neither
        `ci` nor `run` is given) and the models, all within one UTC day when `day` is.
        A run is counted over its whole life: a run and a day together are a
        ProtocolError."""
        if day is None:
            total, by_ci, by_model = self.total, self.by_ci, self.by_model
        else:
            total = self.by_day.get(day, Tally())
            by_ci, by_model = self.by_day_ci.get(day, {}), self.by_day_model.get(day, {})
        if run is not None:
            if day is not None:
                raise ProtocolError("a run's usage is over the whole run: ask for a run or a day")
            groups = {run: self.by_run.get(run, Tally())}
        elif ci is not None:
            groups = {ci: by_ci.get(ci, Tally())}
        else:
            groups = dict(by_ci)
        return total, groups, dict(by_model)


async def ensure_usage_stream(
    nc: Client, days: float = USAGE_RETENTION_DAYS, update: bool = False
) -> None:
    """Create the usage stream, keeping records `days` (0: for ever); `update` brings
    an existing one to it (the stages service; a CI uses it as it is)."""
    await keep_stream(
        nc.jetstream(timeout=3),
        StreamConfig(
            name=USAGE_STREAM,
            subjects=[USAGE_SUBJECTS],
            retention=RetentionPolicy.LIMITS,
            max_age=days * 86400.0,
            description="model usage of every Tekton CI",
            num_replicas=replicas(nc),
        ),
        update,
    )


async def read_usage(nc: Client, idle: float = 0.5) -> UsageTotals:
    """Totals of every record in the stream (used when the Budget CI is not running)."""
    js = nc.jetstream(timeout=3)
    totals = UsageTotals()
    try:
        info = await js.stream_info(USAGE_STREAM)
    except nats.js.errors.NotFoundError:
        return totals
    if not info.state.messages:
        return totals
    async for msg in stored(js, USAGE_SUBJECTS, idle):
        with contextlib.suppress(msgspec.DecodeError):
            for record in decode_usage(msg.data):
                totals.add(record)
    return totals
