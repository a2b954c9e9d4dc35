"""Tools without a bus: who may call what, schemas from typed inputs, how a tool round
is put to each provider's API, and which tools the simulated model calls."""

from __future__ import annotations

import json

import msgspec
import pytest

from tekton_common.contract.platform import SandboxCommand
from tekton_common.contract.tools import (
    MAX_RESULT_CHARS,
    ModelToolAnswer,
    ModelToolCall,
    ToolExchange,
    ToolInvocation,
    ToolSpec,
)
from tekton_common.errors import TektonError
from tekton_common.providers.anthropic import request_params
from tekton_common.providers.base import ModelRequest
from tekton_common.providers.openai_compat import request_body
from tekton_common.providers.simulated import wanted_tools
from tekton_common.settings import load_settings
from tekton_common.tools.base import Tool, ToolInputError, may_call
from tekton_common.tools.box import Toolbox, shown
from tekton_common.wire import Turn
from tekton_specialists.measures import quantile
from tekton_stages.sandbox import SandboxUnavailableError
from tekton_stages.workbench import Workbench


class Asked(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    period: str = "all"
    limit: int = msgspec.field(default=3)


def spec(name: str, sensitive: bool = False) -> ToolSpec:
    return ToolSpec(
        name=name,
        ci=name.split("_", maxsplit=1)[0] + "-ci",
        description="d",
        input_schema={},
        sensitive=sensitive,
    )


def test_least_privilege(tmp_path) -> None:
    config = tmp_path / "tekton.toml"
    config.write_text(
        'mcp_tools = ["terma_run"]\n'
        '[ci.apollo]\ntools = ["budget_*", "numa_restart"]\n[ci.numa]\ntools = []\n'
    )
    settings = load_settings(environ={}, config_file=config)
    assert may_call(settings, "numa-ci", spec("numa_status"))  # its own
    assert not may_call(settings, "numa-ci", spec("numa_restart", sensitive=True))
    assert not may_call(settings, "athena-ci", spec("budget_usage"))  # not granted
    assert may_call(settings, "apollo-ci", spec("budget_usage"))  # granted by pattern
    assert may_call(settings, "apollo-ci", spec("numa_restart", sensitive=True))  # by name
    assert not may_call(settings, "apollo-ci", spec("budget_reset", sensitive=True))  # not by *
    assert may_call(settings, "mcp", spec("budget_usage"))
    assert not may_call(settings, "mcp", spec("numa_restart", sensitive=True))
    assert may_call(settings, "mcp", spec("terma_run", sensitive=True))  # mcp_tools names it
    # a caller that is neither a CI nor a client gets nothing, not even what clients get
    for stranger in ("nobody", "numa", "ghost-ci"):
        assert not may_call(settings, stranger, spec("budget_usage"))


def test_a_tools_schema_is_its_typed_input_and_bad_input_names_the_field() -> None:
    async def run(_asked: Asked) -> Asked:
        return _asked

    tool = Tool("budget", "usage", "d", Asked, Asked, run, lambda _: "")
    listed = tool.spec()
    assert listed.name == "budget_usage" and listed.input_schema["type"] == "object"
    assert set(listed.input_schema["properties"]) == {"period", "limit"}
    assert tool.decode({"limit": 2}) == Asked(limit=2)
    with pytest.raises(ToolInputError, match=r"budget_usage: invalid input: .*\$\.limit"):
        tool.decode({"limit": "many"})
    with pytest.raises(ToolInputError, match="unknown field"):
        tool.decode({"other": 1})
    with pytest.raises(ToolInputError, match="must be a JSON object"):
        tool.decode([1])


def _asked(done: bool = False) -> ModelRequest:
    call = ModelToolCall(id="c1", name="numa_status", input={})
    answer = ModelToolAnswer(id="c1", name="numa_status", content='{"summary":"ok"}')
    return ModelRequest(
        ci="numa-ci",
        role="r",
        capability="chat",
        system="s",
        messages=[Turn(role="user", content="what is down?")],
        max_tokens=100,
        tools=[spec("numa_status")],
        exchanges=[ToolExchange(text="looking", calls=[call], answers=[answer])],
        tools_done=done,
    )


def test_a_tool_round_in_each_providers_terms() -> None:
    claude = request_params("claude-x", _asked())
    assert claude["tools"][0]["name"] == "numa_status" and claude["tool_choice"] == {"type": "auto"}
    assistant, results = claude["messages"][-2:]
    assert assistant["content"][1] == {
        "type": "tool_use",
        "id": "c1",
        "name": "numa_status",
        "input": {},
    }
    assert results["content"][0]["tool_use_id"] == "c1" and results["role"] == "user"
    assert request_params("claude-x", _asked(done=True))["tool_choice"] == {"type": "none"}
    openai = request_body("m", _asked(), stream=False)
    assert openai["tools"][0]["function"]["name"] == "numa_status"
    said, told = openai["messages"][-2:]
    assert said["tool_calls"][0]["function"] == {"name": "numa_status", "arguments": "{}"}
    assert told == {"role": "tool", "tool_call_id": "c1", "content": '{"summary":"ok"}'}
    assert request_body("m", _asked(done=True), stream=False)["tool_choice"] == "none"


def test_the_simulated_model_calls_what_a_prompt_names() -> None:
    usage = ToolSpec(
        name="budget_usage",
        ci="budget-ci",
        description="d",
        input_schema={
            "properties": {
                "period": {"enum": ["all", "today", "yesterday"]},
                "ci": {"anyOf": [{"type": "string"}, {"type": "null"}]},
            }
        },
        keywords=["cost"],
    )
    [call] = wanted_tools([usage, spec("numa_status")], "What did apollo cost yesterday?")
    assert call.name == "budget_usage" and call.input == {"period": "yesterday", "ci": "apollo"}
    assert wanted_tools([usage], "hello there") == []
    transcript = ToolSpec(
        name="rhetor_transcript",
        ci="rhetor-ci",
        description="d",
        input_schema={"properties": {"run_id": {"type": "string"}}, "required": ["run_id"]},
        keywords=["debate"],
    )
    assert wanted_tools([transcript], "how did the debate go?") == []  # no run id given


def test_percentiles_from_cumulative_buckets() -> None:
    buckets = [(0.01, 50.0), (0.1, 90.0), (1.0, 100.0), (float("inf"), 100.0)]
    assert quantile(buckets, 0.5) == pytest.approx(0.01)
    assert quantile(buckets, 0.7) == pytest.approx(0.01 + 0.09 * 0.5)
    assert quantile(buckets, 0.95) == pytest.approx(0.1 + 0.9 * 0.5)
    assert quantile([(0.1, 0.0), (float("inf"), 0.0)], 0.5) is None
    assert quantile([(0.1, 1.0), (float("inf"), 3.0)], 0.99) == pytest.approx(0.1)


async def test_a_tools_command_never_runs_unsandboxed(tmp_path, monkeypatch) -> None:
    """TEKTON_SANDBOX=none is for a run's own checks; terma_run's command is refused
    before any repository is touched (the workbench has none to touch here)."""
    monkeypatch.setenv("TEKTON_SANDBOX", "none")
    bench = Workbench(None, None, None, load_settings({"home": str(tmp_path)}))  # type: ignore[arg-type]
    asked = SandboxCommand(run_id="run-1", command="cat /etc/passwd")
    with pytest.raises(SandboxUnavailableError, match="needs a sandbox"):
        await bench.run(asked)


class Rows(msgspec.Struct, frozen=True):
    rows: list[str]


async def test_a_tools_output_is_bounded_on_the_bus_and_for_the_model(tmp_path) -> None:
    async def listing(asked: Asked) -> Rows:
        return Rows(rows=['"quoted" row'] * asked.limit)

    box = Toolbox("apollo-ci", load_settings({"home": str(tmp_path)}))
    box.add(Tool("apollo", "rows", "Rows.", Asked, Rows, listing, lambda r: f"{len(r.rows)} rows"))
    with pytest.raises(TektonError, match="over 524,288; ask for less"):
        await box.serve("apollo_rows", ToolInvocation(input={"limit": 40_000}), "operator")
    result = await box.serve("apollo_rows", ToolInvocation(input={"limit": 2000}), "operator")
    text = shown(result)
    assert len(text) <= MAX_RESULT_CHARS
    read = json.loads(text)  # cut, and still JSON a model (or a person) can read
    assert read["cut"] and read["summary"] == "2000 rows"
    assert read["output_cut"].startswith('{"rows":["\\"quoted\\" row"')
    small = await box.serve("apollo_rows", ToolInvocation(input={"limit": 2}), "operator")
    assert json.loads(shown(small))["output"] == {"rows": ['"quoted" row'] * 2}
