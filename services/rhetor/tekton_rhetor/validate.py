"""Reading debaters' and the mediator's JSON, and validating artifacts.

Models are held to their schema at the source (structured outputs), but a reply can
still arrive wrapped in prose or with loose values; positions are repaired where the
intent is clear, and anything else is reported as errors the caller can act on.
"""

from __future__ import annotations

import functools
import json
from typing import Any

import msgspec

from tekton_common.artifacts import artifact_model
from tekton_common.contract.debates import VOTES, Position


def loads_object(text: str) -> tuple[dict[str, Any] | None, bool]:
    """The JSON object in `text`, and whether it had to be cut out of surrounding text."""
    try:
        data = json.loads(text)
        return (data, False) if isinstance(data, dict) else (None, False)
    except ValueError:
        pass
    start, end = text.find("{"), text.rfind("}")
    if 0 <= start < end:
        try:
            data = json.loads(text[start : end + 1])
        except ValueError:
            return None, False
        return (data, True) if isinstance(data, dict) else (None, False)
    return None, False


def parse_position(text: str) -> tuple[Position | None, bool, str | None]:
    """A position from a debater's reply: (position, repaired, error)."""
    data, repaired = loads_object(text)
    if data is None:
        return None, False, "reply is not a JSON object"
    vote = str(data.get("vote", "")).strip().lower()
    if vote not in VOTES:
        return None, repaired, f"vote must be one of {', '.join(VOTES)}, got {vote!r}"
    try:
        confidence = float(data.get("self_confidence", ""))
    except (TypeError, ValueError):
        return None, repaired, "self_confidence must be a number"
    clamped = min(1.0, max(0.0, confidence))
    repaired = repaired or clamped != confidence or vote != data.get("vote")
    text_position = data.get("position")
    if not isinstance(text_position, str) or not text_position.strip():
        return None, repaired, "position must be a non-empty string"
    try:
        position = msgspec.convert(
            {
                "position": text_position,
                "vote": vote,
                "self_confidence": clamped,
                "scores": data.get("scores") or {},
                "risks": data.get("risks") or [],
                "checks": data.get("checks") or [],
                "dissent": data.get("dissent"),
            },
            Position,
            strict=False,
        )
    except msgspec.ValidationError as exc:
        return None, repaired, f"position fields: {exc}"
    return position, repaired, None


@functools.cache  # pydantic builds a model's JSON Schema anew on every call
def _named_schema(name: str) -> dict[str, Any]:
    schema: dict[str, Any] = artifact_model(name).model_json_schema()
    return schema


class ArtifactSchema:
    """A named pydantic model or a JSON Schema; validates and reports errors as text."""

    def __init__(self, spec: str | dict[str, Any]) -> None:
        self.name = spec if isinstance(spec, str) else str(spec.get("title", "custom"))
        self.model = artifact_model(spec) if isinstance(spec, str) else None
        self.json_schema: dict[str, Any] = _named_schema(spec) if isinstance(spec, str) else spec
        self._validator: Any = None

    def errors(self, artifact: Any) -> list[str]:
        """Validation errors of `artifact` (empty when valid)."""
        if self.model is not None:
            from pydantic import ValidationError  # noqa: PLC0415 - Rhetor only

            try:
                self.model.model_validate(artifact)
            except ValidationError as exc:
                return [
                    f"{'.'.join(map(str, e['loc'])) or '(root)'}: {e['msg']}" for e in exc.errors()
                ]
            return []
        if self._validator is None:
            import jsonschema  # noqa: PLC0415 - Rhetor only

            cls = jsonschema.validators.validator_for(self.json_schema)
            cls.check_schema(self.json_schema)
            self._validator = cls(self.json_schema)
        return [
            f"{'.'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}"
            for e in self._validator.iter_errors(artifact)
        ]
