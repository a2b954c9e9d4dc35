"""Events, as tagged unions whose tag is the type and its version.

Run events go to ``tekton.runs.<run_id>.events`` and are kept by the JetStream stream
``TEKTON_RUNS``; a run's state is its event log. Debate events go to
``tekton.debates.<debate_id>.events`` while a stage's debate runs (Rhetor's turns and
rounds, and what the stage recalled and checked); the run coordinator turns them into
run events. Readers decode into these types and match on them, never on strings; an
event of a newer version than a reader knows is skipped by `read_run_event`, not
mistaken for another.
"""

from __future__ import annotations

import logging
from typing import Literal

import msgspec

from tekton_common.contract.debates import DebateResult, TurnRecord
from tekton_common.contract.schemas import JsonObject
from tekton_common.contract.workspaces import CheckResult, WorkspaceRef

log = logging.getLogger(__name__)


class RunEvent(msgspec.Struct, tag_field="type", kw_only=True, omit_defaults=True):
    """What every run event carries: its run, its place in the run's log, when."""

    run_id: str = ""
    seq: int = 0
    ts: float = 0.0


class RunStarted(RunEvent, tag="RunStarted.v1"):
    """A run began: its goal, its stages, where the service keeps its artifacts, and the
    request as it was asked (kept as sent, so that older requests still read)."""

    goal: str
    stages: list[str]
    output: str
    request: JsonObject
    #: a fork: the run whose artifacts of the stages before `stages` it reuses
    fork_of: str | None = None
    reused: list[str] = []


class RunResumed(RunEvent, tag="RunResumed.v1"):
    """A run goes on after its last finished stage; a retry names the stage run again
    and the request as it goes on from here (another model, threshold or rounds)."""

    done: list[str]
    remaining: list[str]
    retry: str | None = None
    request: JsonObject | None = None


class StageStarted(RunEvent, tag="StageStarted.v1"):
    """A stage's debate began."""

    stage: str
    debate_id: str


class LessonRef(msgspec.Struct):
    """A lesson a stage recalled: from which run and stage, how close."""

    run_id: str
    stage: str
    score: float


#: how much of a person's question a run event keeps
MAX_ASK = 16_000


class StageProgress(RunEvent, tag="StageProgress.v1"):
    """A step of a stage: a debate round (with its accept share), memory recalled (the
    lessons and chunks), a check (ok), a repository indexed, a lesson kept."""

    stage: str
    step: str
    detail: str | None = None
    accept_share: float | None = None
    lessons: list[LessonRef] | None = None
    chunks: list[str] | None = None
    ok: bool | None = None
    #: the seat a step is about (``awaiting answer``: a person's seat)
    role: str | None = None
    #: what a person's seat is asked (``awaiting answer``), as a CI in it would be; its
    #: first MAX_ASK characters
    ask: str | None = None


class DebateTurn(RunEvent, tag="DebateTurn.v1"):
    """One turn of a stage's debate, whole."""

    stage: str
    debate_id: str
    turn: TurnRecord


class StageBlocked(RunEvent, tag="StageBlocked.v1"):
    """A stage could not produce its artifact."""

    stage: str
    reason: str | None


class ArtifactCreated(RunEvent, tag="ArtifactCreated.v1"):
    """A stage's artifact: its name, the service's files and the artifact itself."""

    stage: str
    name: str
    files: list[str]
    artifact: JsonObject
    #: a fork's artifact taken as it was from this run, not debated again
    reused_from: str | None = None


class StageFinished(RunEvent, tag="StageFinished.v1"):
    """A stage ended with its artifact."""

    stage: str
    status: str
    tokens: int
    cost_usd: float
    duration_s: float
    confidence: float


class ChecksFinished(RunEvent, tag="ChecksFinished.v1"):
    """The repository's checks ran in the sandbox on the workspace (`base`, once a run)
    and on one attempt's change (`results`); `failing` names the checks that fail on the
    change (each one a reason to repair it). `commit` is what they ran on."""

    stage: str
    attempt: int
    commit: str
    source: str
    results: list[CheckResult]
    base: list[CheckResult] = []
    base_commit: str = ""
    failing: list[str] = []


class RepairRequested(RunEvent, tag="RepairRequested.v1"):
    """The change did not hold (it did not apply, or broke a check): the stage runs
    again with what failed."""

    stage: str
    attempt: int
    reason: str


class StageAwaitingApproval(RunEvent, tag="StageAwaitingApproval.v1"):
    """A gated stage made its artifact (its debate and checks done): the run pauses,
    holding nothing in memory, until a person approves, rejects or edits it."""

    stage: str
    artifact: JsonObject
    summary: str
    tokens: int
    cost_usd: float
    duration_s: float
    confidence: float
    #: when the run is blocked if nobody decided (epoch seconds; the run's approval_timeout)
    deadline: float | None = None


