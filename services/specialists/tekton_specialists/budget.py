"""The Budget CI's ledger: totals of ``TEKTON_USAGE``, limits, verdicts, and queries.

It replays the usage stream from the start when it starts (so totals survive its
restarts), follows new records, and writes a verdict into ``tekton-budget`` the moment
a CI or a run reaches its limit. ``tekton.budget.usage`` answers with the totals.
"""

from __future__ import annotations

import logging
import time
from typing import Annotated, Literal

import msgspec
import nats.js.errors
from nats.aio.msg import Msg
from nats.js.api import DeliverPolicy
from nats.micro.request import Request

from tekton_common.budget import (
    Limit,
    Verdict,
    ci_limit,
    open_budget_bucket,
    policy_of,
    run_limit,
    scope_key,
)
from tekton_common.catalog import CIId
from tekton_common.contract.codec import decode
from tekton_common.contract.ids import RunId
from tekton_common.contract.platform import CIKey, Day, Limits, UsageQuery, UsageReport
from tekton_common.micro import EndpointDef
from tekton_common.service import ServiceContext
from tekton_common.settings import Settings
from tekton_common.subjects import BUDGET_USAGE
from tekton_common.tools.base import Tool
from tekton_common.usage import (
    USAGE_SUBJECTS,
    Tally,
    UsageRecord,
    UsageTotals,
    day_of,
    decode_usage,
)

log = logging.getLogger(__name__)


class Ledger:
    """Totals plus the verdicts they have led to."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.policy = policy_of(settings)
        self.totals = UsageTotals()
        self.verdicts: dict[str, Verdict] = {}

    def add(self, record: UsageRecord) -> list[tuple[str, Verdict]]:
        """Count a record; returns verdicts that are new because of it."""
        self.totals.add(record)
        if self.policy == "ignore":
            return []
        name = record.ci.removesuffix("-ci")
        checks: list[tuple[str, str, Limit, Tally]] = [
            (
                scope_key("ci", name),
                f"CI {record.ci}",
                ci_limit(self.settings, name),
                self.totals.by_ci[record.ci],
            )
        ]
        if record.run_id:
            checks.append(
                (
                    scope_key("run", record.run_id),
                    f"run {record.run_id}",
                    run_limit(self.settings),
                    self.totals.by_run[record.run_id],
                )
            )
        fresh = []
        for key, scope, limit, tally in checks:
            reason = limit.exceeded_by(tally)
            if reason and key not in self.verdicts:
                verdict = Verdict(scope=scope, policy=self.policy, reason=reason)
                self.verdicts[key] = verdict
                fresh.append((key, verdict))
                log.warning("budget reached for %s: %s (policy %s)", scope, reason, self.policy)
        return fresh

    def report(self, query: UsageQuery) -> UsageReport:
        """The answer to a usage query."""
        ci = query.ci
        default = Limit(self.settings.budget_ci_tokens, self.settings.budget_ci_cost_usd)
        total, groups, by_model = self.totals.view(
            f"{ci.removesuffix('-ci')}-ci" if ci else None, query.run, query.day
        )
        return UsageReport(
            policy=self.policy,
            limits=Limits(
                ci=ci_limit(self.settings, ci) if ci else default, run=run_limit(self.settings)
            ),
            total=total,
            groups=groups,
            by_model=by_model,
            verdicts=dict(self.verdicts),
            day=query.day,
            asked=next(iter(groups)) if ci or query.run else None,
        )


class UsageInput(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Which usage: a period, and optionally one CI or one run."""

    period: Annotated[
        Literal["all", "today", "yesterday"],
        msgspec.Meta(description="all time, or one UTC day (unless `day` names one)"),
    ] = "all"
    day: Annotated[Day, msgspec.Meta(description="a UTC day, YYYY-MM-DD")] | None = None
    ci: Annotated[CIKey, msgspec.Meta(description="one CI (apollo or apollo-ci)")] | None = None
    run: (
        Annotated[RunId, msgspec.Meta(description="one run's id (all time: not with a day)")] | None
    ) = None

    def query(self, now: float) -> UsageQuery:
        """The ledger query this input asks."""
        day = self.day
        if day is None and self.period != "all":
            day = day_of(now - (86400 if self.period == "yesterday" else 0))
        return UsageQuery(ci=self.ci, run=self.run, day=day)


def usage_line(report: UsageReport) -> str:
    """One line of a usage report: cost, tokens and calls, and the dearest groups."""
    when = f"on {report.day} (UTC)" if report.day else "in all"
    total = report.total
    said = report.groups.get(report.asked, Tally()) if report.asked else total
    line = (
        f"{report.asked + ' ' if report.asked else ''}{when}: ${said.cost_usd:.6f} for "
        f"{said.tokens:,} tokens over {said.calls} model calls and {said.tool_calls} tool calls"
    )
    if report.asked:
        line += f" (every CI: ${total.cost_usd:.6f} for {total.tokens:,} tokens)"
    dearest = sorted(report.groups.items(), key=lambda kv: (-kv[1].cost_usd, -kv[1].tokens))
    shown = [
        f"{k} ${t.cost_usd:.6f} / {t.tokens:,} tokens"
        for k, t in dearest[:5]
        if t.calls and not report.asked
    ]
    if report.verdicts:
        shown.append(f"{len(report.verdicts)} budget verdicts")
    return line + ("; " + ", ".join(shown) if shown else "")


def budget_tools(ledger: Ledger) -> list[Tool]:
    """The ledger as a tool."""

    async def usage(asked: UsageInput) -> UsageReport:
        query = asked.query(time.time())
        if query.ci:
            query = msgspec.structs.replace(query, ci=str(CIId.from_str(query.ci)))
        return ledger.report(query)

    return [
        Tool(
            ci="budget",
            name="usage",
            description="Tokens and cost from the usage ledger (every model call of every "
            "CI): all time or one UTC day, for every CI or one CI or one run, by model too; "
            "and the budget verdicts in force.",
            input=UsageInput,
            output=UsageReport,
            run=usage,
            summary=usage_line,
            keywords=("cost", "costs", "spent", "spend", "usage", "tokens", "budget"),
        )
    ]


def budget_extension(context: ServiceContext) -> list[EndpointDef]:
    """The Budget CI's ledger, its query endpoint and its tools."""
    ledger = Ledger(context.runtime.settings)
    context.runtime.toolbox.add(*budget_tools(ledger))

    async def follow() -> None:
        nc = context.nc
        bucket = await open_budget_bucket(nc)
        try:  # verdicts are rebuilt from the stream; old ones may rest on old limits
            for key in await bucket.keys():
                await bucket.purge(key)
        except nats.js.errors.NoKeysError:
            pass

        async def on_record(msg: Msg) -> None:
            try:
                records = decode_usage(msg.data)
            except msgspec.DecodeError:
                log.warning("skipping malformed usage record on %s", msg.subject)
                return
            for record in records:
                for key, verdict in ledger.add(record):
                    await bucket.put(key, msgspec.json.encode(verdict))

        await nc.jetstream().subscribe(
            USAGE_SUBJECTS, cb=on_record, ordered_consumer=True, deliver_policy=DeliverPolicy.ALL
        )

    async def usage(request: Request) -> bytes:
        query = decode(request.data, UsageQuery) if request.data.strip() else UsageQuery()
        return msgspec.json.encode(ledger.report(query))

    context.spawn(follow())
    return [EndpointDef("usage", usage, subject=BUDGET_USAGE)]
