"""Defaults for runs started through the API, kept in ``$TEKTON_HOME/api-config.json``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from tekton_common.contract.debates import HUMAN
from tekton_common.contract.limits import DEFAULT_ROUNDS, DEFAULT_THRESHOLD, ROUNDS, THRESHOLD
from tekton_common.contract.seats import MAX_SEATS, SEAT_PATTERN, check_seats
from tekton_common.errors import ConfigError
from tekton_common.seating import FREE_SEATS, seating
from tekton_common.settings import Settings
from tekton_common.stages import DIAMOND, Stage

#: what a model may be here: a profile, simulated, the local model, Claude or OpenAI-compatible
MODELS = (
    r"^(simulated|primary|premium|legacy|local|local:[\w.+-]+|claude-[\w.-]+|"
    r"anthropic:[\w.-]+|openai:[\w./:-]+)$"
)
MODELS_HELP = "simulated, primary, premium, legacy, local, local:NAME, claude-…, openai:…"


def _parsed(seats: list[str]) -> list[str]:
    check_seats(seats)  # an unknown CI, role or stage names itself (a 422)
    return seats


#: seats as text, each one checked: its CI, role and stage known
SeatList = Annotated[
    list[Annotated[str, Field(pattern=SEAT_PATTERN, max_length=300)]], AfterValidator(_parsed)
]


class ApiConfig(BaseModel):
    """Model profile, seats and consensus settings (rounds, threshold, consensus-free
    stages) of runs started here; a run's own seats win over these. Nothing here names a
    folder of the server: artifacts stay under the stages service's own root."""

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
    seats: SeatList = Field(
        default_factory=list,
        max_length=MAX_SEATS,
        description="who sits in a seat and on which model, [STAGE:]ROLE=CI[@MODEL] "
        "(a run's own seats come after these, and win)",
    )
    consensus_free: list[Stage] = Field(
        default_factory=list,
        max_length=len(DIAMOND),
        description="stages that take the proponent's draft without a debate "
        "(when a run names none)",
    )


class SeatNow(BaseModel):
    """Who sits a seat of a stage for a run started now, and on which model."""

    role: str
    ci: str
    model: str | None = Field(description="the model its turns go to (None: a person's seat)")
    sits: bool = Field(
        description="whether it takes a turn (a consensus-free stage's "
        "skeptic and pragmatist do not)"
    )


class StageNow(BaseModel):
    """A stage as a run started now would have it."""

    stage: Stage
    consensus_free: bool
    seats: list[SeatNow]


class EffectiveConfig(BaseModel):
    """What a run started here now would use, stage by stage: the saved defaults over
    the platform's configuration (its seats, then these)."""

    model: str | None = Field(
        description="the model every turn is asked on; None: each "
        "seat's own (its seat's, its stage's or its CI's)"
    )
    max_rounds: int
    threshold: float
    stages: list[StageNow]


def effective(settings: Settings, config: ApiConfig) -> EffectiveConfig:
    """The values a run started now gets: the configuration's seats, then the saved
    ones, over each stage's own cast; each seat's model chosen as its CI will choose it
    (the seat's, the run's, the CI's configuration, the stage's profile, its kind's)."""
    stages = []
    for stage in DIAMOND:
        free = stage in config.consensus_free
        seats = [
            SeatNow(
                role=role,
                ci=cast.ci,
                model=None if cast.ci == HUMAN else cast.model,
                sits=not free or role in FREE_SEATS,
            )
            for role, cast in seating(settings, config.seats, stage, config.model).items()
        ]
        stages.append(StageNow(stage=stage, consensus_free=free, seats=seats))  # type: ignore[arg-type]
    return EffectiveConfig(
        model=config.model or settings.model,
        max_rounds=config.max_rounds,
        threshold=config.threshold,
        stages=stages,
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
