"""Platform status: the registry and live `$SRV.PING` answers, put side by side."""

from __future__ import annotations

import time

import msgspec
from nats.aio.client import Client

from tekton_common.catalog import CATALOG
from tekton_common.gather import gather_all
from tekton_common.registry import is_active, read_registry
from tekton_common.settings import Settings
from tekton_common.subjects import srv


class CIState(msgspec.Struct):
    """What Numa knows of one CI."""

    ci: str
    component: str
    expected: bool
    instances: int
    active: int
    responding: int
    ci_port: int
    component_port: int


class PlatformStatus(msgspec.Struct):
    """Numa's answer on ``tekton.numa.status``."""

    generated_at: float
    healthy: bool
    expected: list[str]
    missing: list[str]
    cis: list[CIState]
    type: str = "platform_status.v1"


async def platform_status(nc: Client, settings: Settings, expected: list[str]) -> PlatformStatus:
    """Gather the registry and ping every micro service on the bus."""
    records = await read_registry(settings, nc)
    pings = await gather_all(nc, srv("PING"), deadline=0.5)
    responding: dict[str, int] = {}
    for msg in pings:
        name = msgspec.json.decode(msg.data).get("name", "")
        responding[name] = responding.get(name, 0) + 1
    now = time.time()
    states = []
    for spec in CATALOG:
        ci = str(spec.ci_id)
        mine = [r for r in records if r.ci == ci]
        states.append(
            CIState(
                ci=ci,
                component=spec.component,
                expected=ci in expected,
                instances=len(mine),
                active=sum(is_active(r, settings, now) for r in mine),
                responding=responding.get(ci, 0),
                ci_port=spec.ci_port(settings.ci_port_base),
                component_port=spec.component_port(settings.port_base),
            )
        )
    missing = [s.ci for s in states if s.expected and s.responding == 0]
    return PlatformStatus(
        generated_at=now, healthy=not missing, expected=expected, missing=missing, cis=states
    )
