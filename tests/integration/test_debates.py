"""Debates on real NATS with real specialist processes and the simulated model."""

from __future__ import annotations

import asyncio
import json

import jsonschema
import msgspec
import nats
import pytest

from tekton_common.client import BusClient
from tekton_common.errors import RemoteError
from tekton_rhetor.validate import ArtifactSchema

CAST = (
    "prometheus",
    "athena",
    "metis",
    "apollo",
)  # general: proponent, skeptic, pragmatist, mediator


@pytest.fixture
async def nc(nats_server):
    conn = await nats.connect(nats_server.url)
    yield conn
    await conn.close()


def cast(**overrides: dict[str, str]) -> dict[str, dict[str, str]]:
    return {"rhetor": {}, **{ci: overrides.get(ci, {}) for ci in CAST}}


async def debate(nc, events: list[dict] | None = None, timeout: float = 30, **request) -> dict:
    request.setdefault("prompt", "Should we adopt JetStream for run events?")
    request.setdefault("debate_id", f"t{id(request)}")
    sub = None
    if events is not None:

        async def on_event(msg) -> None:
            events.append(json.loads(msg.data))

        sub = await nc.subscribe(f"tekton.debates.{request['debate_id']}.events", cb=on_event)
    reply = await BusClient(nc, timeout).request(
        "tekton.rhetor.debate", msgspec.json.encode(request), "rhetor-ci"
    )
    if sub is not None:
        await nc.flush()
        await sub.unsubscribe()
    return json.loads(reply.data)


async def test_approved_after_revision_with_every_turn_an_event(start_many, nc) -> None:
    start_many(cast())
    events: list[dict] = []
    result = await debate(nc, events, max_rounds=3)
    assert result["status"] == "approved" and result["reason"] is None
    assert result["loops_run"] == 2  # the skeptic revised, then all accepted: stop early
    assert ArtifactSchema("decision").errors(result["artifact"]) == []
    assert result["votes"] == {
        "prometheus-ci": "accept",
        "athena-ci": "accept",
        "metis-ci": "accept",
    }
    assert result["confidence"] >= 0.7 and result["accept_share"] == 1.0
    assert [t["role"] for t in result["transcript"]][-1] == "mediator"
    assert len(result["transcript"]) == 7 and result["total_tokens"] > 0
    assert all(t["model"] == "simulated" for t in result["transcript"])
    kinds = [e["type"] for e in events]
    assert kinds[0] == "debate.started.v1" and kinds[-1] == "debate.finished.v1"
    assert kinds.count("debate.turn.v1") == 7 and kinds.count("debate.round.v1") == 2
    first_round = next(e for e in events if e["type"] == "debate.round.v1")
    assert first_round["votes"]["athena-ci"] == "revise"
    for key in (
        "artifact",
        "status",
        "rationale",
        "dissent",
        "risks",
        "checklist",
        "confidence",
        "votes",
        "loops_run",
    ):
        assert key in result


async def test_repair_succeeds(start_many, nc) -> None:
    start_many(cast(apollo={"TEKTON_SIMULATED_FAULTS": "wrong_schema:#1"}))
    events: list[dict] = []
    result = await debate(nc, events)
    assert result["status"] == "approved" and result["repairs"] == 1
    mediator_turns = [t for t in result["transcript"] if t["role"] == "mediator"]
    assert len(mediator_turns) == 2 and "artifact" in mediator_turns[0]["error"]
    [repair] = [e for e in events if e["type"] == "debate.repair.v1"]
    assert any("artifact" in err for err in repair["errors"])


async def test_repair_exhausted_blocks(start_many, nc) -> None:
    start_many(cast(apollo={"TEKTON_SIMULATED_FAULTS": "invalid_json:1"}))
    result = await debate(nc, max_repairs=2)
    assert result["status"] == "blocked" and result["reason"].startswith("failed repair")
    assert len([t for t in result["transcript"] if t["role"] == "mediator"]) == 3


async def test_failing_debater_abstains_without_sinking_the_debate(start_many, nc) -> None:
    start_many(cast(metis={"TEKTON_SIMULATED_FAULTS": "error:1"}))
    result = await debate(nc)
    assert result["status"] == "approved" and result["votes"]["metis-ci"] == "abstain"
    metis = [t for t in result["transcript"] if t["ci"] == "metis-ci"]
    assert all(t["abstained"] and t["attempts"] == 2 and "injected" in t["error"] for t in metis)


async def test_quorum_impossible_blocks(start_many, nc) -> None:
    broken = {"TEKTON_SIMULATED_FAULTS": "error:1"}
    start_many(cast(metis=broken, athena=broken))
    result = await debate(nc)
    assert result["status"] == "blocked" and result["reason"].startswith("quorum impossible")


