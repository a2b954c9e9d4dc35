"""Debates on the bus: ``tekton.rhetor.debate``, its positions, turns and result."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

import msgspec

from tekton_common.contract.ids import ID_PATTERN, DebateId, Person, RunId
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
from tekton_common.contract.schemas import JsonObject, JsonSchema, check_schema
from tekton_common.wire import total_tokens

DEBATERS = ("proponent", "skeptic", "pragmatist")
ROLES = (*DEBATERS, "mediator")
VOTES = ("accept", "revise", "reject")

Role = Literal["proponent", "skeptic", "pragmatist", "mediator"]
#: a CI named in a request (any alias; resolved against the catalog where it is used)
CIName = Annotated[str, msgspec.Meta(pattern=ID_PATTERN)]
#: a registered artifact schema's name
SchemaName = Annotated[str, msgspec.Meta(pattern=ID_PATTERN)]
Context = JsonObject | Annotated[str, msgspec.Meta(max_length=200_000)] | None


#: the seat a person takes (``--role skeptic=human``) in place of a CI
HUMAN = "human"


class SeatAnswer(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """``tekton.debates.<debate_id>.answer``: a person's answer for the human seat
    `role`, held to what a CI's is: a debater's position (PositionReply) or the
    mediator's outcome (OutcomeReply, its artifact to the stage's schema)."""

    role: Role
    answer: JsonObject
    by: Person
    #: the round the answer is for (SeatAwaited.round); when given, an answer meant for
    #: another round is refused
    round: Annotated[int, msgspec.Meta(ge=1, le=100)] | None = None


class SeatAnswered(msgspec.Struct, frozen=True):
    """The reply to an answer the debate took."""

    debate_id: str
    role: str
    round: int
    by: str


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
    #: a seat's own model (mixed triads), over `model`, which holds for the other seats
    models: dict[Role, ModelSpec] = {}
    max_rounds: Rounds = DEFAULT_ROUNDS
    threshold: Threshold = DEFAULT_THRESHOLD
    consensus_free: bool = False
    artifact_schema: SchemaName | JsonSchema = "decision"
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


#: bounds of what a model writes in a reply: a small model held to a grammar adds items
#: and words until its token limit unless the schema stops it (issue of the local model)
MAX_POSITION = 2000
MAX_ITEM = 300
MAX_ITEMS = 8
#: tokens a debater's position and a mediator's outcome may take: room for every bound
#: above, and a stop for a model that never closes its JSON
POSITION_TOKENS = 2048
OUTCOME_TOKENS = 6144
Text = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_POSITION)]
Item = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_ITEM)]
Items = Annotated[list[Item], msgspec.Meta(max_length=MAX_ITEMS)]


class Scores(msgspec.Struct, forbid_unknown_fields=True):
    """A debater's scores of the question's answer, each in [0, 1]."""

    correctness: Confidence = 0.0
    stack_fit: Confidence = 0.0
    ops_risk: Confidence = 0.0
    reversibility: Confidence = 0.0
    recency: Confidence = 0.0


class PositionReply(msgspec.Struct, forbid_unknown_fields=True):
    """What a debater must answer. `reply_schema(PositionReply)` is what the model is
    held to (every field required but `dissent`); a reply is checked by decoding into
    this same Struct, which lets a missing list or score pass as empty."""

    position: Text
    self_confidence: Confidence
    vote: Literal["accept", "revise", "reject"]
    scores: Scores = msgspec.field(default_factory=Scores)
    risks: Items = []
    checks: Items = []
    dissent: Annotated[str, msgspec.Meta(max_length=MAX_POSITION)] | None = None


class OutcomeReply(msgspec.Struct, forbid_unknown_fields=True):
    """What the mediator must answer; `artifact` follows the stage's own schema
    (`outcome_schema` nests it)."""

    artifact: JsonObject
    status: Literal["approved", "blocked"]
    rationale: Text
    confidence: Confidence
    dissent: Items = []
    risks: Items = []
    checklist: Items = []


def _require(schema: JsonSchema) -> None:
    """Every property required, but those whose default is null."""
    properties = schema.get("properties", {})
    optional = {
        name for name, sub in properties.items() if "default" in sub and sub["default"] is None
    }
    schema["required"] = [name for name in properties if name not in optional]
    for sub in properties.values():
        sub.pop("default", None)


def reply_schema(kind: type[msgspec.Struct]) -> JsonSchema:
    """The JSON Schema a model is held to for a reply Struct: generated from it, its
    root inlined (a model and the simulated provider read the properties at the top),
    nested Structs under ``$defs``, and every field required but the optional ones (a
    small model leaves out whatever a schema lets it)."""
    generated = msgspec.json.schema(kind)
    defs: dict[str, JsonSchema] = dict(generated.get("$defs", {}))
    root: JsonSchema = dict(defs.pop(kind.__name__))
    for schema in (root, *defs.values()):
        _require(schema)
    if defs:
        root["$defs"] = defs
    return root


def outcome_schema(artifact: JsonSchema) -> JsonSchema:
    """The mediator's JSON: OutcomeReply, with `artifact`'s schema nested (its
    ``$defs`` lifted to the top, where its references point)."""
    schema = reply_schema(OutcomeReply)
    nested = {k: v for k, v in artifact.items() if k not in ("$defs", "definitions", "$schema")}
    schema["properties"] = {**schema["properties"], "artifact": nested}
    defs = {**schema.get("$defs", {}), **artifact.get("$defs", {})}
    if defs:
        schema["$defs"] = defs
    if "definitions" in artifact:
        schema["definitions"] = artifact["definitions"]
    return schema


class Position(msgspec.Struct):
    """A debater's position, as parsed (and repaired) from its reply and kept in the
    transcript (lenient, so that turns stored by older versions still read)."""

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
    outcome: JsonObject | None = None
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
    artifact: JsonObject | None
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
