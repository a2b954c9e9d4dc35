"""The roster: CIs Rhetor can use, their health, and what debates have seen of them."""

from __future__ import annotations

import asyncio
import time

import msgspec
import nats.errors
from nats.aio.client import Client

from tekton_common.contract.platform import RosterEntry
from tekton_common.gather import gather_all
from tekton_common.registry import is_active, read_registry
from tekton_common.settings import Settings
from tekton_common.subjects import srv
from tekton_rhetor.calls import CallStats

PING_TIMEOUT = 2.0
HEALTH_TTL = 5.0


class RosterKeeper:
    """Builds roster snapshots; pings are cached for a few seconds."""

    def __init__(self, nc: Client, settings: Settings, stats: CallStats) -> None:
        self.nc = nc
        self.settings = settings
        self.stats = stats
        self._health: dict[str, tuple[float, float | None]] = {}

    async def _ping(self, ci: str) -> float | None:
        cached = self._health.get(ci)
        if cached and time.monotonic() - cached[0] < HEALTH_TTL:
            return cached[1]
        started = time.perf_counter()
        try:
            await self.nc.request(srv("PING", ci), b"", timeout=PING_TIMEOUT)
            ping: float | None = round((time.perf_counter() - started) * 1000, 3)
        except (nats.errors.NoRespondersError, nats.errors.TimeoutError):
            ping = None
        self._health[ci] = (time.monotonic(), ping)
        return ping

    async def snapshot(self) -> list[RosterEntry]:
        """Every CI in the registry or answering on the bus, with health and counters."""
        records = await read_registry(self.settings, self.nc)
        on_bus = {
            msgspec.json.decode(m.data).get("name")
            for m in await gather_all(self.nc, srv("PING"), deadline=0.3)
        }
        cis = sorted({r.ci for r in records} | {n for n in on_bus if n})
        pings = await asyncio.gather(*(self._ping(ci) for ci in cis))
        entries = []
        for ci, ping in zip(cis, pings, strict=True):
            mine = [r for r in records if r.ci == ci]
            counters = self.stats.by_ci.get(ci)
            entries.append(
                RosterEntry(
                    ci=ci,
                    instances=len(mine),
                    active=sum(is_active(r, self.settings) for r in mine),
                    healthy=ping is not None,
                    ping_ms=ping,
                    model=mine[0].model if mine else None,
                    turns=counters.turns if counters else 0,
                    failures=counters.failures if counters else 0,
                    mean_latency_s=round(counters.mean_latency, 4) if counters else 0.0,
                    tokens=counters.tokens if counters else 0,
                )
            )
        return entries
