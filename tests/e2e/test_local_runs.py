"""The platform on the real local model: `tekton --model local up` serves SmolLM2-135M
with llama.cpp beside the fleet; a mixed triad debate and a consensus-free run go
through Rhetor and the stages with every reply from the real model (or from the seat's
own model), schema-valid artifacts and real tokens and cache reads in the ledger."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tekton_common.artifacts import artifact_model
from tests.e2e.test_fleet_lifecycle import Fleet, running
from tests.helpers import free_port, http_get

LOCAL = "local:smollm2-135m"
#: a small model on two cores: a stage takes tens of seconds
pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory):
    port = free_port()
    home = tmp_path_factory.mktemp("local-runs") / "home"
    with running(home, TEKTON_MODEL="local", TEKTON_LOCAL_PORT=str(port)) as fleet:
        yield fleet
    assert http_get(port, "/health")[0] == 0  # down stopped it


def test_status_shows_the_local_server(platform: Fleet) -> None:
    status = platform.json("status")
    local = status["local"]
    assert local["serving"] and local["model"] == LOCAL
    assert local["slots"] == 3 and local["memory_mb"] > 50
    assert {c["model"] for c in status["cis"]} == {LOCAL}
    text = platform.run("status").stdout
    assert f"Local model {LOCAL} on 127.0.0.1:{platform.env['TEKTON_LOCAL_PORT']}" in text


def test_a_mixed_triad_debate_through_rhetor(platform: Fleet) -> None:
    done = platform.run(
        "debate",
        "Should a small service cache its configuration in memory?",
        "--rounds",
        "1",
        "--role",
        "skeptic=nous@simulated",
        "--json",
        timeout=400,
    )
    assert done.returncode in (0, 3), done.stderr
    result = json.loads(done.stdout[done.stdout.index("{\n") :])
    assert result["roles"]["skeptic"] == "nous-ci"
    models = {t["role"]: t["model"] for t in result["transcript"]}
    assert models == {
        "proponent": LOCAL,
        "skeptic": "simulated",
        "pragmatist": LOCAL,
        "mediator": LOCAL,
    }
    for turn in result["transcript"]:
        assert turn["input_tokens"] + turn["cache_read_input_tokens"] > 50
        assert turn["output_tokens"] > 5
        assert not turn["abstained"], turn["error"]
    if result["status"] == "approved":
        artifact_model("decision").model_validate(result["artifact"])
    else:  # the real model's own verdict, not a failure of the machinery
        assert result["reason"].startswith(("mediator blocked", "low confidence", "no quorum"))


def test_a_consensus_free_run_on_the_real_model(platform: Fleet, tmp_path: Path) -> None:
    done = platform.run(
        "run",
        "--goal",
        "Add rate limiting to the public API",
        "--to",
        "research",
        "--consensus-free",
        "plan",
        "research",
        "--output",
        str(tmp_path),
        "--json",
        timeout=600,
    )
    events = [json.loads(line) for line in done.stdout.splitlines()]
    kinds = [e["type"] for e in events]
    assert kinds[0] == "RunStarted.v1"
    assert kinds[-1] in ("RunFinished.v1", "RunFailed.v1"), kinds
    turns = [e["turn"] for e in events if e["type"] == "DebateTurn.v1"]
    assert turns and {t["model"] for t in turns} == {LOCAL}
    assert all(not t["abstained"] for t in turns), [t["error"] for t in turns]
    made = [e for e in events if e["type"] == "ArtifactCreated.v1"]
    for event in made:
        artifact_model(event["stage"]).model_validate(event["artifact"])
    if kinds[-1] == "RunFinished.v1":
        assert done.returncode == 0 and [e["stage"] for e in made] == ["plan", "research"]
    else:  # blocked by the mediator's own verdict on the real model's answer
        blocked = [e for e in events if e["type"] == "StageBlocked.v1"]
        assert blocked and blocked[0]["reason"].startswith(("mediator blocked", "low confidence"))
    run_id = events[0]["run_id"]
    ledger = platform.json("usage", "--run", run_id)
    mine = ledger["groups"][run_id]
    assert mine["calls"] == len(turns)
    assert mine["input_tokens"] + mine["cache_read_input_tokens"] > 200
    assert mine["input_tokens"] == sum(t["input_tokens"] for t in turns)
    assert mine["cache_read_input_tokens"] == sum(t["cache_read_input_tokens"] for t in turns)
    assert mine["cost_usd"] == 0.0 and LOCAL in ledger["by_model"]
