"""Runs and stages on the bus: ``tekton.runs.start``, ``tekton.runs.resume``,
``tekton.runs.decide``, ``tekton.runs.retry``, ``tekton.runs.fork`` and
``tekton.stage.<stage>.run``."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

import msgspec

from tekton_common.contract.debates import CIName, DebateResult, Role
from tekton_common.contract.ids import DebateId, Id, Person, RunId
from tekton_common.contract.limits import (
    DEFAULT_ROUNDS,
    DEFAULT_THRESHOLD,
    Goal,
    ModelSpec,
    Rounds,
    Threshold,
)
from tekton_common.contract.schemas import JsonObject
from tekton_common.contract.seats import Seats, check_seats
from tekton_common.contract.workspaces import (
    CheckSpec,
    RepairAttempts,
    RepoUrl,
    WorkspaceRef,
)
from tekton_common.stages import DIAMOND, Stage

Stages = Annotated[list[Stage], msgspec.Meta(max_length=len(DIAMOND))]
#: how long a gate may wait: a second to 90 days
APPROVAL_TIMEOUT = (1.0, 90 * 86400.0)
ApprovalTimeout = Annotated[float, msgspec.Meta(ge=APPROVAL_TIMEOUT[0], le=APPROVAL_TIMEOUT[1])]


def new_run_id() -> str:
    """A fresh run id."""
    return uuid.uuid4().hex[:12]


class RunRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """``tekton.runs.start``: what a run is asked to do. No field names a path on the
    server: artifacts go under the stages service's own artifacts root, a repository
    comes as a workspace in the object store or as a remote URL."""

    goal: Goal
    run_id: RunId = msgspec.field(default_factory=new_run_id)
    from_stage: Stage | None = None
    to_stage: Stage | None = None
    consensus_free: Stages = []
    model: ModelSpec | None = None
    max_rounds: Rounds = DEFAULT_ROUNDS
    threshold: Threshold = DEFAULT_THRESHOLD
    workspace: WorkspaceRef | None = None
    repo_url: RepoUrl | None = None
    #: the repository's checks (else its tekton.toml [checks], else detected)
    checks: Annotated[list[CheckSpec], msgspec.Meta(max_length=20)] = []
    #: times a change that breaks a check goes back to the code stage (None: the setting)
    repair_attempts: RepairAttempts | None = None
    #: who sits where, on which model: ``[STAGE:]ROLE=CI[@MODEL]`` (contract.seats)
    seats: Seats = []
    #: stages whose artifact waits for a person's decision before the run goes on
    approve: Stages = []
    #: seconds a gate waits for its decision before the run is blocked (None: for ever)
    approval_timeout: ApprovalTimeout | None = None

    def __post_init__(self) -> None:
        if self.workspace is not None and self.repo_url is not None:
            raise ValueError("a run takes a workspace or a repo_url, not both")
        check_seats(self.seats)


def new_decision_id() -> str:
    """A fresh decision id (the same id sent twice is one decision)."""
    return uuid.uuid4().hex[:16]


DECISIONS = ("approve", "reject", "edit")


class DecisionRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """``tekton.runs.decide``: a decision on a paused run's gated stage (the one it
    awaits when `stage` is not given). `comment` is the reason of a rejection; an edit
    carries the artifact that flows on, held to the stage's schema."""

    run_id: RunId
    decision: Literal["approve", "reject", "edit"]
    by: Person
    stage: Stage | None = None
    comment: Annotated[str, msgspec.Meta(max_length=4000)] | None = None
    artifact: JsonObject | None = None
    decision_id: Id = msgspec.field(default_factory=new_decision_id)

    def __post_init__(self) -> None:
        if self.decision == "edit" and (self.artifact is None or self.stage is None):
            raise ValueError("an edit names its stage and carries the artifact")
        if self.decision != "edit" and self.artifact is not None:
            raise ValueError(f"a decision to {self.decision} carries no artifact")
        if self.decision == "reject" and not (self.comment or "").strip():
            raise ValueError("a rejection gives its reason")


class DecisionMade(msgspec.Struct, frozen=True):
    """The reply to a decision: what was recorded (`repeated` when this very decision
    had been recorded before)."""

    run_id: str
    stage: str
    decision: str
    decision_id: str
    by: str
    repeated: bool = False


class ResumeRequest(msgspec.Struct, frozen=True):
    """``tekton.runs.resume``."""

    run_id: RunId


class Tuning(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What a retry or a fork may change of the run's request (None: as it was)."""

    model: ModelSpec | None = None
    threshold: Threshold | None = None
    max_rounds: Rounds | None = None


class RetryRequest(Tuning, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``tekton.runs.retry``: run a failed run's blocked stage again (`stage`, when
    given, must be it), told why it was blocked, and go on from there."""

    run_id: RunId
    stage: Stage | None = None


class ForkRequest(Tuning, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``tekton.runs.fork``: a new run of `fork_of`'s goal, repository and settings
    that reuses its artifacts of the stages before `from_stage` and runs the rest
    (`approve`: its gates, when not the source's)."""

    fork_of: RunId
    from_stage: Stage
    run_id: RunId = msgspec.field(default_factory=new_run_id)
    approve: Stages | None = None


class RunAccepted(msgspec.Struct, frozen=True):
    """The reply to a start or a resume: the run and the stages it will go through."""

    run_id: str
    stages: list[str]
    skipped: list[str] = []


class Lesson(msgspec.Struct):
    """What a finished or blocked stage taught (kept in Milvus for later runs)."""

    run_id: str
    stage: str
    status: str
    goal: str
    text: str
    score: float = 0.0


class Chunk(msgspec.Struct):
    """Lines `start`..`end` of one repository file."""

    path: str
    start: int
    end: int
    text: str
    score: float = 0.0


class Recall(msgspec.Struct):
    """What memory gave a stage, and a note when it could not."""

    lessons: list[Lesson] = []
    chunks: list[Chunk] = []
    note: str = "ok"


class StageRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """``tekton.stage.<stage>.run``: what the coordinator sends a stage."""

    run_id: RunId
    stage: Stage
    goal: Goal
    debate_id: DebateId
    earlier: dict[str, JsonObject] = {}
    consensus_free: bool = False
    model: ModelSpec | None = None
    #: the debate's seats for this stage (contract.seats): role → CI, role → model
    roles: dict[Role, CIName] = {}
    models: dict[Role, ModelSpec] = {}
    max_rounds: Rounds = DEFAULT_ROUNDS
    threshold: Threshold = DEFAULT_THRESHOLD
    #: the key of the repository's chunks in memory (the workspace's digest)
    repo_key: Annotated[str, msgspec.Meta(max_length=200)] | None = None
    #: what was measured in the repository (checks on the base and on the change, a
    #: diff that did not apply): the stage weighs it over any claim
    evidence: Annotated[str, msgspec.Meta(max_length=64_000)] | None = None
    #: what memory holds for the stage, when the coordinator fetched it ahead (it asks
    #: for every stage of a run at once); else the stage asks itself
    recall: Recall | None = None
    #: why this stage was blocked before (a retry): a person's rejection, or a debate's
    feedback: Annotated[str, msgspec.Meta(max_length=8000)] | None = None


class StageOutcome(msgspec.Struct):
    """What a stage returns: an artifact, or a block with its reason; the debate's
    result (without its transcript: that went turn by turn), when there was one."""

    stage: str
    status: str
    reason: str | None
    artifact: JsonObject | None
    debate: DebateResult | None = None
    type: str = "stage_outcome.v1"
