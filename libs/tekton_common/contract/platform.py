"""The platform's own replies: moderated team chat (``tekton.rhetor.team``), the roster
(``tekton.rhetor.roster``), the usage ledger (``tekton.budget.usage``), retrieval
memory (``tekton.memory.info``), and what the NATS micro protocol answers on
``$SRV.PING|INFO|STATS`` (the fields Tekton reads)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from tekton_common.budget import Limit, Verdict
from tekton_common.contract.ids import ID_PATTERN
from tekton_common.contract.limits import Confidence
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
Day = Annotated[str, msgspec.Meta(pattern=r"^\d{4}-\d{2}-\d{2}$")]


class UsageQuery(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A usage question: one CI, one run, or (neither) every CI; all time, or one UTC
    `day`."""

    ci: CIKey | None = None
    run: CIKey | None = None
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
