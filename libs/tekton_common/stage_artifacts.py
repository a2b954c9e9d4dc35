"""The Diamond pipeline's artifact schemas (pydantic), registered by stage name.

Imported only where artifacts are validated (Rhetor, the stages), never by every CI.
Every string and list is bounded and no answer may be an empty string: a model held to
the schema as a grammar (llama.cpp) otherwise adds items or words until its token limit
and its JSON never closes, or answers with "" (the local-model issue).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field

from tekton_common.contract.debates import MAX_ITEM, MAX_ITEMS, MAX_POSITION
from tekton_common.stages import STAGES

Confidence = Field(ge=0, le=1)
#: a list item, a paragraph, and a short name
Line = Annotated[str, Field(min_length=1, max_length=MAX_ITEM)]
Text = Annotated[str, Field(min_length=1, max_length=MAX_POSITION)]
Name = Annotated[str, Field(min_length=1, max_length=120)]
Items = Field(min_length=1, max_length=MAX_ITEMS)
Some = Field(max_length=MAX_ITEMS)
#: lists the stages write from what really ran (commands and checks, on base and change)
MEASURED = 41
Ran = Annotated[str, Field(max_length=5000)]


class Milestone(BaseModel):
    """A step of the plan with the check that proves it done."""

    name: Name
    deliverable: Line
    check: Line


class Plan(BaseModel):
    """plan.json"""

    goals: list[Line] = Items
    milestones: list[Milestone] = Items
    acceptance_criteria: list[Line] = Items
    risks: list[Line] = Some
    confidence: float = Confidence


class Finding(BaseModel):
    """One research finding and where it comes from."""

    topic: Name
    finding: Text
    source: Annotated[str, Field(max_length=MAX_ITEM)]


class Research(BaseModel):
    """research.json"""

    questions: list[Line] = Items
    findings: list[Finding] = Items
    recommendations: list[Line] = Items
    open_questions: list[Line] = Some
    confidence: float = Confidence


class Task(BaseModel):
    """A backlog item."""

    id: Annotated[str, Field(min_length=1, max_length=40)]
    title: Line
    acceptance: Line
    estimate_hours: float = Field(ge=0, le=10_000)


class Backlog(BaseModel):
    """backlog.json (the plan update)"""

    tasks: list[Task] = Items
    changes_from_plan: list[Line] = Some
    risks: list[Line] = Some
    confidence: float = Confidence


class CodeChange(BaseModel):
    """diff.patch with its metadata"""

    diff: str = Field(min_length=1, max_length=100_000, description="a unified diff")
    summary: Text
    files_changed: list[Line] = Field(max_length=50)
    commands_run: list[Ran] = Field(max_length=MEASURED)
    tests_executed: list[Ran] = Field(max_length=MEASURED)
    risk_notes: list[Line] = Some
    confidence: float = Confidence


class Issue(BaseModel):
    """A review or threat finding."""

    severity: Literal["low", "medium", "high", "critical"]
    description: Text
    recommendation: Line


class Review(BaseModel):
    """review.json"""

    verdict: Literal["approve", "request_changes"]
    issues: list[Issue] = Some
    strengths: list[Line] = Some
    confidence: float = Confidence


class Threat(BaseModel):
    """threat.json"""

    assets: list[Line] = Items
    threats: list[Issue] = Some
    mitigations: list[Line] = Items
    residual_risk: Literal["low", "medium", "high"]
    confidence: float = Confidence


class Integration(BaseModel):
    """integration.json"""

    steps: list[Line] = Items
    dependencies: list[Line] = Some
    rollback_plan: Text
    confidence: float = Confidence


class TestCase(BaseModel):
    """One test and its outcome."""

    name: Line
    outcome: Literal["passed", "failed", "skipped"]
    notes: Annotated[str, Field(max_length=MAX_POSITION)]


class MeasuredCheck(BaseModel):
    """A check as it ran in the sandbox (written by the stages, never by the model)."""

    name: Ran
    command: Ran
    exit_code: int | None
    duration_s: float
    passed: int | None = None
    failed: int | None = None
    skipped: int | None = None
    commit: Annotated[str, Field(max_length=64)]
    output_tail: Ran = ""
    timed_out: bool = False


class TestReport(BaseModel):
    """test_report.json; with a repository, `checks` is what really ran, on the base and
    on the change (the model's reading of them is the rest)."""

    tests: list[TestCase] = Items
    failures_fixed: list[Line] = Some
    coverage_notes: Annotated[str, Field(max_length=MAX_POSITION)]
    confidence: float = Confidence
    checks: list[MeasuredCheck] = Field(default=[], max_length=MEASURED)


class ReleaseReport(BaseModel):
    """release_report.json"""

    version: Annotated[str, Field(min_length=1, max_length=40)]
    summary: Text
    changes: list[Line] = Items
    #: with a repository: the checks that really passed on the change, with its commit
    checks_passed: list[Ran] = Field(max_length=MEASURED)
    known_issues: list[Line] = Some
    rollout: Text
    confidence: float = Confidence


def stage_model(stage: str) -> type[BaseModel]:
    """The artifact model of a stage (named in the stage table)."""
    model: type[BaseModel] = globals()[STAGES[stage].model]
    return model
