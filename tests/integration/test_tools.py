"""CIs' tools over real data: a Claude model (the fake API) calling them through tool
use, the offline model grounded in them, the ledger's figure, refusals, bad input."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import msgspec
import nats
import pytest

from tekton_common.client.tools import ToolClient
from tekton_common.contract.platform import UsageQuery, UsageReport
from tekton_common.contract.tools import ToolCalled
from tekton_common.errors import NotFoundError, RemoteError, TransportError
from tekton_common.subjects import BUDGET_USAGE, TOOL_EVENTS
from tekton_common.usage import day_of
from tests.fakes.anthropic_server import Step
from tests.helpers import streamed, wait_for

KEY = "sk-ant-tools-secret-value"
NOTES_SECRET = "notes-secret-value-4711"


@pytest.fixture
async def nc(nats_server):
    conn = await nats.connect(nats_server.url)
    yield conn
    await conn.close()


def numa(start_ci, components: str = "numa,hermes"):
    return start_ci("numa", module="tekton_numa", extra_args=["--components", components])


async def test_claude_calls_numas_status_and_answers_from_it(env, start_ci, fake_anthropic) -> None:
    env.extra.update({"ANTHROPIC_API_KEY": KEY, "ANTHROPIC_BASE_URL": fake_anthropic.url})
    numa_ci = numa(start_ci)
    # the model asks for the status and for a tool it was not offered, then answers
    fake_anthropic.script.append(
        Step(text="Let me look.", tool_calls=[("numa_status", {}), ("budget_usage", {})])
    )
    asked = env.tekton("ask", "numa", "What is wrong with the platform?")
    assert asked.returncode == 0, asked.stderr
    first, second = fake_anthropic.requests
    offered = {t["name"] for t in first["tools"]}
    assert {"numa_status", "numa_events"} <= offered and "budget_usage" not in offered
    assert first["tool_choice"] == {"type": "auto"}
    assistant, results = second["messages"][-2:]
    assert [b["type"] for b in assistant["content"]] == ["text", "tool_use", "tool_use"]
    status, refused = results["content"]
    assert status["type"] == "tool_result" and not status["is_error"]
    said = json.loads(status["content"])
    assert said["output"]["missing"] == ["hermes-ci"]  # live: hermes is expected, not running
    assert "down (expected, not responding): hermes-ci" in said["summary"]
    assert refused["is_error"] and "not a tool numa-ci may call" in refused["content"]
    # the final reply is the model's, after it read the tool's result
    assert "fake claude reply to:" in asked.stdout and "hermes-ci" in asked.stdout
    assert KEY not in asked.stdout + status["content"]

    # streamed, every round streams: what the model says before its call, then its answer
    checking = Step(text="Checking the fleet now.", tool_calls=[("numa_status", {})])
    fake_anthropic.script.append(checking)
    events = await streamed(numa_ci.ci_port, "Is hermes up?")
    chunks = [e["content"] for e in events if e["type"] == "stream_chunk"]
    assert events[-1]["type"] == "stream_end" and len(chunks) > 3
    said = "".join(chunks)
    assert said.startswith("Checking the fleet now.\n\nfake claude reply to:")
    assert "hermes-ci" in said and events[-1]["usage"]["output_tokens"] > 0
    assert len(fake_anthropic.requests) == 4 and fake_anthropic.requests[2]["stream"]


async def test_offline_numa_names_the_ci_that_is_down(env, start_ci) -> None:
    numa(start_ci)
    hermes = start_ci("hermes")
    up = env.tekton("ask", "numa", "Which CIs are down?")
    assert up.returncode == 0, up.stderr
    assert "every expected CI is up" in up.stdout and "simulated" in up.stdout
    hermes.terminate()
    down = env.tekton("ask", "numa", "Which CIs are down?")
    assert "numa_status says: 1 of 17 CIs respond; down" in down.stdout
    assert "hermes-ci" in down.stdout
    assert "The rest of this reply is simulated" in down.stdout


async def test_budget_answers_the_days_cost_from_the_ledger(env, start_ci, nc) -> None:
    start_ci("budget")
    apollo = start_ci("apollo")
    for text in ("one", "two two", "three three three"):
        assert env.tekton("ask", "apollo", text).returncode == 0
    today = day_of(time.time())
    msg = await nc.request(BUDGET_USAGE, msgspec.json.encode(UsageQuery(day=today)), timeout=5)
    ledger = msgspec.json.decode(msg.data, type=UsageReport)
    assert ledger.total.calls >= 3 and ledger.day == today
    client = ToolClient(nc)
    result = await client.call("budget_usage", {"period": "today"})
    assert result.output["total"]["calls"] >= 3
    assert result.output["day"] == today
    asked = env.tekton("ask", "budget", "What did today cost?")
    assert asked.returncode == 0, asked.stderr
    assert f"budget_usage says: on {today} (UTC):" in asked.stdout
    # the ledger's own figure, tokens as counted (the budget's own call came after it)
    assert f"{ledger.total.tokens:,} tokens" in asked.stdout or (
        f"over {ledger.total.calls} model calls" in asked.stdout
    )
    nothing = await client.call("budget_usage", {"day": "1999-01-01"})
    assert nothing.output["total"]["calls"] == 0
    assert apollo.proc.poll() is None


async def test_a_tool_not_granted_is_refused_and_leaves_an_event(env, start_ci, nc) -> None:
    first = start_ci("budget")
    events = await nc.subscribe(TOOL_EVENTS)
    apollo = ToolClient(nc, caller="apollo-ci")
    with pytest.raises(RemoteError) as refused:
        await apollo.call("budget_usage", {})
    assert refused.value.code == 403 and "apollo-ci may not call budget_usage" in str(refused.value)
    event = msgspec.json.decode((await events.next_msg(timeout=5)).data, type=ToolCalled)
    assert (event.tool, event.caller, event.outcome) == ("budget_usage", "apollo-ci", "refused")
    # the caller is the subject's: a body that claims another is refused as unknown input
    forged = json.dumps({"input": {}, "caller": "operator"}).encode()
    reply = await nc.request("tekton.ci.budget.tool.usage.apollo-ci", forged, timeout=5)
    assert reply.headers["Nats-Service-Error-Code"] == "400"
    # a client sees the tool in its list, and may call it
    listing = await ToolClient(nc, caller="mcp").listed("budget")
    assert listing is not None and "budget_usage" in listing.allowed
    # configuration grants it
    env.extra["TEKTON_CONFIG"] = str(env.home / "tekton.toml")
    env.home.mkdir(parents=True, exist_ok=True)
    (env.home / "tekton.toml").write_text('[ci.apollo]\ntools = ["budget_*"]\n')
    first.terminate()
    start_ci("budget")
    granted = await apollo.call("budget_usage", {})
    assert granted.tool == "budget_usage" and "model calls" in granted.summary


async def test_bad_tool_input_is_a_400_and_the_ci_lives(env, start_ci, nc) -> None:
    budget = start_ci("budget")
    proc = numa(start_ci)
    client = ToolClient(nc, timeout=5)
    for name, bad in (
        ("budget_usage", {"period": "last week"}),
        ("budget_usage", {"day": "../../etc/passwd"}),
        ("budget_usage", {"ci": "apollo.>"}),
        ("budget_usage", {"unknown": 1}),
        ("numa_events", {"limit": 10**9}),
        ("numa_events", {"since_s": -1}),
    ):
        with pytest.raises(RemoteError) as failed:
            await client.call(name, bad)
        assert failed.value.code == 400, (name, bad, failed.value)
    for raw in (b"not json", b"[1,2]", b'{"input": "x"}', b'{"caller": "a.b"}', b"{" * 10000):
        reply = await nc.request("tekton.ci.budget.tool.usage.operator", raw, timeout=5)
        assert reply.headers and reply.headers["Nats-Service-Error-Code"] == "400", raw[:20]
    with pytest.raises(TransportError, match="has no tool budget_nothing"):
        await client.call("budget_nothing", {})
    with pytest.raises(NotFoundError, match="a tool is named <ci>_<tool>"):
        await client.call("nobody_status", {})

    assert budget.proc.poll() is None and proc.proc.poll() is None


async def test_a_ci_uses_an_external_mcp_servers_allowed_tools(
    env, start_ci, fake_anthropic
) -> None:
    env.extra.update({"ANTHROPIC_API_KEY": KEY, "ANTHROPIC_BASE_URL": fake_anthropic.url})
    env.home.mkdir(parents=True, exist_ok=True)
    config = env.home / "tekton.toml"
    server = Path(__file__).parents[1] / "fakes" / "mcp_server.py"
    config.write_text(
        f"[ci.apollo.mcp.notes]\ncommand = {json.dumps([sys.executable, str(server)])}\n"
        'tools = ["lookup"]\nenv = { NOTES_TOKEN = "NOTES_SECRET" }\n'
    )
    env.extra["NOTES_SECRET"] = NOTES_SECRET
    env.extra["TEKTON_CONFIG"] = str(config)
    apollo = start_ci("apollo")
    assert wait_for(lambda: "MCP server notes offers 1 tools" in apollo.log.read_text(), 20)
    fake_anthropic.script.append(
        Step(tool_calls=[("mcp_notes_lookup", {"key": "groceries"}), ("mcp_notes_wipe", {})])
    )
    asked = env.tekton("ask", "apollo", "What is on the list?")
    assert asked.returncode == 0, asked.stderr
    first, second = fake_anthropic.requests
    offered = {t["name"] for t in first["tools"]}
    assert "mcp_notes_lookup" in offered and "mcp_notes_wipe" not in offered
    found, wiped = second["messages"][-1]["content"]
    said = json.loads(found["content"])
    assert not found["is_error"] and said["output"]["note"] == "the note for groceries"
    assert said["output"]["leaked"] is False  # no model key or setting reached the server
    # the secret it was given reached it, and is scrubbed from what it said back
    assert said["output"]["token"] == "[redacted]" and "[redacted]" in said["summary"]
    assert NOTES_SECRET not in json.dumps(second)
    assert wiped["is_error"] and "not a tool apollo-ci may call" in wiped["content"]
