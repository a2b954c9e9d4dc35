"""The base of Tekton processes that are not CIs (the stages process, later the API).

A NATS micro service named after the process, HTTP ``/healthz`` ``/readyz``
``/metrics`` on its port, background tasks that stop with it, and a graceful stop on
SIGTERM or SIGINT: stop taking requests, finish those in flight, drain NATS, exit 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from nats.aio.client import Client
from nats.micro import add_service
from nats.micro.service import Service

from tekton_common import __version__, bus
from tekton_common.http_server import HealthServer, bind_failure
from tekton_common.metrics import Metrics
from tekton_common.micro import Dispatcher, EndpointDef, add_endpoints, log_failure
from tekton_common.settings import Settings

log = logging.getLogger(__name__)

Spawn = Callable[[Coroutine[Any, Any, None]], None]
#: builds the endpoints once connected; may start background work through `spawn`
Setup = Callable[[Client, Spawn], Awaitable[list[EndpointDef]]]


class BusService:
    """Runs one named service until stopped."""

    def __init__(
        self,
        name: str,
        description: str,
        settings: Settings,
        http_port: int,
        group: str,
        setup: Setup,
    ) -> None:
        self.name = name
        self.description = description
        self.settings = settings
        self.group = group
        self.setup = setup
        self.metrics = Metrics(name)
        self.dispatcher = Dispatcher(self.metrics)
        self.http = HealthServer(
            settings.host,
            http_port,
            {"/healthz": self._healthz, "/readyz": self._readyz, "/metrics": self._metrics},
        )
        self.nc: Client | None = None
        self.micro: Service | None = None
        self.started_at = time.time()
        self._stop = asyncio.Event()
        self._background: set[asyncio.Task[None]] = set()
        self.joined = False

    def _healthz(self) -> tuple[int, str, str]:
        return (
            200,
            "application/json",
            json.dumps({"status": "ok", "service": self.name, "pid": os.getpid()}) + "\n",
        )

    def _readyz(self) -> tuple[int, str, str]:
        ready = self.joined and self.nc is not None and self.nc.is_connected
        body = json.dumps({"ready": ready, "service": self.name}) + "\n"
        return (200 if ready else 503), "application/json", body

    def _metrics(self) -> tuple[int, str, str]:
        extra = {"tekton_uptime_seconds": round(time.time() - self.started_at, 3)}
        return 200, "text/plain; version=0.0.4", self.metrics.render(extra)

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run background work that stops with the service."""
        task = asyncio.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        task.add_done_callback(log_failure)

    async def run(self) -> int:
        """Serve until SIGTERM/SIGINT; returns the exit code."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stop.set)
        try:
            await self.http.start()
        except OSError as exc:
            log.error("%s", bind_failure(f"{self.name} port {self.http.port}", exc))
            return 1
        joining = asyncio.create_task(self._join())
        joining.add_done_callback(log_failure)  # a service that cannot join says why
        await self._stop.wait()
        joining.cancel()
        log.info("%s stopping", self.name)
        if self.micro is not None:
            with contextlib.suppress(Exception):
                await self.micro.stop()
        await self.dispatcher.wait_idle(timeout=10)
        for task in self._background:
            task.cancel()
        await asyncio.gather(joining, *self._background, return_exceptions=True)
        await self.http.stop()
        if self.nc is not None:
            await bus.close(self.nc)
        log.info("%s stopped", self.name)
        return 0

    async def _join(self) -> None:
        self.nc = await bus.connect(self.settings, self.name, retry_forever=True)
        definitions = await self.setup(self.nc, self.spawn)
        self.micro = await add_service(
            self.nc,
            name=self.name,
            version=__version__,
            description=self.description,
            metadata={"kind": "service"},
        )
        await add_endpoints(self.micro, self.group, definitions, self.dispatcher)
        await self.nc.flush()
        self.joined = True  # ready only once every endpoint is subscribed
        log.info("%s joined NATS at %s", self.name, self.settings.bus_url)
