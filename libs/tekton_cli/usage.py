"""`tekton usage`: tokens and cost per CI, run or model, from the Budget CI's ledger."""

from __future__ import annotations

from typing import Any

import msgspec
import nats.errors

from tekton_cli.output import table
from tekton_common import bus
from tekton_common.catalog import get_ci
from tekton_common.settings import Settings
from tekton_common.usage import read_usage
from tekton_common.wire import total_tokens

BUDGET_USAGE = "tekton.budget.usage"


async def usage(settings: Settings, ci: str | None, run: str | None) -> dict[str, Any]:
    """The ledger's answer; when the Budget CI is down, totals read from the stream."""
    ci_id = str(get_ci(ci).ci_id) if ci else None
    nc = await bus.connect(settings, "tekton-cli")
    try:
        query = msgspec.json.encode({"ci": ci_id, "run": run})
        try:
            msg = await nc.request(BUDGET_USAGE, query, timeout=5)
            return dict(msgspec.json.decode(msg.data))
        except (nats.errors.NoRespondersError, nats.errors.TimeoutError):
            totals = await read_usage(nc)
            return {
                "type": "budget_usage.v1",
                "policy": None,
                "source": "TEKTON_USAGE stream (the Budget CI is not running)",
                "total": msgspec.to_builtins(totals.total),
                "groups": msgspec.to_builtins(totals.only(ci_id, run)),
                "by_model": msgspec.to_builtins(totals.by_model),
                "verdicts": {},
            }
    finally:
        await bus.close(nc)


def render(report: dict[str, Any]) -> str:
    """Human-readable usage."""

    rows = [
        (
            name,
            t["calls"],
            t["input_tokens"],
            t["output_tokens"],
            t["cache_creation_input_tokens"],
            t["cache_read_input_tokens"],
            total_tokens(t),
            f"${t['cost_usd']:.4f}",
        )
        for name, t in sorted(report["groups"].items())
    ]
    lines = [
        table(
            ["NAME", "CALLS", "INPUT", "OUTPUT", "CACHE WRITE", "CACHE READ", "TOKENS", "COST"],
            rows,
        )
    ]
    total = report["total"]
    lines.append(
        f"total: {total['calls']} calls, {total_tokens(total)} tokens, ${total['cost_usd']:.4f}"
    )
    if report.get("policy"):
        lines.append(
            f"budget policy: {report['policy']}; limits per CI "
            f"{report['limits']['ci']}, per run {report['limits']['run']}"
        )
    for verdict in report.get("verdicts", {}).values():
        lines.append(
            f"budget reached: {verdict['scope']} ({verdict['reason']}, {verdict['policy']})"
        )
    if report.get("source"):
        lines.append(f"source: {report['source']}")
    return "\n".join(lines)
