"""The platform's own replies: moderated team chat (``tekton.rhetor.team``), the roster
(``tekton.rhetor.roster``), the usage ledger (``tekton.budget.usage``), retrieval
memory (``tekton.memory.info``), and what the NATS micro protocol answers on
``$SRV.PING|INFO|STATS`` (the fields Tekton reads)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from tekton_common.budget import Limit, Verdict
from tekton_common.contract.ids import ID_PATTERN, RunId
from tekton_common.contract.limits import Confidence
from tekton_common.contract.runs import Chunk
from tekton_common.usage import Tally

TeamMode = Literal["pass_through", "directed", "synthesis", "consensus"]
CIKey = Annotated[str, msgspec.Meta(pattern=ID_PATTERN)]


class TeamVote(msgspec.Struct, frozen=True):
    """What a CI's model answers in a consensus exchange (structured output)."""

    vote: Literal["accept", "reject"]
    self_confidence: Confidence
    reason: str


class TeamAnswer(msgspec.Struct, frozen=True, tag_field="type", tag="team.reply"):
    """One CI's reply in a moderated exchange, as it arrives."""

    ai_id: str
    content: str
    model: str
    latency: float
    elapsed_s: float = 0.0


class TeamMiss(msgspec.Struct, frozen=True, tag_field="type", tag="team.error"):
    """A CI named in a directed exchange that did not answer."""

    ai_id: str
    error: str | None


class Ballot(msgspec.Struct, frozen=True):
    """One CI's vote as counted (`abstain` when its reply was not a vote)."""

    vote: Literal["accept", "reject", "abstain"]
    confidence: float


class TeamResult(
    msgspec.Struct, frozen=True, omit_defaults=True, tag_field="type", tag="team.result"
):
    """The last message of an exchange: who answered and, by mode, the tally or the
    synthesis."""

    mode: TeamMode
    answered: list[str]
    votes: dict[str, Ballot] | None = None
    accept_share: float | None = None
    decision: Literal["accept", "reject"] | None = None
    mediator: str | None = None
    synthesis: str | None = None
    error: str | None = None


TeamEvent = TeamAnswer | TeamMiss | TeamResult


class RosterEntry(msgspec.Struct, frozen=True):
    """One CI on Rhetor's roster: instances, health and debate counters."""

    ci: str
    instances: int
    active: int
    healthy: bool
    ping_ms: float | None
    model: str | None
    turns: int
    failures: int
    mean_latency_s: float
    tokens: int


class Roster(msgspec.Struct, frozen=True, tag_field="type", tag="roster.v1"):
    """The reply on ``tekton.rhetor.roster``."""

    cis: list[RosterEntry]


#: a UTC day, ``YYYY-MM-DD``
DAY_PATTERN = r"^\d{4}-\d{2}-\d{2}$"
Day = Annotated[str, msgspec.Meta(pattern=DAY_PATTERN)]


