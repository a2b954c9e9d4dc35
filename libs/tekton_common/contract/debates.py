"""Debates on the bus: ``tekton.rhetor.debate``, its positions, turns and result."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

import msgspec

from tekton_common.contract.ids import ID_PATTERN, DebateId, RunId
from tekton_common.contract.limits import (
    DEFAULT_MIN_CONFIDENCE,
    DEFAULT_REPAIRS,
    DEFAULT_ROUNDS,
    DEFAULT_THRESHOLD,
    Confidence,
    ModelSpec,
    Prompt,
    Repairs,
    Rounds,
    TeamDeadline,
    Threshold,
    TokenBudget,
    TurnTimeout,
)
from tekton_common.contract.schemas import check_schema
from tekton_common.wire import total_tokens

DEBATERS = ("proponent", "skeptic", "pragmatist")
ROLES = (*DEBATERS, "mediator")
VOTES = ("accept", "revise", "reject")

Role = Literal["proponent", "skeptic", "pragmatist", "mediator"]
#: a CI named in a request (any alias; resolved against the catalog where it is used)
CIName = Annotated[str, msgspec.Meta(pattern=ID_PATTERN)]
#: a registered artifact schema's name
SchemaName = Annotated[str, msgspec.Meta(pattern=ID_PATTERN)]
Context = dict[str, Any] | Annotated[str, msgspec.Meta(max_length=200_000)] | None


def new_debate_id() -> str:
    """A fresh debate id."""
    return uuid.uuid4().hex[:12]


class DebateRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """What a stage (or a person) asks Rhetor for on ``tekton.rhetor.debate``.

    `artifact_schema` is a registered schema's name or a JSON Schema; a schema given
    inline is checked (`schemas.check_schema`) when the request is decoded."""

    prompt: Prompt
    stage: SchemaName = "general"
    context: Context = None
    roles: dict[Role, CIName] = {}
    max_rounds: Rounds = DEFAULT_ROUNDS
    threshold: Threshold = DEFAULT_THRESHOLD
    consensus_free: bool = False
    artifact_schema: SchemaName | dict[str, Any] = "decision"
    token_budget: TokenBudget = 0
    model: ModelSpec | None = None
    run_id: RunId | None = None
    debate_id: DebateId = msgspec.field(default_factory=new_debate_id)
    turn_timeout: TurnTimeout | None = None
    max_repairs: Repairs = DEFAULT_REPAIRS
    min_confidence: Confidence = DEFAULT_MIN_CONFIDENCE

    def __post_init__(self) -> None:
        if isinstance(self.artifact_schema, dict):
            try:
                check_schema(self.artifact_schema, meta=True)
            except ValueError as exc:
                raise ValueError(f"artifact_schema: {exc}") from None


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


MODES = ("pass_through", "directed", "synthesis", "consensus")


class TeamRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A request on ``tekton.rhetor.team``: a message for the CIs and how Rhetor
    moderates their replies."""

    message: Prompt
    mode: Literal["pass_through", "directed", "synthesis", "consensus"] = "pass_through"
    cis: Annotated[list[CIName], msgspec.Meta(max_length=64)] = []
    deadline: TeamDeadline = 10.0
    mediator: CIName = "apollo"
    threshold: Threshold = DEFAULT_THRESHOLD
