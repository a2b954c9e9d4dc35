from __future__ import annotations

import json
import re

import jsonschema
import pytest
from anthropic._data import DEPRECATED_MODELS
from anthropic.types.model_param import ModelParam

from tekton_common.catalog import get_ci
from tekton_common.errors import ConfigError, ProviderError
from tekton_common.providers import ModelRequest, SimulatedProvider
from tekton_common.providers.models import LEGACY, PREMIUM, PRIMARY, ModelConfig, provider_kind
from tekton_common.providers.select import build_provider, choose_model
from tekton_common.providers.simulated import parse_faults
from tekton_common.settings import load_settings
from tekton_common.wire import Turn, Usage


def sdk_models() -> list[str]:
    return list(ModelParam.__args__[0].__args__)  # type: ignore[attr-defined]


def newest(family: str) -> str:
    def version(mid: str) -> tuple[int, ...]:
        return tuple(int(x) for x in re.findall(r"\d+", mid.removeprefix(f"claude-{family}")))

    ids = [
        m
        for m in sdk_models()
        if m.startswith(f"claude-{family}-")
        and m not in DEPRECATED_MODELS
        and not re.search(r"\d{8}$", m)
    ]
    return max(ids, key=version)


def test_defaults_are_the_newest_undeprecated_sdk_ids() -> None:
    assert newest("sonnet") == PRIMARY and newest("opus") == PREMIUM
    assert PRIMARY not in DEPRECATED_MODELS and PREMIUM not in DEPRECATED_MODELS
    config = ModelConfig()
    assert config.profile("legacy") == LEGACY
    assert LEGACY not in {
        config.for_capability(c) for c in ("chat", "code", "planning", "reasoning")
    }


def settings(tmp_path, **env: str):
    return load_settings(
        environ={"TEKTON_HOME": str(tmp_path), **env}, config_file=tmp_path / "none.toml"
    )


def test_model_precedence(tmp_path, monkeypatch) -> None:
    apollo, synthesis = get_ci("apollo"), get_ci("synthesis")
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.setenv("ANTHROPIC_API_KEY_FILE", str(tmp_path / "missing"))
    s = settings(tmp_path)
    assert choose_model(apollo, s) == "simulated"  # defaults fall back without a key
    assert choose_model(apollo, s, override="premium") == PREMIUM  # explicit stays
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test")
    assert choose_model(apollo, s) == PREMIUM  # reasoning → premium
    assert choose_model(synthesis, s) == PRIMARY  # code → primary
    toml = tmp_path / "tekton.toml"
    toml.write_text(
        '[models.stages]\nplan = "legacy"\n[models.capabilities]\ncode = "premium"\n'
        '[ci.apollo]\nmodel = "openai:llama3"\n'
    )
    s = load_settings(environ={"TEKTON_HOME": str(tmp_path)}, config_file=toml)
    assert choose_model(synthesis, s) == PREMIUM
    assert choose_model(synthesis, s, stage="plan") == LEGACY
    assert choose_model(apollo, s, stage="plan") == "openai:llama3"  # the CI's own beats stage
    s = load_settings(
        environ={"TEKTON_HOME": str(tmp_path), "TEKTON_MODEL": "simulated"}, config_file=toml
    )
    assert choose_model(apollo, s) == "simulated"  # global override beats all
    assert choose_model(apollo, s, override="primary") == PRIMARY  # per-request beats global


def test_unknown_model_spec_is_a_config_error(tmp_path) -> None:
    with pytest.raises(ValueError, match="unknown model"):
        provider_kind("gpt-9")
    with pytest.raises(ConfigError, match="unknown model"):
        build_provider("mistral", settings(tmp_path))


def test_cost_from_price_table() -> None:
    config = ModelConfig()
    usage = Usage(
        input_tokens=1_000_000,
        output_tokens=100_000,
        cache_creation_input_tokens=1_000_000,
        cache_read_input_tokens=1_000_000,
    )
    assert config.cost(PREMIUM, usage) == pytest.approx(15 + 7.5 + 18.75 + 1.5)
    assert config.cost("simulated", usage) == 0.0
    custom = ModelConfig(prices={"claude-opus-5-5": config.price("claude-sonnet")})  # type: ignore[dict-item]
    assert custom.cost(PREMIUM, Usage(input_tokens=1_000_000)) == pytest.approx(3.0)


