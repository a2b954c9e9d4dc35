"""Defaults for runs started through the API, kept in ``$TEKTON_HOME/api-config.json``."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tekton_common.contract.limits import DEFAULT_ROUNDS, DEFAULT_THRESHOLD, ROUNDS, THRESHOLD
from tekton_common.errors import ConfigError
from tekton_common.settings import Settings

#: what a model may be here: a profile, simulated, the local model, Claude or OpenAI-compatible
MODELS = (
    r"^(simulated|primary|premium|legacy|local|local:[\w.+-]+|claude-[\w.-]+|"
    r"anthropic:[\w.-]+|openai:[\w./:-]+)$"
)
MODELS_HELP = "simulated, primary, premium, legacy, local, local:NAME, claude-…, openai:…"


class ApiConfig(BaseModel):
    """Model profile and consensus settings (rounds, threshold) of runs started here.
    Nothing here names a folder of the server: artifacts stay under the stages
    service's own root."""

    # strict: `true` is not a threshold, nor `"2"` a number of rounds
    model_config = ConfigDict(extra="forbid", strict=True)

    model: str | None = Field(
        default=None,
        max_length=200,
        pattern=MODELS,
        description=MODELS_HELP,
    )
    max_rounds: int = Field(
        default=DEFAULT_ROUNDS,
        ge=ROUNDS[0],
        le=ROUNDS[1],
        description="debate rounds before the mediator",
    )
    threshold: float = Field(
        default=DEFAULT_THRESHOLD,
        ge=THRESHOLD[0],
        le=THRESHOLD[1],
        description="confidence-weighted accept share that ends a debate early",
    )


def _path(settings: Settings) -> Path:
    return settings.home_path / "api-config.json"


def load_config(settings: Settings) -> ApiConfig:
    """The saved defaults (built-in ones when none were saved); keys an older version
    saved (``output``) are let go."""
    try:
        saved = json.loads(_path(settings).read_text())
        if not isinstance(saved, dict):
            raise ValueError("not a JSON object")
        return ApiConfig.model_validate(
            {k: v for k, v in saved.items() if k in ApiConfig.model_fields}
        )
    except FileNotFoundError:
        return ApiConfig()
    except (OSError, ValueError, ValidationError) as exc:
        raise ConfigError(f"{_path(settings)}: {exc}") from None


def save_config(settings: Settings, config: ApiConfig) -> None:
    """Keep the defaults for later runs."""
    path = _path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(config.model_dump_json(indent=2))
