"""Pipelines: the Diamond order of stages and the stages a run goes through."""

from __future__ import annotations

from tekton_common.errors import ConfigError
from tekton_common.stages import DIAMOND

__all__ = ["DIAMOND", "select"]


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
