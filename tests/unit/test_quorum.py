from __future__ import annotations

import pytest
from msgspec.structs import replace

from tekton_common.contract.debates import Position, TurnRecord, outcome_schema
from tekton_rhetor import quorum
from tekton_rhetor.debate import votes_of
from tekton_rhetor.validate import ArtifactSchema, parse_position


def turn(vote: str | None, confidence: float = 1.0) -> TurnRecord:
    position = (
        None if vote is None else Position(position="p", vote=vote, self_confidence=confidence)
    )
    return TurnRecord(
        round=1,
        role="r",
        ci="x",
        attempts=1,
        latency_s=0,
        started_at=0,
        position=position,
        abstained=vote is None,
    )


def test_weighted_accept_share() -> None:
    assert quorum.accept_share(
        [turn("accept", 0.9), turn("reject", 0.3), turn("revise", 0.6)]
    ) == pytest.approx(0.5)
    assert quorum.accept_share(
        [turn("accept", 0.5), turn("accept", 0.5), turn("reject", 0.5)]
    ) == pytest.approx(2 / 3)
    assert quorum.accept_share([turn("reject", 0.0), turn("accept", 0.0)]) == 0.0


def test_two_thirds_reached_exactly_and_confidence_matters() -> None:
    assert quorum.reached([turn("accept"), turn("accept"), turn("reject")], 2 / 3)
    # two accepts, but the dissenter is far more confident
    assert not quorum.reached(
        [turn("accept", 0.3), turn("accept", 0.3), turn("reject", 0.9)], 2 / 3
    )


def test_abstentions_and_quorum_possibility() -> None:
    one_left = [turn("accept"), turn(None), turn(None)]
    assert not quorum.quorum_possible(one_left) and not quorum.reached(one_left, 0.5)
    two_left = [turn("accept", 0.8), turn("accept", 0.7), turn(None)]
    assert quorum.quorum_possible(two_left) and quorum.reached(two_left, 2 / 3)


def test_parse_position_repairs_what_is_clear() -> None:
    position, repaired, error = parse_position(
        'Sure! {"position": "ship it", "vote": "ACCEPT", "self_confidence": 1.4} thanks'
    )
    assert error is None and repaired
    assert position is not None and position.vote == "accept" and position.self_confidence == 1
    clean, repaired, _ = parse_position(
        '{"position": "p", "vote": "revise", "self_confidence": 0.5, "risks": ["r"]}'
    )
    assert clean is not None and not repaired and clean.risks == ["r"]
    for bad, why in (
        ("no json here", "not a JSON object"),
        ('{"position": "p", "vote": "maybe", "self_confidence": 1}', "vote"),
        ('{"position": "p", "vote": "accept", "self_confidence": "x"}', "`self_confidence`"),
        ('{"position": "", "vote": "accept", "self_confidence": 1}', "position"),
    ):
        assert parse_position(bad)[0] is None and why in str(parse_position(bad)[2])


def test_artifact_schema_by_name_and_by_json_schema() -> None:
    named = ArtifactSchema("decision")
    assert (
        named.errors(
            {"summary": "s", "decision": "d", "rationale": "r", "actions": ["a"], "confidence": 0.8}
        )
        == []
    )
    assert any(
        e.startswith("actions")
        for e in named.errors(
            {"summary": "s", "decision": "d", "rationale": "r", "actions": [], "confidence": 2}
        )
    )
    custom = ArtifactSchema(
        {"type": "object", "required": ["goal"], "properties": {"goal": {"type": "string"}}}
    )
    assert custom.errors({"goal": "g"}) == []
    assert custom.errors({"goal": 5}) == ["goal: 5 is not of type 'string'"]
    with pytest.raises(LookupError, match="unknown artifact schema"):
        ArtifactSchema("nope")


def test_outcome_schema_lifts_defs() -> None:
    artifact = {
        "type": "object",
        "properties": {"x": {"$ref": "#/$defs/X"}},
        "$defs": {"X": {"type": "string"}},
    }
    schema = outcome_schema(artifact)
    assert schema["$defs"] == {"X": {"type": "string"}}
    assert schema["properties"]["artifact"]["properties"]["x"] == {"$ref": "#/$defs/X"}
    assert {"artifact", "status", "rationale", "confidence"} <= set(schema["required"])
    assert "$defs" not in schema["properties"]["artifact"]


def test_two_seats_of_one_ci_or_two_people_keep_both_votes() -> None:
    people = [
        replace(turn("accept"), ci="human", role="skeptic"),
        replace(turn("reject"), ci="human", role="pragmatist"),
        replace(turn("accept"), ci="apollo-ci", role="proponent"),
    ]
    assert votes_of(people) == {
        "human:skeptic": "accept",
        "human:pragmatist": "reject",
        "apollo-ci": "accept",
    }
