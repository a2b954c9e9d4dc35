"""The one life every Tekton process leads (a CI, the stages service).

Start: open the ports (HTTP ``/healthz`` ``/readyz`` ``/metrics``, and what a subclass
adds), connect to NATS in the background (retrying forever), add the micro service with
its endpoints, and become ready only once every endpoint is subscribed. SIGTERM or
SIGINT: stop taking requests, finish those in flight (up to a grace), cancel the
background work, close the ports, let the subclass finish (a CI flushes its usage and
deregisters), drain NATS, exit 0. A task that fails (the join included) is logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import time
from collections.abc import Coroutine
from typing import Any

from nats.aio.client import Client
from nats.micro import add_service
from nats.micro.service import Service

from tekton_common import __version__, bus
from tekton_common.contract.codec import encode
from tekton_common.contract.platform import ErrorReported
from tekton_common.http_server import HealthServer, bind_failure
from tekton_common.metrics import Metrics
from tekton_common.micro import Dispatcher, EndpointDef, add_endpoints, log_failure
from tekton_common.settings import Settings
from tekton_common.subjects import ERRORS

log = logging.getLogger(__name__)


class Lifecycle:
    """A named process on NATS with an HTTP health port; subclasses say what it serves
    (`endpoints`) and what else it opens, joins and closes (the hooks)."""

    #: seconds requests in flight may take to finish when the process stops
    grace = 10.0

    def __init__(
        self,
        name: str,
        description: str,
        settings: Settings,
        http_port: int,
        group: str,
        metrics: Metrics,
    ) -> None:
        self.name = name
        self.description = description
        self.settings = settings
        self.group = group
        self.metrics = metrics
        self.dispatcher = Dispatcher(metrics)
        self.http = HealthServer(
            settings.host,
            http_port,
            {"/healthz": self._healthz, "/readyz": self._readyz, "/metrics": self._metrics},
        )
        self.nc: Client | None = None
        self.micro: Service | None = None
        self.started_at = time.time()
        self.joined = False
        self._stop = asyncio.Event()
        self._background: set[asyncio.Task[None]] = set()

    # -- what a subclass says ---------------------------------------------------------------
    def metadata(self) -> dict[str, str]:
        """The micro service's metadata."""
        return {"kind": "service"}

    def identity(self) -> dict[str, Any]:
        """What /healthz and /readyz say the process is."""
        return {"service": self.name}

    def ports(self) -> str:
        """The ports, for a bind failure's message."""
        return f"{self.name} port {self.http.port}"

    async def open(self) -> None:
        """Bind what the process listens on besides its HTTP port."""

    async def connect(self) -> Client:
        """The NATS connection (retried until it succeeds)."""
        return await bus.connect(self.settings, self.name, retry_forever=True)

    async def endpoints(self, nc: Client) -> list[EndpointDef]:
        """The endpoints, built once connected (may start background work)."""
        raise NotImplementedError

    async def joined_bus(self, nc: Client) -> None:
        """After every endpoint is subscribed, before the process says it is ready."""

    async def closing(self) -> None:
        """After the ports are closed, before NATS drains."""

    def ready(self) -> bool:
        """Whether the process can take requests (NATS joined and connected)."""
        return self.joined and self.nc is not None and self.nc.is_connected

    # -- the life ---------------------------------------------------------------------------
    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run background work that stops with the process (a failure is logged)."""
        task = asyncio.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        task.add_done_callback(log_failure)

    def request_stop(self) -> None:
        """Ask the process to shut down gracefully."""
        self._stop.set()

    async def run(self) -> int:
        """Serve until SIGTERM/SIGINT; returns the exit code."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.request_stop)
        try:
            await self.open()
            await self.http.start()
        except OSError as exc:
            log.error("%s", bind_failure(self.ports(), exc))
            return 1
        self.started()
        joining = asyncio.create_task(self._join())
        joining.add_done_callback(log_failure)  # a process that cannot join says why
        await self._stop.wait()
        await self._shutdown(joining)
        return 0

    def started(self) -> None:
        """The ports are open (a subclass logs them)."""

    def _report(self, endpoint: str, error: str) -> None:
        """Publish an unexpected failure on ``tekton.errors`` (Numa keeps the latest)."""
        if self.nc is None or not self.nc.is_connected:
            return
        event = ErrorReported(service=self.name, endpoint=endpoint, error=error, ts=time.time())
        task = asyncio.get_running_loop().create_task(self.nc.publish(ERRORS, encode(event)))
        task.add_done_callback(lambda t: t.cancelled() or t.exception())

    async def _join(self) -> None:
        self.nc = await self.connect()
        self.dispatcher.report = self._report
        definitions = await self.endpoints(self.nc)
        self.micro = await add_service(
            self.nc,
            name=self.name,
            version=__version__,
            description=self.description,
            metadata=self.metadata(),
        )
        await add_endpoints(self.micro, self.group, definitions, self.dispatcher)
        await self.nc.flush()
        await self.joined_bus(self.nc)
        self.joined = True  # ready only once every endpoint is subscribed
        log.info("%s joined NATS at %s", self.name, self.settings.bus_url)

    async def _shutdown(self, joining: asyncio.Task[None]) -> None:
        log.info("%s stopping", self.name)
        joining.cancel()
        if self.micro is not None:
            with contextlib.suppress(Exception):
                await self.micro.stop()
        await self.dispatcher.wait_idle(timeout=self.grace)
        for task in self._background:
            task.cancel()
        await asyncio.gather(joining, *self._background, return_exceptions=True)
        await self.close_ports()
        await self.closing()
        if self.nc is not None:
            await bus.close(self.nc)
        log.info("%s stopped", self.name)

    async def close_ports(self) -> None:
        """Stop listening (the HTTP port, and a subclass's)."""
        await self.http.stop()

    # -- HTTP --------------------------------------------------------------------------------
    def _healthz(self) -> tuple[int, str, str]:
        body = {"status": "ok", **self.identity(), "pid": os.getpid()}
        return 200, "application/json", json.dumps(body) + "\n"

    def _readyz(self) -> tuple[int, str, str]:
        ready = self.ready()
        nats_ok = self.joined and self.nc is not None and self.nc.is_connected
        body = {"ready": ready, **self.identity(), "nats": nats_ok}
        return (200 if ready else 503), "application/json", json.dumps(body) + "\n"

    def _metrics(self) -> tuple[int, str, str]:
        extra = {
            "tekton_uptime_seconds": round(time.time() - self.started_at, 3),
            "tekton_nats_connected": float(bool(self.nc and self.nc.is_connected)),
        }
        return 200, "text/plain; version=0.0.4", self.metrics.render(extra)
