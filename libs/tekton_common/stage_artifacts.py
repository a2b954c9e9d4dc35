"""The Diamond pipeline's artifact schemas (pydantic), registered by stage name.

Imported only where artifacts are validated (Rhetor, the stages), never by every CI.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from tekton_common.stages import STAGES

Confidence = Field(ge=0, le=1)
Items = Field(min_length=1)


class Milestone(BaseModel):
    """A step of the plan with the check that proves it done."""

    name: str = Field(min_length=1)
    deliverable: str = Field(min_length=1)
    check: str = Field(min_length=1)


class Plan(BaseModel):
    """plan.json"""

    goals: list[str] = Items
    milestones: list[Milestone] = Items
    acceptance_criteria: list[str] = Items
    risks: list[str]
    confidence: float = Confidence


class Finding(BaseModel):
    """One research finding and where it comes from."""

    topic: str = Field(min_length=1)
    finding: str = Field(min_length=1)
    source: str


class Research(BaseModel):
    """research.json"""

    questions: list[str] = Items
    findings: list[Finding] = Items
    recommendations: list[str] = Items
    open_questions: list[str]
    confidence: float = Confidence


class Task(BaseModel):
    """A backlog item."""

    id: str = Field(min_length=1)
    title: str = Field(min_length=1)
    acceptance: str = Field(min_length=1)
    estimate_hours: float = Field(ge=0)


class Backlog(BaseModel):
    """backlog.json (the plan update)"""

    tasks: list[Task] = Items
    changes_from_plan: list[str]
    risks: list[str]
    confidence: float = Confidence


class CodeChange(BaseModel):
    """diff.patch with its metadata"""

    diff: str = Field(min_length=1, description="a unified diff")
    summary: str = Field(min_length=1)
    files_changed: list[str]
    commands_run: list[str]
    tests_executed: list[str]
    risk_notes: list[str]
    confidence: float = Confidence


class Issue(BaseModel):
    """A review or threat finding."""

    severity: Literal["low", "medium", "high", "critical"]
    description: str = Field(min_length=1)
    recommendation: str = Field(min_length=1)


class Review(BaseModel):
    """review.json"""

    verdict: Literal["approve", "request_changes"]
    issues: list[Issue]
    strengths: list[str]
    confidence: float = Confidence


class Threat(BaseModel):
    """threat.json"""

    assets: list[str] = Items
    threats: list[Issue]
    mitigations: list[str] = Items
    residual_risk: Literal["low", "medium", "high"]
    confidence: float = Confidence


class Integration(BaseModel):
    """integration.json"""

    steps: list[str] = Items
    dependencies: list[str]
    rollback_plan: str = Field(min_length=1)
    confidence: float = Confidence


class TestCase(BaseModel):
    """One test and its outcome."""

    name: str = Field(min_length=1)
    outcome: Literal["passed", "failed", "skipped"]
    notes: str


class MeasuredCheck(BaseModel):
    """A check as it ran in the sandbox (written by the stages, never by the model)."""

    name: str
    command: str
    exit_code: int | None
    duration_s: float
    passed: int | None = None
    failed: int | None = None
    skipped: int | None = None
    commit: str
    output_tail: str = ""
    timed_out: bool = False


class TestReport(BaseModel):
    """test_report.json; with a repository, `checks` is what really ran, on the base and
    on the change (the model's reading of them is the rest)."""

    tests: list[TestCase] = Items
    failures_fixed: list[str]
    coverage_notes: str
    confidence: float = Confidence
    checks: list[MeasuredCheck] = []


class ReleaseReport(BaseModel):
    """release_report.json"""

    version: str = Field(min_length=1)
    summary: str = Field(min_length=1)
    changes: list[str] = Items
    #: with a repository: the checks that really passed on the change, with its commit
    checks_passed: list[str]
    known_issues: list[str]
    rollout: str = Field(min_length=1)
    confidence: float = Confidence


def stage_model(stage: str) -> type[BaseModel]:
    """The artifact model of a stage (named in the stage table)."""
    model: type[BaseModel] = globals()[STAGES[stage].model]
    return model
