"""Defaults for runs started through the API, kept in ``$TEKTON_HOME/api-config.json``."""

from __future__ import annotations

from pydantic import BaseModel, Field, ValidationError

from tekton_common.errors import ConfigError
from tekton_common.settings import Settings
from tekton_stages.pipeline import ROUNDS, THRESHOLD

MODELS = r"^(simulated|primary|premium|legacy|claude-[\w.-]+|openai:[\w./:-]+)$"


class ApiConfig(BaseModel):
    """Model profile, consensus settings (rounds, threshold) and where artifacts go."""

    model: str | None = Field(
        default=None,
        max_length=200,
        pattern=MODELS,
        description="simulated, primary, premium, legacy, claude-…, openai:…",
    )
    max_rounds: int = Field(
        default=2, ge=ROUNDS[0], le=ROUNDS[1], description="debate rounds before the mediator"
    )
    threshold: float = Field(
        default=2 / 3,
        ge=THRESHOLD[0],
        le=THRESHOLD[1],
        description="confidence-weighted accept share that ends a debate early",
    )
    output: str | None = Field(
        default=None, max_length=1000, pattern=r"^/", description="artifact folder (absolute)"
    )


def _path(settings: Settings):  # type: ignore[no-untyped-def]
    return settings.home_path / "api-config.json"


def load_config(settings: Settings) -> ApiConfig:
    """The saved defaults (built-in ones when none were saved)."""
    try:
        return ApiConfig.model_validate_json(_path(settings).read_text())
    except FileNotFoundError:
        return ApiConfig()
    except (OSError, ValidationError) as exc:
        raise ConfigError(f"{_path(settings)}: {exc}") from None


def save_config(settings: Settings, config: ApiConfig) -> None:
    """Keep the defaults for later runs."""
    path = _path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(config.model_dump_json(indent=2))
