"""The position schema and the default role map (the debate messages themselves are in
`tekton_common.contract.debates`)."""

from __future__ import annotations

from typing import Any

from tekton_common.contract.debates import VOTES

#: stage → (proponent, skeptic, pragmatist, mediator); "general" for anything else
DEFAULT_ROLES: dict[str, tuple[str, str, str, str]] = {
    "general": ("prometheus", "athena", "metis", "apollo"),
    "plan": ("prometheus", "athena", "metis", "apollo"),
    "research": ("athena", "nous", "sophia", "apollo"),
    "plan_update": ("metis", "telos", "harmonia", "apollo"),
    "code": ("synthesis", "ergon", "hephaestus", "apollo"),
    "review": ("athena", "sophia", "synthesis", "apollo"),
    "threat": ("nous", "athena", "terma", "apollo"),
    "integrate": ("harmonia", "synthesis", "ergon", "apollo"),
    "test_debug": ("ergon", "sophia", "synthesis", "apollo"),
    "release": ("telos", "budget", "harmonia", "apollo"),
}

#: the JSON a debater answers with (the contract's "position")
POSITION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["position", "scores", "risks", "checks", "self_confidence", "vote"],
    "properties": {
        "position": {"type": "string", "minLength": 1},
        "scores": {
            "type": "object",
            "additionalProperties": False,
            "required": ["correctness", "stack_fit", "ops_risk", "reversibility", "recency"],
            "properties": {
                k: {"type": "number", "minimum": 0, "maximum": 1}
                for k in ("correctness", "stack_fit", "ops_risk", "reversibility", "recency")
            },
        },
        "risks": {"type": "array", "items": {"type": "string"}},
        "checks": {"type": "array", "items": {"type": "string"}},
        "self_confidence": {"type": "number", "minimum": 0, "maximum": 1},
        "vote": {"enum": list(VOTES)},
        "dissent": {"anyOf": [{"type": "string"}, {"type": "null"}]},
    },
}


def outcome_schema(artifact: dict[str, Any]) -> dict[str, Any]:
    """The mediator's JSON: the artifact (its schema nested, its $defs lifted) and verdict."""
    nested = {k: v for k, v in artifact.items() if k not in ("$defs", "definitions", "$schema")}
    schema: dict[str, Any] = {
        "type": "object",
        "additionalProperties": False,
        "required": [
            "artifact",
            "status",
            "rationale",
            "dissent",
            "risks",
            "checklist",
            "confidence",
        ],
        "properties": {
            "artifact": nested,
            "status": {"enum": ["approved", "blocked"]},
            "rationale": {"type": "string", "minLength": 1},
            "dissent": {"type": "array", "items": {"type": "string"}},
            "risks": {"type": "array", "items": {"type": "string"}},
            "checklist": {"type": "array", "items": {"type": "string"}},
            "confidence": {"type": "number", "minimum": 0, "maximum": 1},
        },
    }
    for key in ("$defs", "definitions"):
        if key in artifact:
            schema[key] = artifact[key]
    return schema
