"""Pipelines: the Diamond order of stages, bounds, and what a run is asked to do."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import msgspec

from tekton_common.errors import ConfigError
from tekton_common.stage_artifacts import STAGE_ARTIFACTS
from tekton_common.stages import DIAMOND

__all__ = [
    "DIAMOND",
    "ROUNDS",
    "THRESHOLD",
    "RunRequest",
    "artifact_name",
    "check_request",
    "select",
]


def select(stages: tuple[str, ...] | list[str], start: str | None, end: str | None) -> list[str]:
    """The stages from `start` to `end` inclusive (the whole pipeline when unset)."""
    order = list(stages)
    for name in (start, end):
        if name is not None and name not in order:
            raise ConfigError(f"unknown stage {name!r}; stages: {', '.join(order)}")
    first = order.index(start) if start else 0
    last = order.index(end) if end else len(order) - 1
    if first > last:
        raise ConfigError(f"--from {start} comes after --to {end}")
    return order[first : last + 1]


def artifact_name(stage: str) -> str:
    """File name of a stage's artifact (diff.patch for code, <x>.json otherwise)."""
    return STAGE_ARTIFACTS[stage][0]


ROUNDS = (1, 5)  # debate rounds a run may ask for
THRESHOLD = (0.5, 1.0)  # accept-share thresholds a run may ask for


class RunRequest(msgspec.Struct, frozen=True):
    """``tekton.runs.start``."""

    goal: str
    run_id: str = msgspec.field(default_factory=lambda: uuid.uuid4().hex[:12])
    from_stage: str | None = None
    to_stage: str | None = None
    consensus_free: list[str] = []
    model: str | None = None
    output: str | None = None
    max_rounds: Annotated[int, msgspec.Meta(ge=ROUNDS[0], le=ROUNDS[1])] = 2
    # the confidence-weighted accept share that ends a debate early
    threshold: Annotated[float, msgspec.Meta(ge=THRESHOLD[0], le=THRESHOLD[1])] = 2 / 3
    repo: str | None = None


def check_request(request: dict[str, Any]) -> RunRequest:
    """`request` as a RunRequest, or a ConfigError that names the bad field."""
    try:
        return msgspec.convert(request, RunRequest)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"invalid run request: {exc}") from None
