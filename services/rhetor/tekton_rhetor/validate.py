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
from tekton_common.contract.debates import OutcomeReply, Position, PositionReply
from tekton_common.contract.schemas import JsonObject, JsonSchema


def loads_object(text: str) -> tuple[JsonObject | None, bool]:
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


def _field_error(exc: msgspec.ValidationError) -> str:
    """msgspec's message with its JSON path written as a field name."""
    return str(exc).replace("`$.", "`").replace(" - at `$`", "")


def parse_position(text: str) -> tuple[Position | None, bool, str | None]:
    """A position from a debater's reply: (position, repaired, error). What is clear is
    repaired (JSON cut out of prose, the vote's case, a confidence past [0, 1]); the rest
    is held to PositionReply."""
    data, repaired = loads_object(text)
    if data is None:
        return None, False, "reply is not a JSON object"
    vote = data.get("vote")
    if isinstance(vote, str) and vote.strip().lower() != vote:
        data["vote"], repaired = vote.strip().lower(), True
    confidence = data.get("self_confidence")
    if isinstance(confidence, int | float) and not 0 <= confidence <= 1:
        data["self_confidence"], repaired = min(1.0, max(0.0, float(confidence))), True
    try:
        reply = msgspec.convert(data, PositionReply)
    except msgspec.ValidationError as exc:
        return None, repaired, _field_error(exc)
    position = Position(
        position=reply.position,
        vote=reply.vote,
        self_confidence=reply.self_confidence,
        scores=msgspec.structs.asdict(reply.scores),
        risks=reply.risks,
        checks=reply.checks,
        dissent=reply.dissent,
    )
    return position, repaired, None


def parse_outcome(outcome: JsonObject) -> tuple[OutcomeReply | None, list[str]]:
    """A mediator's outcome held to OutcomeReply (its artifact is checked by the
    stage's schema): the reply, or what is wrong with it."""
    try:
        return msgspec.convert(outcome, OutcomeReply), []
    except msgspec.ValidationError as exc:
        return None, [_field_error(exc)]


@functools.cache  # pydantic builds a model's JSON Schema anew on every call
def _named_schema(name: str) -> JsonSchema:
    schema: JsonSchema = artifact_model(name).model_json_schema()
    return schema


class ArtifactSchema:
    """A named pydantic model or a JSON Schema; validates and reports errors as text."""

    def __init__(self, spec: str | JsonSchema) -> None:
        self.name = spec if isinstance(spec, str) else str(spec.get("title", "custom"))
        self.model = artifact_model(spec) if isinstance(spec, str) else None
        self.json_schema: JsonSchema = _named_schema(spec) if isinstance(spec, str) else spec
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
