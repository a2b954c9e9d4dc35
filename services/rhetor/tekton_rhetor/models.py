"""Debate wire models, the position schema and the default role map."""

from __future__ import annotations

import uuid
from typing import Any

import msgspec

from tekton_common.wire import total_tokens

DEBATERS = ("proponent", "skeptic", "pragmatist")
ROLES = (*DEBATERS, "mediator")
VOTES = ("accept", "revise", "reject")

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


class DebateRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """What a stage (or a person) asks Rhetor for on ``tekton.rhetor.debate``."""

    prompt: str
    stage: str = "general"
    context: dict[str, Any] | str | None = None
    roles: dict[str, str] = {}
    max_rounds: int = 2
    threshold: float = 2 / 3
    consensus_free: bool = False
    #: a registered artifact schema name, or a JSON Schema
    artifact_schema: str | dict[str, Any] = "decision"
    token_budget: int = 0
    model: str | None = None
    run_id: str | None = None
    debate_id: str = msgspec.field(default_factory=lambda: uuid.uuid4().hex[:12])
    turn_timeout: float | None = None
    max_repairs: int = 2
    min_confidence: float = 0.70


class Position(msgspec.Struct):
    """A debater's position, as parsed (and repaired) from its reply."""

    position: str
    vote: str
    self_confidence: float
    scores: dict[str, float] = {}
    risks: list[str] = []
    checks: list[str] = []
    dissent: str | None = None


class TurnRecord(msgspec.Struct):
    """One turn of the transcript."""

    round: int
    role: str
    ci: str
    attempts: int
    latency_s: float
    started_at: float
    position: Position | None = None
    outcome: dict[str, Any] | None = None
    abstained: bool = False
    error: str | None = None
    repaired: bool = False
    model: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0
    cost_usd: float = 0.0

    @property
    def tokens(self) -> int:
        """All tokens of the turn."""
        return total_tokens(self)


class DebateResult(msgspec.Struct):
    """What Rhetor answers: the contract's outcome, plus transcript, usage and timing."""

    debate_id: str
    stage: str
    status: str
    reason: str | None
    artifact: dict[str, Any] | None
    rationale: str
    dissent: list[str]
    risks: list[str]
    checklist: list[str]
    confidence: float
    votes: dict[str, str]
    accept_share: float
    loops_run: int
    repairs: int
    roles: dict[str, str]
    transcript: list[TurnRecord]
    total_tokens: int
    cost_usd: float
    duration_s: float
    consensus_free: bool = False
    type: str = "debate_result.v1"
