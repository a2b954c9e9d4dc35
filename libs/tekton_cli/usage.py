"""`tekton usage`: tokens and cost per CI, run or model, from the Budget CI's ledger."""

from __future__ import annotations

from tekton_cli.output import table
from tekton_common.budget import Limit
from tekton_common.client import Tekton
from tekton_common.contract.platform import UsageReport
from tekton_common.settings import Settings


async def usage(
    settings: Settings, ci: str | None, run: str | None, day: str | None = None
) -> UsageReport:
    """The ledger's answer; when the Budget CI is down, totals read from the stream."""
    async with Tekton.connect(settings) as tekton:
        return await tekton.usage(ci, run, day)


def render(report: UsageReport) -> str:
    """Human-readable usage."""
    rows = [
        (
            name,
            t.calls,
            t.input_tokens,
            t.output_tokens,
            t.cache_creation_input_tokens,
            t.cache_read_input_tokens,
            t.tokens,
            f"${t.cost_usd:.4f}",
        )
        for name, t in sorted(report.groups.items())
    ]
    headers = ["NAME", "CALLS", "INPUT", "OUTPUT", "CACHE WRITE", "CACHE READ", "TOKENS", "COST"]
    total = report.total
    lines = [
        table(headers, rows),
        f"total{f' on {report.day} (UTC)' if report.day else ''}: {total.calls} calls, "
        f"{total.tokens} tokens, ${total.cost_usd:.4f}, {total.tool_calls} tool calls",
    ]
    if report.policy and report.limits:
        lines.append(
            f"budget policy: {report.policy}; limits per CI {_limit(report.limits.ci)}, "
            f"per run {_limit(report.limits.run)}"
        )
    for verdict in report.verdicts.values():
        lines.append(f"budget reached: {verdict.scope} ({verdict.reason}, {verdict.policy})")
    lines.append(f"source: {report.source}")
    return "\n".join(lines)


def _limit(limit: Limit) -> str:
    parts = [f"{limit.tokens} tokens"] if limit.tokens else []
    parts += [f"${limit.cost_usd:.4f}"] if limit.cost_usd else []
    return " / ".join(parts) or "none"