class UsageQuery(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A usage question: one CI, one run, or (neither) every CI; all time, or one UTC
    `day`."""

    ci: CIKey | None = None
    run: RunId | None = None
    day: Day | None = None


class Limits(msgspec.Struct, frozen=True):
    """The ceilings in force for the asked CI and for every run."""

    ci: Limit
    run: Limit


class UsageReport(msgspec.Struct, frozen=True, tag_field="type", tag="budget_usage.v1"):
    """The ledger's answer (`policy`/`limits` None when read from the stream because
    the Budget CI is not running; `source` says so)."""

    total: Tally
    groups: dict[str, Tally]
    by_model: dict[str, Tally]
    verdicts: dict[str, Verdict] = {}
    policy: str | None = None
    limits: Limits | None = None
    source: str = "the Budget CI's ledger"
    #: the UTC day `total` and `groups` cover, or None for all time
    day: str | None = None
    #: the one group asked for (a CI or a run; `total` is still every CI's), or None
    asked: str | None = None


class ErrorReported(msgspec.Struct, frozen=True, tag_field="type", tag="error_reported.v1"):
    """A request a service failed unexpectedly (a 500), published on ``tekton.errors``
    (Numa's `numa_events` shows the latest)."""

    service: str
    endpoint: str
    error: str
    ts: float


class RestartRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A restart of one CI's processes, asked of whatever supervises them
    (``tekton.fleet.restart``; the embedded supervisor answers)."""

    ci: CIKey


class RestartReply(msgspec.Struct, frozen=True):
    """What the supervisor did: `restarting` when it stopped the process to start it
    again, else why not."""

    ci: str
    restarting: bool
    detail: str


class LessonQuery(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Lessons closest to a question (``tekton.memory.search``)."""

    query: Annotated[str, msgspec.Meta(min_length=1, max_length=2000)]
    stage: CIKey | None = None
    limit: Annotated[int, msgspec.Meta(ge=1, le=20)] = 5


class LessonHit(msgspec.Struct, frozen=True):
    """One lesson found, and how close it is (higher is closer)."""

    run_id: str
    stage: str
    status: str
    goal: str
    text: str
    score: float


class LessonHits(msgspec.Struct, frozen=True, tag_field="type", tag="lesson_hits.v1"):
    """The reply to ``tekton.memory.search``."""

    hits: list[LessonHit]


class KeepLesson(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A lesson a CI keeps for later runs (``tekton.memory.keep``)."""

    stage: CIKey
    goal: Annotated[str, msgspec.Meta(min_length=1, max_length=2000)]
    text: Annotated[str, msgspec.Meta(min_length=1, max_length=8000)]


class LessonKept(msgspec.Struct, frozen=True, tag_field="type", tag="lesson_kept.v1"):
    """The reply to ``tekton.memory.keep``: the lesson's key (its run id)."""

    run_id: str
    stage: str


class RepoSearch(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A question for a run's repository (``tekton.workspaces.search``)."""

    run_id: RunId
    query: Annotated[str, msgspec.Meta(min_length=1, max_length=2000)]
    limit: Annotated[int, msgspec.Meta(ge=1, le=20)] = 5


class RepoHits(msgspec.Struct, frozen=True, tag_field="type", tag="repo_hits.v1"):
    """The chunks of the run's repository closest to the question."""

    run_id: str
    chunks: list[Chunk]


class SandboxCommand(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One command in a run's repository, sandboxed (``tekton.sandbox.run``)."""

    run_id: RunId
    command: Annotated[str, msgspec.Meta(min_length=1, max_length=2000)]
    timeout_s: Annotated[float, msgspec.Meta(gt=0, le=600)] = 60.0


class SandboxRan(msgspec.Struct, frozen=True, tag_field="type", tag="sandbox_ran.v1"):
    """What the command did, on which commit of which tree (``result``: the run's change
    applied; ``workspace``: as it came)."""

    run_id: str
    commit: str
    tree: Literal["result", "workspace"]
    command: str
    exit_code: int | None
    output: str
    duration_s: float
    timed_out: bool
    sandbox: str


class MemoryInfo(msgspec.Struct, frozen=True, omit_defaults=True):
    """What the stages service reports of retrieval memory (``tekton.memory.info``)."""

    reachable: bool
    embedder: str | None = None
    embedder_description: str | None = None
    milvus_uri: str | None = None
    lessons: int | None = None
    chunks: int | None = None
    error: str | None = None


class MicroEndpoint(msgspec.Struct, frozen=True, omit_defaults=True):
    """One endpoint in a ``$SRV.INFO`` reply (name, subject, queue group, metadata) or a
    ``$SRV.STATS`` reply (the counters); what a reply leaves out stays left out."""

    name: str
    subject: str | None = None
    queue_group: str | None = None
    metadata: dict[str, str] | None = None
    num_requests: int | None = None
    num_errors: int | None = None
    last_error: str | None = None
    processing_time: int | None = None
    average_processing_time: int | None = None
    data: Any = None


class MicroReply(msgspec.Struct, frozen=True, omit_defaults=True):
    """A service's answer on ``$SRV.PING|INFO|STATS`` (what `nats micro` shows),
    encoded again exactly as the service sent it."""

    name: str
    id: str
    version: str
    type: str
    metadata: dict[str, str] | None = None
    description: str | None = None
    started: str | None = None
    endpoints: list[MicroEndpoint] | None = None
