"""Configuration, system checks and the CI roster."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from fastapi import APIRouter, Depends
from nats.aio.client import Client

from tekton_api import deps
from tekton_api.checks import system_checks
from tekton_api.config import ApiConfig, load_config, save_config
from tekton_api.models import SystemChecks
from tekton_common.client import Tekton
from tekton_common.settings import Settings

router = APIRouter(tags=["system"], dependencies=[Depends(deps.authorized)])
Bus = Annotated[Client, Depends(deps.bus)]
Current = Annotated[Settings, Depends(deps.settings)]


@router.get("/config", response_model=ApiConfig)
async def get_config(settings: Current) -> ApiConfig:
    """Defaults for runs started here: model profile, rounds, artifact folder."""
    return load_config(settings)


@router.put("/config", response_model=ApiConfig)
async def put_config(config: ApiConfig, settings: Current) -> ApiConfig:
    """Replace the defaults (validated: a known model profile, 1 to 5 rounds, an absolute
    artifact folder)."""
    save_config(settings, config)
    return config


@router.get("/system/checks")
async def checks(
    settings: Current, nc: Bus, dsn: Annotated[str | None, Depends(deps.history)]
) -> SystemChecks:
    """NATS, PostgreSQL and Milvus reachable, model credentials present, git for
    repositories, the state folder writable."""
    return await system_checks(settings, nc, dsn)


@router.get("/cis")
async def cis(nc: Bus) -> list[dict[str, Any]]:
    """Rhetor's roster: every CI with its health, turns, failures, latency, tokens."""
    entries: list[dict[str, Any]] = msgspec.to_builtins(await Tekton(nc).roster())
    return entries
