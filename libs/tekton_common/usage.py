"""Usage records: every model call's tokens and cost, published to NATS and kept by
the JetStream stream ``TEKTON_USAGE`` (subjects ``tekton.usage.<ci name>``).

`UsageTotals` aggregates records by CI, run and model; the Budget CI keeps one, and
`tekton usage` reads the same numbers.
"""

from __future__ import annotations

import contextlib
import time

import msgspec
import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.js.api import DeliverPolicy, RetentionPolicy, StreamConfig

from tekton_common.bus import replicas
from tekton_common.wire import Usage, add_tokens, total_tokens

USAGE_STREAM = "TEKTON_USAGE"
USAGE_SUBJECTS = "tekton.usage.>"
USAGE_RETENTION_SECONDS = 30 * 24 * 3600


def usage_subject(ci: str) -> str:
    """Where a CI publishes its usage records."""
    return f"tekton.usage.{ci.removesuffix('-ci')}"


class UsageRecord(msgspec.Struct, frozen=True):
    """One model call."""

    ci: str
    model: str
    provider: str
    usage: Usage
    cost_usd: float
    run_id: str | None = None
    ts: float = msgspec.field(default_factory=time.time)
    type: str = "usage.v1"


class Tally(msgspec.Struct):
    """Token and cost totals of one group."""

    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0
    cost_usd: float = 0.0

    @property
    def tokens(self) -> int:
        """Every token the calls consumed (cache reads and writes included)."""
        return total_tokens(self)

    def add(self, record: UsageRecord) -> None:
        """Count one record."""
        self.calls += 1
        add_tokens(self, record.usage)
        self.cost_usd += record.cost_usd


class UsageTotals(msgspec.Struct):
    """Totals by CI, by run and by model."""

    total: Tally = msgspec.field(default_factory=Tally)
    by_ci: dict[str, Tally] = {}
    by_run: dict[str, Tally] = {}
    by_model: dict[str, Tally] = {}

    def add(self, record: UsageRecord) -> None:
        """Count one record everywhere it belongs."""
        self.total.add(record)
        self.by_ci.setdefault(record.ci, Tally()).add(record)
        self.by_model.setdefault(record.model, Tally()).add(record)
        if record.run_id:
            self.by_run.setdefault(record.run_id, Tally()).add(record)

    def only(self, ci: str | None = None, run: str | None = None) -> dict[str, Tally]:
        """The groups a query asked for (all CIs when neither is given)."""
        if ci is not None:
            return {ci: self.by_ci.get(ci, Tally())}
        if run is not None:
            return {run: self.by_run.get(run, Tally())}
        return dict(self.by_ci)


async def ensure_usage_stream(nc: Client) -> None:
    """Create the usage stream if it does not exist (idempotent across processes)."""
    js = nc.jetstream(timeout=3)
    await js.add_stream(
        StreamConfig(
            name=USAGE_STREAM,
            subjects=[USAGE_SUBJECTS],
            retention=RetentionPolicy.LIMITS,
            max_age=USAGE_RETENTION_SECONDS,
            description="model usage of every Tekton CI",
            num_replicas=replicas(nc),
        )
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
    sub = await js.subscribe(
        USAGE_SUBJECTS, ordered_consumer=True, deliver_policy=DeliverPolicy.ALL
    )
    try:
        while True:
            try:
                msg = await sub.next_msg(timeout=idle)
            except nats.errors.TimeoutError:
                break
            with contextlib.suppress(msgspec.DecodeError):
                totals.add(msgspec.json.decode(msg.data, type=UsageRecord))
            if msg.metadata.num_pending == 0:
                break
    finally:
        await sub.unsubscribe()
    return totals