class DecisionRecorded(RunEvent, tag="DecisionRecorded.v1"):
    """A person's decision on a gated stage: who, what, and (an edit) the artifact that
    flows on in place of the stage's."""

    stage: str
    decision: str  # approve | reject | edit
    decision_id: str
    by: str
    comment: str | None = None
    artifact: JsonObject | None = None


class RunFinished(RunEvent, tag="RunFinished.v1"):
    """Every stage made its artifact; with a repository, `branch` is the result branch
    kept in the workspaces bucket as `result`."""

    artifacts: list[str]
    output: str
    duration_s: float
    tokens: int
    cost_usd: float
    branch: str | None = None
    result: WorkspaceRef | None = None


class RunFailed(RunEvent, tag="RunFailed.v1"):
    """The run stopped: a stage was blocked, or something failed."""

    reason: str
    duration_s: float
    tokens: int
    cost_usd: float


AnyRunEvent = (
    RunStarted
    | RunResumed
    | StageStarted
    | StageProgress
    | DebateTurn
    | StageBlocked
    | ArtifactCreated
    | StageFinished
    | ChecksFinished
    | RepairRequested
    | StageAwaitingApproval
    | DecisionRecorded
    | RunFinished
    | RunFailed
)
RUN_EVENTS: tuple[type[RunEvent], ...] = AnyRunEvent.__args__
#: the events that end a run (until it is resumed)
TERMINAL = (RunFinished, RunFailed)

_run_decoder = msgspec.json.Decoder(AnyRunEvent)


def run_event(data: bytes) -> AnyRunEvent:
    """One run event from its JSON (msgspec.ValidationError when it is none we know)."""
    return _run_decoder.decode(data)


def read_run_event(data: bytes) -> AnyRunEvent | None:
    """One run event, or None (logged) for one this version cannot read."""
    try:
        return _run_decoder.decode(data)
    except msgspec.DecodeError as exc:
        log.warning("skipping a run event this version cannot read: %s", exc)
        return None


def event_type(kind: type[msgspec.Struct]) -> str:
    """The tag of an event type (``RunStarted.v1``)."""
    return str(kind.__struct_config__.tag)


# -- debate events (``tekton.debates.<debate_id>.events``) --------------------------------


class DebateEvent(msgspec.Struct, tag_field="type", kw_only=True, omit_defaults=True):
    """What every debate event carries."""

    debate_id: str = ""
    stage: str = ""
    run_id: str | None = None
    ts: float = 0.0


class DebateStarted(DebateEvent, tag="debate.started.v1"):
    """Rhetor took the debate: who sits where."""

    roles: dict[str, str]
    max_rounds: int
    consensus_free: bool
    prompt: str
    #: the model a seat was asked for, where the request chose one (else the CI's own)
    models: dict[str, str] = {}


class SeatAwaited(DebateEvent, tag="debate.awaiting.v1"):
    """A human seat waits for its person's answer (``tekton answer``, or
    ``tekton.debates.<debate_id>.answer``) until `deadline` (epoch seconds)."""

    role: str
    round: int
    #: what the seat is asked, as a CI in it would be
    ask: str
    #: what the answer is: a debater's position, or the mediator's outcome
    kind: Literal["position", "outcome"]
    deadline: float


class SeatWaiting(DebateEvent, tag="debate.waiting.v1"):
    """A human seat still waits (a sign of life for the stage that asked, every few
    seconds; the run log does not keep it)."""

    role: str
    waited_s: float


class TurnTaken(DebateEvent, tag="debate.turn.v1"):
    """A debater or the mediator answered (or abstained)."""

    turn: TurnRecord


class RoundEnded(DebateEvent, tag="debate.round.v1"):
    """A round's votes and its confidence-weighted accept share."""

    round: int
    accept_share: float
    votes: dict[str, str]


class RepairAsked(DebateEvent, tag="debate.repair.v1"):
    """The mediator's artifact failed validation; it is asked again with the errors."""

    attempt: int
    errors: list[str]


class DebateFinished(DebateEvent, tag="debate.finished.v1"):
    """The outcome (without the transcript, which went turn by turn)."""

    result: DebateResult


class StageRecalled(DebateEvent, tag="stage.recalled.v1"):
    """What memory gave the stage (or why it could not)."""

    note: str
    lessons: list[LessonRef]
    chunks: list[str]


AnyDebateEvent = (
    DebateStarted
    | SeatAwaited
    | SeatWaiting
    | TurnTaken
    | RoundEnded
    | RepairAsked
    | DebateFinished
    | StageRecalled
)
DEBATE_EVENTS: tuple[type[DebateEvent], ...] = AnyDebateEvent.__args__
_debate_decoder = msgspec.json.Decoder(AnyDebateEvent)


def debate_event(data: bytes) -> AnyDebateEvent | None:
    """One debate event, or None (logged) for one this version cannot read."""
    try:
        return _debate_decoder.decode(data)
    except msgspec.DecodeError as exc:
        log.warning("skipping a debate event this version cannot read: %s", exc)
        return None
