"""Request and reply bodies of the API (the OpenAPI schema is made from these)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tekton_api.config import MODELS_HELP, SeatList
from tekton_common.contract.ids import ID_CHARS, MAX_PERSON, MAX_RUN_ID, PERSON_PATTERN
from tekton_common.contract.limits import MAX_GOAL, MAX_MODEL, ROUNDS, THRESHOLD
from tekton_common.contract.runs import APPROVAL_TIMEOUT
from tekton_common.contract.seats import MAX_SEATS
from tekton_common.contract.workspaces import REPO_URL_PATTERN
from tekton_common.stages import Stage


class WorkspaceIn(BaseModel):
    """A workspace already in the bucket (as /runs/workspaces returned it)."""

    name: str
    kind: Literal["git", "tree"]
    size: int = Field(ge=0)
    digest: str = ""
    label: str = ""


class WorkspaceUploaded(BaseModel):
    """An uploaded repository: the run it is for, and the workspace to start it with."""

    run_id: str
    workspace: WorkspaceIn


RunIdField = Annotated[str, Field(pattern=f"^[{ID_CHARS}]+$", max_length=MAX_RUN_ID)]
ModelField = Annotated[
    str,
    Field(
        max_length=MAX_MODEL,
        description=f"one model for every turn: {MODELS_HELP}, or a profile of the configuration",
    ),
]
#: who decides or answers (contract.ids.Person)
PersonField = Annotated[
    str | None, Field(min_length=1, max_length=MAX_PERSON, pattern=PERSON_PATTERN)
]
ThresholdField = Annotated[float, Field(ge=THRESHOLD[0], le=THRESHOLD[1])]
RoundsField = Annotated[int, Field(ge=ROUNDS[0], le=ROUNDS[1])]
#: what a fork takes from its source run and may not be given with it
FORK_TAKES = (
    "goal",
    "repo_url",
    "workspace",
    "to_stage",
    "consensus_free",
    "seats",
    "approval_timeout",
)


class RunCreate(BaseModel):
    """A run to start (a field it does not know is an error, not ignored); with
    `fork_of` and `from_stage`, a fork of that run: its goal, repository, stages and
    seats, reusing its artifacts of the stages before `from_stage`."""

    model_config = ConfigDict(extra="forbid")

    goal: str | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_GOAL,
        description="what the run should achieve (required, but for a fork)",
    )
    fork_of: RunIdField | None = Field(default=None, description="the run this one forks")
    threshold: ThresholdField | None = Field(
        default=None, description="the accept share (else /config's; a fork's: its source's)"
    )
    max_rounds: RoundsField | None = Field(
        default=None, description="debate rounds (else /config's; a fork's: its source's)"
    )
    repo_url: str | None = Field(
        default=None,
        max_length=2048,
        pattern=REPO_URL_PATTERN,
        description="a remote git repository (https://, ssh:// or git://)",
    )
    run_id: str | None = Field(
        default=None,
        pattern=f"^[{ID_CHARS}]+$",
        max_length=MAX_RUN_ID,
        description="the run id an upload to /runs/workspaces gave",
    )
    workspace: WorkspaceIn | None = Field(
        default=None, description="what an upload to /runs/workspaces returned"
    )
    from_stage: Stage | None = Field(default=None, description="first stage")
    to_stage: Stage | None = Field(default=None, description="last stage")
    consensus_free: list[Stage] | None = Field(
        default=None,
        max_length=9,
        description="stages that take the proponent's draft without a debate (else /config's)",
    )
    model: ModelField | None = None
    approve: list[Stage] = Field(
        default_factory=list,
        max_length=9,
        description="stages whose artifact waits for a decision (POST /runs/{id}/decisions); "
        "a fork given none keeps its source's",
    )
    approval_timeout: float | None = Field(
        default=None,
        ge=APPROVAL_TIMEOUT[0],
        le=APPROVAL_TIMEOUT[1],
        description="seconds a gate waits for its decision before the run is blocked",
    )
    seats: SeatList = Field(
        default_factory=list,
        max_length=MAX_SEATS,
        description="who sits in a seat and on which model: [STAGE:]ROLE=CI[@MODEL] "
        "(after /config's, and winning over them)",
    )

    @model_validator(mode="after")
    def _fork_or_goal(self) -> RunCreate:
        if self.fork_of is None:
            if self.goal is None:
                raise ValueError("a run needs its goal (or fork_of and from_stage)")
            return self
        if self.from_stage is None:
            raise ValueError("a fork names from_stage, the first stage it runs again")
        given = [name for name in FORK_TAKES if getattr(self, name)]
        if given or self.run_id is not None:
            taken = ", ".join(given or ["run_id"])
            raise ValueError(
                "a fork takes its run's goal, repository, stages, seats and approval "
                f"timeout: {taken}"
            )
        return self


class RetryIn(BaseModel):
    """A failed run's blocked stage run again (the run named in the path)."""

    model_config = ConfigDict(extra="forbid")

    stage: Stage | None = Field(default=None, description="the blocked stage (checked)")
    model: ModelField | None = None
    threshold: ThresholdField | None = None
    max_rounds: RoundsField | None = None


class SeatAnswerIn(BaseModel):
    """A person's answer for a debate's human seat (the debate named in the path)."""

    model_config = ConfigDict(extra="forbid")

    role: Literal["proponent", "skeptic", "pragmatist", "mediator"]
    answer: dict[str, Any] = Field(
        description="a debater's position (PositionReply) or the mediator's outcome "
        "(OutcomeReply, its artifact the stage's)"
    )
    by: PersonField = Field(default=None, description="who answers (a named token's name wins)")
    round: int | None = Field(
        default=None, ge=1, le=100, description="the round answered (SeatAwaited.round)"
    )


class DecisionIn(BaseModel):
    """A decision on the gate a paused run waits at (the run named in the path)."""

    model_config = ConfigDict(extra="forbid")

    decision: Literal["approve", "reject", "edit"]
    by: PersonField = Field(default=None, description="who decides (a named token's name wins)")
    stage: Stage | None = Field(default=None, description="the gated stage (an edit needs it)")
    comment: str | None = Field(
        default=None, max_length=4000, description="a note; a rejection's reason"
    )
    artifact: dict[str, Any] | None = Field(default=None, description="an edit's artifact")
    decision_id: str | None = Field(
        default=None,
        pattern=f"^[{ID_CHARS}]+$",
        max_length=64,
        description="the same id twice is one decision",
    )


class RunStarted(BaseModel):
    """A started (forked, retried) run: the stages it goes through, those it skips."""

    run_id: str
    stages: list[str]
    skipped: list[str] = []


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str


class Check(BaseModel):
    """One readiness check."""

    ok: bool
    detail: str


class SystemChecks(BaseModel):
    """`GET /system/checks`: `ok` when the essential checks (NATS, the state folder) pass."""

    ok: bool
    checks: dict[str, Check]
