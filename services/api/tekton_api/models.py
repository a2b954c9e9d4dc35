"""Request and reply bodies of the API (the OpenAPI schema is made from these)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from tekton_common.contract.limits import MAX_GOAL, MAX_MODEL
from tekton_common.stages import Stage


class RunCreate(BaseModel):
    """A run to start."""

    goal: str = Field(min_length=1, max_length=MAX_GOAL, description="what the run should achieve")
    repo: str | None = Field(
        default=None, description="a repository folder on the stages service's host"
    )
    from_stage: Stage | None = Field(default=None, description="first stage")
    to_stage: Stage | None = Field(default=None, description="last stage")
    consensus_free: list[Stage] = Field(default_factory=list, max_length=9)
    model: str | None = Field(
        default=None, max_length=MAX_MODEL, description="one model for every turn"
    )


class RunStarted(BaseModel):
    """A started run."""

    run_id: str
    stages: list[str]


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
