"""Configuration (saved and effective), system checks, usage and the CI roster."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from fastapi import APIRouter, Depends, Query
from nats.aio.client import Client

from tekton_api import deps
from tekton_api.checks import system_checks
from tekton_api.config import ApiConfig, EffectiveConfig, effective, load_config, save_config
from tekton_api.models import SystemChecks
from tekton_common.contract.platform import DAY_PATTERN
from tekton_common.settings import Settings

router = APIRouter(tags=["system"], dependencies=[Depends(deps.authorized)])
Bus = Annotated[Client, Depends(deps.bus)]
Current = Annotated[Settings, Depends(deps.settings)]
Day = Annotated[str | None, Query(pattern=DAY_PATTERN, description="a UTC day, YYYY-MM-DD")]


@router.get("/config", response_model=ApiConfig)
async def get_config(settings: Current) -> ApiConfig:
    """Defaults for runs started here: model, rounds, threshold, seats, consensus-free
    stages."""
    return load_config(settings)


@router.put("/config", response_model=ApiConfig)
async def put_config(config: ApiConfig, settings: Current) -> ApiConfig:
    """Replace the defaults (validated: a known kind of model, 1 to 5 rounds, a threshold
    from 0.5 to 1, seats that name known stages, roles and CIs)."""
    save_config(settings, config)
    return config


@router.get("/config/effective", response_model=EffectiveConfig)
async def effective_config(settings: Current) -> EffectiveConfig:
    """What a run started now gets, stage by stage: each seat's CI and model and whether
    the stage is consensus-free, from the platform's configuration and the defaults."""
    return effective(settings, load_config(settings))


@router.get("/usage/stages")
async def usage_by_stage(
    tekton: deps.Platform, dsn: Annotated[str | None, Depends(deps.history)], day: Day = None
) -> list[dict[str, Any]]:
    """Every stage's tokens, cost, finished count and mean time over every run (or one
    UTC `day`'s), in the pipeline's order: from the run history in PostgreSQL, else
    the event log."""
    totals: list[dict[str, Any]] = msgspec.to_builtins(await tekton.stage_totals(dsn, day))
    return totals


@router.get("/usage")
async def usage(
    tekton: deps.Platform,
    day: Day = None,
) -> dict[str, Any]:
    """Tokens and cost of every run by CI and by model (all time, or one UTC `day`),
    from the Budget CI's ledger (or the usage stream when it is not running)."""
    report: dict[str, Any] = msgspec.to_builtins(await tekton.usage(None, None, day))
    return report


@router.get("/system/checks")
async def checks(
    settings: Current, nc: Bus, dsn: Annotated[str | None, Depends(deps.history)]
) -> SystemChecks:
    """NATS, PostgreSQL and Milvus reachable, model credentials present, git for
    repositories, the state folder writable."""
    return await system_checks(settings, nc, dsn)


@router.get("/cis")
async def cis(tekton: deps.Platform) -> list[dict[str, Any]]:
    """Rhetor's roster: every CI with its health, turns, failures, latency, tokens."""
    entries: list[dict[str, Any]] = msgspec.to_builtins(await tekton.roster())
    return entries