SCHEMA = {
    "type": "object",
    "required": ["position", "vote", "self_confidence", "scores", "risks"],
    "properties": {
        "position": {"type": "string", "minLength": 10},
        "vote": {"enum": ["accept", "revise", "reject"]},
        "self_confidence": {"type": "number", "minimum": 0, "maximum": 1},
        "scores": {"$ref": "#/$defs/Scores"},
        "risks": {"type": "array", "items": {"type": "string"}, "minItems": 1},
        "dissent": {"anyOf": [{"type": "string"}, {"type": "null"}]},
    },
    "$defs": {
        "Scores": {
            "type": "object",
            "properties": {"correctness": {"type": "integer", "minimum": 1, "maximum": 5}},
        }
    },
}


def _json_request(ci: str, text: str) -> ModelRequest:
    return ModelRequest(
        ci=ci,
        role="skeptic",
        capability="reasoning",
        system="s",
        messages=[Turn(role="user", content=text)],
        max_tokens=100,
        json_schema=SCHEMA,
    )


async def test_simulated_json_follows_the_schema_and_is_deterministic() -> None:
    sim = SimulatedProvider()
    first = await sim.complete(_json_request("athena-ci", "is it safe?"))
    again = await sim.complete(_json_request("athena-ci", "is it safe?"))
    data = json.loads(first.content)
    jsonschema.validate(data, SCHEMA)
    assert first == again and first.model == "simulated"
    assert "simulated" in data["position"] and "athena-ci" in data["position"]


async def test_simulated_faults() -> None:
    broken = SimulatedProvider(faults="invalid_json:1")
    with pytest.raises(json.JSONDecodeError):
        json.loads((await broken.complete(_json_request("a", "x"))).content)
    failing = SimulatedProvider(faults="error:1")
    with pytest.raises(ProviderError, match="injected error"):
        await failing.complete(_json_request("a", "x"))
    hanging = SimulatedProvider(faults="timeout:1", hang_seconds=0.01)
    with pytest.raises(ProviderError, match="injected hang"):
        await hanging.complete(_json_request("a", "x"))
    first_two = SimulatedProvider(faults="wrong_schema:#2")
    shapes = [
        json.loads((await first_two.complete(_json_request("a", "x"))).content) for _ in range(3)
    ]
    assert [("vote" in s) for s in shapes] == [False, False, True]
    half = SimulatedProvider(faults="error:0.5", seed=7)
    outcomes = []
    for _ in range(40):
        try:
            await half.complete(_json_request("a", "x"))
            outcomes.append(True)
        except ProviderError:
            outcomes.append(False)
    assert 5 < sum(outcomes) < 35


def test_parse_faults_errors() -> None:
    faults = parse_faults("error:0.1, invalid_json, wrong_schema:#2")
    assert [(f.kind, f.rate, f.count) for f in faults] == [
        ("error", 0.1, 0),
        ("invalid_json", 1.0, 0),
        ("wrong_schema", 0.0, 2),
    ]
    with pytest.raises(ConfigError, match="unknown simulated fault"):
        parse_faults("explode:1")
    with pytest.raises(ConfigError, match="must be a number"):
        parse_faults("error:often")


async def test_simulated_votes_follow_the_debate_role() -> None:
    sim = SimulatedProvider()

    async def vote(role: str, round_: int) -> str:
        req = ModelRequest(
            ci="x",
            role="r",
            capability="reasoning",
            system="s",
            messages=[Turn(role="user", content="q")],
            max_tokens=10,
            json_schema=SCHEMA,
            hints={"debate_role": role, "round": round_},
        )
        return str(json.loads((await sim.complete(req)).content)["vote"])

    assert await vote("skeptic", 1) == "revise" and await vote("skeptic", 2) == "accept"
    assert await vote("proponent", 1) == "accept"
