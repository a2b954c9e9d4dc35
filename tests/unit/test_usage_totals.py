"""The ledger's totals: all time or one UTC day, by CI, run and model, tool calls apart."""

from __future__ import annotations

import pytest

from tekton_common.errors import ProtocolError
from tekton_common.usage import UsageRecord, UsageTotals
from tekton_common.wire import Usage

DAY = 86400.0
FIRST = 1_780_000_000.0  # 2026-05-28, UTC


def record(ci: str, model: str, tokens: int, ts: float, **fields) -> UsageRecord:
    usage = Usage(input_tokens=tokens, output_tokens=0)
    return UsageRecord(
        ci=ci, model=model, provider="p", usage=usage, cost_usd=0.01, ts=ts, **fields
    )


def test_a_day_counts_its_own_cis_and_models() -> None:
    totals = UsageTotals()
    for r in (
        record("apollo-ci", "claude", 100, FIRST, run_id="run-1"),
        record("apollo-ci", "local", 10, FIRST + DAY),
        record("athena-ci", "claude", 1, FIRST + DAY),
        record("athena-ci", "tool", 0, FIRST + DAY, tool="numa_status"),
    ):
        totals.add(r)
    total, groups, models = totals.view(day="2026-05-29")
    assert (total.tokens, total.calls, total.tool_calls) == (11, 2, 1)
    assert {k: t.tokens for k, t in groups.items()} == {"apollo-ci": 10, "athena-ci": 1}
    assert {k: t.tokens for k, t in models.items()} == {"local": 10, "claude": 1}
    total, groups, models = totals.view(ci="apollo-ci")
    assert total.tokens == 111 and groups["apollo-ci"].tokens == 110
    assert models["claude"].tokens == 101
    assert totals.view(run="run-1")[1] == {"run-1": totals.by_run["run-1"]}
    assert totals.view(ci="apollo-ci", day="2026-05-27")[1]["apollo-ci"].calls == 0
    with pytest.raises(ProtocolError, match="a run or a day"):
        totals.view(run="run-1", day="2026-05-28")


def test_the_budget_tools_summary_heads_with_what_was_asked() -> None:
    from tekton_common.contract.platform import UsageReport  # noqa: PLC0415
    from tekton_specialists.budget import usage_line  # noqa: PLC0415

    totals = UsageTotals()
    totals.add(record("apollo-ci", "claude", 100, FIRST, run_id="run-1"))
    totals.add(record("athena-ci", "claude", 900, FIRST, run_id="run-2"))
    total, groups, models = totals.view(run="run-1")
    one = usage_line(UsageReport(total=total, groups=groups, by_model=models, asked="run-1"))
    assert one.startswith("run-1 in all: $0.010000 for 100 tokens over 1 model calls")
    assert "(every CI: $0.020000 for 1,000 tokens)" in one
    total, groups, models = totals.view()
    fleet = usage_line(UsageReport(total=total, groups=groups, by_model=models))
    assert fleet.startswith("in all: $0.020000 for 1,000 tokens over 2 model calls")
    assert "athena-ci $0.010000 / 900 tokens" in fleet  # the dearest groups
