"""The stages of the Diamond pipeline: one table, in order.

Each stage has its artifact's file name and model (the name of a pydantic model in
`tekton_common.stage_artifacts`, imported only where artifacts are validated), what its
debate is asked to do, and the CIs that sit its seats by default (proponent, skeptic,
pragmatist, mediator). Nothing else lists the stages.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

from tekton_common.errors import ConfigError

#: a stage name, as a type (messages and API schemas take their names from it)
Stage = Literal[
    "plan",
    "research",
    "plan_update",
    "code",
    "review",
    "threat",
    "integrate",
    "test_debug",
    "release",
]

Seats = tuple[str, str, str, str]  # proponent, skeptic, pragmatist, mediator


@dataclass(frozen=True, slots=True)
class StageSpec:
    """Everything one stage is."""

    name: str
    artifact: str
    model: str
    focus: str
    roles: Seats


STAGES: dict[str, StageSpec] = {
    spec.name: spec
    for spec in (
        StageSpec(
            "plan",
            "plan.json",
            "Plan",
            "Plan the work: goals, milestones with checks, acceptance criteria, risks.",
            ("prometheus", "athena", "metis", "apollo"),
        ),
        StageSpec(
            "research",
            "research.json",
            "Research",
            "Research what the plan depends on: questions, findings with sources, "
            "recommendations, open questions.",
            ("athena", "nous", "sophia", "apollo"),
        ),
        StageSpec(
            "plan_update",
            "backlog.json",
            "Backlog",
            "Turn the plan and research into an ordered backlog of small tasks.",
            ("metis", "telos", "harmonia", "apollo"),
        ),
        StageSpec(
            "code",
            "diff.patch",
            "CodeChange",
            "Write the change as a unified diff, with the commands run, the tests "
            "executed and the risks.",
            ("synthesis", "ergon", "hephaestus", "apollo"),
        ),
        StageSpec(
            "review",
            "review.json",
            "Review",
            "Review the change: verdict, issues by severity, strengths.",
            ("athena", "sophia", "synthesis", "apollo"),
        ),
        StageSpec(
            "threat",
            "threat.json",
            "Threat",
            "Model the threats to the change: assets, threats, mitigations, residual risk.",
            ("nous", "athena", "terma", "apollo"),
        ),
        StageSpec(
            "integrate",
            "integration.json",
            "Integration",
            "Plan how the change is integrated: steps, dependencies, rollback.",
            ("harmonia", "synthesis", "ergon", "apollo"),
        ),
        StageSpec(
            "test_debug",
            "test_report.json",
            "TestReport",
            "Test the change and report: tests and outcomes, failures fixed.",
            ("ergon", "sophia", "synthesis", "apollo"),
        ),
        StageSpec(
            "release",
            "release_report.json",
            "ReleaseReport",
            "Prepare the release: version, summary, changes, checks passed, rollout.",
            ("telos", "budget", "harmonia", "apollo"),
        ),
    )
}
#: the seats of a debate that belongs to no stage
GENERAL_ROLES: Seats = ("prometheus", "athena", "metis", "apollo")

DIAMOND: tuple[str, ...] = get_args(Stage)
if tuple(STAGES) != DIAMOND:  # the type and the table must name the same stages, in order
    raise RuntimeError(f"stage table {tuple(STAGES)} differs from the Stage type {DIAMOND}")


def roles_of(stage: str) -> Seats:
    """The default seats of a stage's debate (or a debate of no stage)."""
    spec = STAGES.get(stage)
    return spec.roles if spec else GENERAL_ROLES


def select(start: str | None, end: str | None) -> list[str]:
    """The stages from `start` to `end` inclusive (the whole pipeline when unset)."""
    order = list(DIAMOND)
    for name in (start, end):
        if name is not None and name not in order:
            raise ConfigError(f"unknown stage {name!r}; stages: {', '.join(order)}")
    first = order.index(start) if start else 0
    last = order.index(end) if end else len(order) - 1
    if first > last:
        raise ConfigError(f"--from {start} comes after --to {end}")
    return order[first : last + 1]
