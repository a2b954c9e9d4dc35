"""Artifact schemas known by name (pydantic models), for debates and stages.

A debate may name one of these instead of sending a JSON Schema: ``decision`` (a
generic reconciled decision) and one per Diamond stage (``tekton_common.stage_artifacts``).
pydantic is imported only by the processes
that validate artifacts (Rhetor, the stages), never by every CI.
"""

from __future__ import annotations

from typing import Any

from tekton_common.errors import UnknownSchemaError
from tekton_common.stages import DIAMOND


def _decision() -> Any:
    from pydantic import BaseModel, Field  # noqa: PLC0415 - see the module docstring

    from tekton_common.stage_artifacts import Items, Line, Text  # noqa: PLC0415

    class Decision(BaseModel):
        """A reconciled decision: what to do, why, and how to check it."""

        summary: Text
        decision: Text
        rationale: Text
        actions: list[Line] = Items
        confidence: float = Field(ge=0, le=1)

    return Decision


def _stage(stage: str) -> Any:
    def factory() -> Any:
        from tekton_common.stage_artifacts import stage_model  # noqa: PLC0415

        return stage_model(stage)

    return factory


_FACTORIES = {"decision": _decision, **{stage: _stage(stage) for stage in DIAMOND}}
_CACHE: dict[str, Any] = {}


def artifact_model(name: str) -> Any:
    """The pydantic model registered under `name`."""
    if name not in _FACTORIES:
        raise UnknownSchemaError(
            f"unknown artifact schema {name!r}; known: {', '.join(sorted(_FACTORIES))}"
        )
    if name not in _CACHE:
        _CACHE[name] = _FACTORIES[name]()
    return _CACHE[name]