async def test_malformed_json_is_asked_again(start_many, nc) -> None:
    start_many(cast(prometheus={"TEKTON_SIMULATED_FAULTS": "invalid_json:#1"}))
    result = await debate(nc)
    first = next(t for t in result["transcript"] if t["ci"] == "prometheus-ci")
    assert first["attempts"] == 2 and not first["abstained"]
    assert result["status"] == "approved"


async def test_turn_timeout_counts_as_abstention(start_many, nc) -> None:
    start_many(cast(metis={"TEKTON_SIMULATED_LATENCY_MS": "5000"}))
    result = await debate(nc, turn_timeout=0.4)
    metis = next(t for t in result["transcript"] if t["ci"] == "metis-ci")
    assert metis["abstained"] and "timed out" in metis["error"]
    assert result["status"] == "approved" and result["duration_s"] < 5


async def test_mediator_unavailable_blocks(start_many, nc) -> None:
    start_many({"rhetor": {}, "prometheus": {}, "athena": {}, "metis": {}})
    result = await debate(nc, turn_timeout=2)
    assert result["status"] == "blocked"
    assert (
        result["reason"]
        == "CI unavailable: mediator apollo-ci unavailable (no replica on NATS for 5s)"
    )


async def test_a_mediator_that_fails_is_not_called_unavailable(start_many, nc) -> None:
    start_many(cast(apollo={"TEKTON_SIMULATED_FAULTS": "error:1.0"}))
    result = await debate(nc, turn_timeout=5)
    assert result["status"] == "blocked"
    # the CI answered, with an error: it failed, it was not unavailable
    assert result["reason"].startswith("CI failed: mediator apollo-ci: "), result["reason"]
    assert "injected error" in result["reason"] and "unavailable" not in result["reason"]


async def test_budget_stops_before_the_next_round(start_many, nc) -> None:
    start_many(cast())
    result = await debate(nc, token_budget=200, max_rounds=3)
    assert result["status"] == "blocked" and result["reason"].startswith("budget")
    assert result["loops_run"] == 1


async def test_consensus_free(start_many, nc) -> None:
    start_many(cast())
    result = await debate(nc, consensus_free=True)
    assert result["status"] == "approved" and result["consensus_free"]
    assert [t["role"] for t in result["transcript"]] == ["proponent", "mediator"]


async def test_debaters_answer_in_parallel(start_many, nc) -> None:
    slow = {"TEKTON_SIMULATED_LATENCY_MS": "400"}
    start_many(cast(prometheus=slow, athena=slow, metis=slow))
    result = await debate(nc, max_rounds=1)
    opening = [t for t in result["transcript"] if t["round"] == 1]
    starts = [t["started_at"] for t in opening]
    ends = [t["started_at"] + t["latency_s"] for t in opening]
    assert len(opening) == 3 and all(t["latency_s"] >= 0.4 for t in opening)
    assert max(starts) < min(ends)  # every turn began before any had finished


async def test_custom_json_schema_and_role_override(start_many, nc) -> None:
    start_many({**cast(), "nous": {}})
    schema = {
        "type": "object",
        "required": ["goal", "milestones"],
        "properties": {
            "goal": {"type": "string"},
            "milestones": {"type": "array", "minItems": 2, "items": {"type": "string"}},
        },
    }
    result = await debate(nc, artifact_schema=schema, roles={"skeptic": "noesis"})
    assert result["status"] == "approved" and result["roles"]["skeptic"] == "nous-ci"
    jsonschema.validate(result["artifact"], schema)


async def test_bad_requests_are_clear_errors(start_many, nc) -> None:
    start_many({"rhetor": {}})
    client = BusClient(nc, 5)
    for payload, code, text in (
        (b'{"stage": "plan"}', 400, "prompt"),
        (b'{"prompt": "x", "artifact_schema": "nope"}', 404, "unknown artifact schema"),
        (b'{"prompt": "x", "roles": {"skeptic": "zeus"}}', 404, "unknown CI"),
        (b"not json", 400, "invalid JSON"),
    ):
        with pytest.raises(RemoteError, match=text) as info:
            await client.request("tekton.rhetor.debate", payload, "rhetor-ci")
        assert info.value.code == code


async def test_concurrent_debates(start_many, nc) -> None:
    start_many(cast())
    results = await asyncio.gather(*(debate(nc, debate_id=f"c{i}") for i in range(10)))
    assert [r["status"] for r in results] == ["approved"] * 10
    assert len({r["debate_id"] for r in results}) == 10


def test_tekton_debate_shows_turns_then_outcome(start_many, env) -> None:
    start_many(cast())
    done = env.tekton("debate", "Adopt JetStream?", "--stage", "plan")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("debate ") and "skeptic=athena-ci" in lines[0]
    turn_lines = [i for i, line in enumerate(lines) if line.strip().startswith("round")]
    outcome = next(i for i, line in enumerate(lines) if line.startswith("APPROVED"))
    assert turn_lines and max(turn_lines) < outcome
