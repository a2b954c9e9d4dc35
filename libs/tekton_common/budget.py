"""Budgets: per-CI and per-run token and cost limits, with a policy.

The Budget CI holds the limits (settings ``budget_*`` and ``[ci.<name>] budget_*``),
aggregates ``TEKTON_USAGE`` and writes a verdict per exhausted CI or run into the KV
bucket ``tekton-budget`` (keys ``ci.<name>`` and ``run.<id>``). Every CI watches that
bucket and, under the ``enforce`` policy, refuses model calls for an exhausted CI or
run with OverBudgetError (429 on NATS, an error reply on the socket). ``warn`` only
logs and records the verdict; ``ignore`` does neither.
"""

from __future__ import annotations

import asyncio
import logging

import msgspec
import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.js.kv import KeyValue

from tekton_common.bus import open_kv
from tekton_common.catalog import get_ci
from tekton_common.errors import ConfigError, OverBudgetError
from tekton_common.settings import Settings
from tekton_common.usage import Tally

log = logging.getLogger(__name__)
BUDGET_BUCKET = "tekton-budget"
POLICIES = ("ignore", "warn", "enforce")


class Limit(msgspec.Struct, frozen=True):
    """A token and/or cost ceiling; 0 means none."""

    tokens: int = 0
    cost_usd: float = 0.0

    def exceeded_by(self, tally: Tally) -> str | None:
        """Why `tally` is over this limit, or None."""
        if self.tokens and tally.tokens >= self.tokens:
            return f"{tally.tokens} tokens used of {self.tokens}"
        if self.cost_usd and tally.cost_usd >= self.cost_usd:
            return f"${tally.cost_usd:.4f} spent of ${self.cost_usd:.4f}"
        return None


class Verdict(msgspec.Struct, frozen=True):
    """What the Budget CI decided for one CI or run."""

    scope: str
    policy: str
    reason: str


def policy_of(settings: Settings) -> str:
    """The configured policy, validated."""
    if settings.budget_policy not in POLICIES:
        raise ConfigError(
            f"budget_policy must be one of {', '.join(POLICIES)}, got {settings.budget_policy!r}"
        )
    return settings.budget_policy


def ci_limit(settings: Settings, ci: str) -> Limit:
    """The limit of one CI: its own override, else the per-CI default."""
    override = settings.ci_override(get_ci(ci))
    return Limit(
        tokens=override.budget_tokens
        if override.budget_tokens is not None
        else settings.budget_ci_tokens,
        cost_usd=override.budget_cost_usd
        if override.budget_cost_usd is not None
        else settings.budget_ci_cost_usd,
    )


def run_limit(settings: Settings) -> Limit:
    """The limit of every run."""
    return Limit(tokens=settings.budget_run_tokens, cost_usd=settings.budget_run_cost_usd)


def scope_key(kind: str, name: str) -> str:
    """KV key of a verdict: ``ci.apollo`` or ``run.<id>``."""
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in name)
    return f"{kind}.{safe}"


async def open_budget_bucket(nc: Client) -> KeyValue:
    """The verdict bucket, created on first use."""
    return await open_kv(nc, BUDGET_BUCKET, "Tekton budget verdicts")


class BudgetGuard:
    """A CI's local view of the verdicts, kept current by a KV watch."""

    def __init__(self, ci: str) -> None:
        self.ci = ci
        self.key = scope_key("ci", ci.removesuffix("-ci"))
        self.verdicts: dict[str, Verdict] = {}
        self._task: asyncio.Task[None] | None = None

    def check(self, run_id: str | None) -> None:
        """Raise OverBudgetError when this CI or this run is stopped by its budget."""
        if not self.verdicts:  # the usual case, on every model call
            return
        for key in (self.key, scope_key("run", run_id) if run_id else None):
            verdict = self.verdicts.get(key) if key else None
            if verdict is not None and verdict.policy == "enforce":
                raise OverBudgetError(
                    f"{self.ci}: budget exhausted for {verdict.scope} ({verdict.reason})"
                )

    async def watch(self, nc: Client) -> None:
        """Follow the bucket until cancelled (restarting the watch after errors)."""
        while True:
            try:
                bucket = await open_budget_bucket(nc)
                watcher = await bucket.watchall()
                async for entry in watcher:
                    if entry is None:
                        continue
                    if entry.operation in ("DEL", "PURGE") or not entry.value:
                        self.verdicts.pop(entry.key, None)
                    else:
                        self.verdicts[entry.key] = msgspec.json.decode(entry.value, type=Verdict)
            except (nats.errors.Error, OSError, TimeoutError) as exc:
                log.debug("budget watch interrupted: %s", exc)
            await asyncio.sleep(1.0)
