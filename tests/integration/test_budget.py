"""Budgets across processes: usage records, the Budget CI's ledger, enforcement."""

from __future__ import annotations

import asyncio
import json

import msgspec
import nats
import pytest

from tekton_common.client import BusClient, SocketClient
from tekton_common.errors import RemoteError
from tekton_common.usage import Tally


async def until_refused(client: BusClient, ci: str, **fields) -> RemoteError:
    """Call until the budget refuses (verdicts propagate asynchronously)."""
    for _ in range(200):
        try:
            await client.chat(ci, "spend", **fields)
        except RemoteError as exc:
            return exc
        await asyncio.sleep(0.02)
    raise AssertionError("the budget never refused")


@pytest.fixture
async def nc(nats_server):
    conn = await nats.connect(nats_server.url)
    yield conn
    await conn.close()


async def test_ci_budget_is_enforced_on_nats_and_socket(env, start_ci, nc) -> None:
    env.extra.update({"TEKTON_BUDGET_CI_TOKENS": "300", "TEKTON_BUDGET_POLICY": "enforce"})
    start_ci("budget")
    apollo = start_ci("apollo")
    athena = start_ci("athena")
    client = BusClient(nc, 5)
    refused = await until_refused(client, "apollo")
    assert refused.code == 429 and "apollo-ci" in str(refused) and "budget" in str(refused)
    async with SocketClient("127.0.0.1", apollo.ci_port) as sock:
        with pytest.raises(RemoteError, match="budget exhausted"):
            await sock.request({"content": "more"})
    assert (await client.chat("athena", "still fine")).ai_id == "athena-ci"
    report = json.loads(env.tekton("usage", "--ci", "apollo", "--json").stdout)
    apollo_tally = msgspec.convert(report["groups"]["apollo-ci"], Tally)
    assert apollo_tally.tokens >= 300 and report["policy"] == "enforce"
    assert "ci.apollo" in report["verdicts"]
    assert athena.proc.poll() is None


async def test_run_budget_stops_only_that_run(env, start_ci, nc) -> None:
    env.extra.update({"TEKTON_BUDGET_RUN_TOKENS": "200"})
    start_ci("budget")
    start_ci("metis")
    client = BusClient(nc, 5)
    refused = await until_refused(client, "metis", run_id="run-a")
    assert refused.code == 429 and "run run-a" in str(refused)
    assert (await client.chat("metis", "other run", run_id="run-b")).content
    text = env.tekton("usage", "--run", "run-a")
    assert (
        text.returncode == 0
        and "run-a" in text.stdout
        and "budget reached: run run-a" in (text.stdout)
    )


async def test_warn_policy_never_refuses(env, start_ci, nc) -> None:
    env.extra.update({"TEKTON_BUDGET_CI_TOKENS": "100", "TEKTON_BUDGET_POLICY": "warn"})
    budget = start_ci("budget")
    start_ci("telos")
    client = BusClient(nc, 5)
    for _ in range(30):
        await client.chat("telos", "spend freely")
    report = json.loads(env.tekton("usage", "--json").stdout)
    assert report["verdicts"]["ci.telos"]["policy"] == "warn"
    assert report["groups"]["telos-ci"]["calls"] == 30
    assert "budget reached for CI telos-ci" in budget.log.read_text()


async def test_usage_without_the_budget_ci_reads_the_stream(env, start_ci, nc) -> None:
    start_ci("sophia")
    client = BusClient(nc, 5)
    for _ in range(3):
        await client.chat("sophia", "measure", run_id="r-42")
    await asyncio.sleep(0.2)
    report = json.loads(env.tekton("usage", "--run", "r-42", "--json").stdout)
    assert "Budget CI is not running" in report["source"]
    assert report["groups"]["r-42"]["calls"] == 3
