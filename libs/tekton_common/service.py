"""The service base every CI process runs on.

Start-up: bind the socket and HTTP ports, write the registry record (file fallback
until NATS answers), connect to NATS in the background (retrying forever), then add
the micro service and become ready. SIGTERM or SIGINT: deregister, stop taking
requests, finish those in flight, drain NATS, exit 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import os
import signal
import socket
import time
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from nats.aio.client import Client
from nats.micro import add_service
from nats.micro.service import Service

from tekton_common import __version__, bus
from tekton_common.ci_endpoints import ci_endpoints
from tekton_common.http_server import HealthServer, bind_failure
from tekton_common.micro import Dispatcher, EndpointDef, add_endpoints, log_failure
from tekton_common.registry import Registry
from tekton_common.runtime import CIRuntime
from tekton_common.secrets import read_secret
from tekton_common.socket_server import SocketServer
from tekton_common.subjects import ci_group
from tekton_common.usage import UsageOutbox, ensure_usage_stream
from tekton_common.wire import RegistryRecord

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServiceContext:
    """What an extension (Numa's status, the Budget CI's ledger) gets to work with."""

    nc: Client
    runtime: CIRuntime
    spawn: Callable[[Coroutine[Any, Any, None]], None]


#: extra endpoints a process adds beside the CI's own (Numa's status, Rhetor's debates)
ExtraEndpoints = Callable[[ServiceContext], list[EndpointDef]]


class CIService:
    """Runs one CI: socket port, HTTP port, NATS micro service, registry heartbeat."""

    def __init__(self, runtime: CIRuntime, extra: ExtraEndpoints | None = None) -> None:
        self.runtime = runtime
        self.settings = runtime.settings
        self.extra = extra
        self.instance = uuid.uuid4().hex[:10]
        self.dispatcher = Dispatcher(runtime.metrics)
        self.registry = Registry(self.settings)
        self.socket = SocketServer(
            runtime, self.settings.host, runtime.ci_port, token=read_secret("TEKTON_SOCKET_TOKEN")
        )
        self.http = HealthServer(
            self.settings.host,
            runtime.component_port,
            {
                "/healthz": self._healthz,
                "/readyz": self._readyz,
                "/metrics": self._metrics,
            },
        )
        self.nc: Client | None = None
        self.micro: Service | None = None
        self.usage: UsageOutbox | None = None
        self.registered_at = time.time()
        self._stop = asyncio.Event()
        self._background: set[asyncio.Task[None]] = set()
        self.joined = False

    def _healthz(self) -> tuple[int, str, str]:
        body = {"status": "ok", "ci": self.runtime.ai_id, "pid": os.getpid()}
        return 200, "application/json", json.dumps(body) + "\n"

    def _readyz(self) -> tuple[int, str, str]:
        # ready only once every endpoint is subscribed, not when the service exists
        nats_ok = self.joined and self.nc is not None and self.nc.is_connected
        ready = self.runtime.ready and nats_ok
        body = {
            "ready": ready,
            "ci": self.runtime.ai_id,
            "nats": nats_ok,
            "instance": self.instance,
        }
        return (200 if ready else 503), "application/json", json.dumps(body) + "\n"

    def _metrics(self) -> tuple[int, str, str]:
        extra = {
            "tekton_uptime_seconds": round(time.time() - self.runtime.started_at, 3),
            "tekton_nats_connected": float(bool(self.nc and self.nc.is_connected)),
        }
        return 200, "text/plain; version=0.0.4", self.runtime.metrics.render(extra)

    def record(self) -> RegistryRecord:
        """This instance's registry record as of now."""
        runtime = self.runtime
        return RegistryRecord(
            ci=runtime.ai_id,
            instance=self.instance,
            component=runtime.spec.component,
            component_port=runtime.component_port,
            ci_port=runtime.ci_port,
            model=runtime.model,
            provider=runtime.provider.name,
            pid=os.getpid(),
            host=socket.gethostname(),
            version=__version__,
            registered_at=self.registered_at,
            last_heartbeat=time.time(),
            last_activity=runtime.last_activity,
        )

    def request_stop(self) -> None:
        """Ask the service to shut down gracefully."""
        self._stop.set()

    async def run(self) -> int:
        """Serve until SIGTERM/SIGINT; returns the process exit code."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.request_stop)
        try:
            await self.socket.start()
            await self.http.start()
        except OSError as exc:
            runtime = self.runtime
            ports = f"{runtime.ai_id} ports {runtime.ci_port}/{runtime.component_port}"
            log.error("%s", bind_failure(ports, exc))
            return 1
        self.runtime.ready = True
        log.info(
            "%s listening on %s:%d (socket) and :%d (http)",
            self.runtime.ai_id,
            self.settings.host,
            self.runtime.ci_port,
            self.runtime.component_port,
        )
        tasks = [asyncio.create_task(self._join_bus())]
        tasks[0].add_done_callback(log_failure)  # a CI that cannot join says why
        if self.settings.register_ai:
            tasks.append(asyncio.create_task(self._heartbeat()))
        await self._stop.wait()
        await self._shutdown(tasks)
        return 0

    async def _join_bus(self) -> None:
        self.nc = await bus.connect(
            self.settings, self.runtime.ai_id, retry_forever=True, on_reconnect=self._on_reconnect
        )
        spec = self.runtime.spec
        self.micro = await add_service(
            self.nc,
            name=self.runtime.ai_id,
            version=__version__,
            description=spec.description,
            metadata={
                "component": spec.component,
                "ci_port": str(self.runtime.ci_port),
                "component_port": str(self.runtime.component_port),
                "model": self.runtime.model,
                "provider": self.runtime.provider.name,
                "role": spec.role,
                "instance": self.instance,
            },
        )
        await bus.patiently(functools.partial(ensure_usage_stream, self.nc), "usage stream")
        self.usage = UsageOutbox(self.runtime.ai_id, self._publish_usage)
        self.runtime.on_usage = self.usage.add
        self.spawn(self.runtime.guard.watch(self.nc))
        context = ServiceContext(self.nc, self.runtime, self.spawn)
        definitions = ci_endpoints(self.runtime) + (self.extra(context) if self.extra else [])
        await add_endpoints(self.micro, ci_group(spec.ci_id), definitions, self.dispatcher)
        await self.nc.flush()
        if self.settings.register_ai:
            await bus.patiently(functools.partial(self.registry.attach, self.nc), "registry")
            await self.registry.put(self.record())
        self.joined = True
        log.info("%s joined NATS at %s", self.runtime.ai_id, self.settings.bus_url)

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run background work that stops with the service."""
        task = asyncio.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _publish_usage(self, subject: str, payload: bytes) -> None:
        if self.nc is not None:
            await self.nc.publish(subject, payload)

    async def _on_reconnect(self) -> None:
        log.info("%s reconnected to NATS", self.runtime.ai_id)
        if self.settings.register_ai and self.registry.bucket is not None:
            await self.registry.put(self.record())

    async def _heartbeat(self) -> None:
        while True:
            try:
                await self.registry.put(self.record())
            except OSError as exc:
                log.error("registry write failed: %s", exc)
            await asyncio.sleep(self.settings.heartbeat_interval)

    async def _shutdown(self, tasks: list[asyncio.Task[None]]) -> None:
        log.info("%s stopping", self.runtime.ai_id)
        self.runtime.ready = False
        for task in [*tasks, *self._background]:
            task.cancel()
        await asyncio.gather(*tasks, *self._background, return_exceptions=True)
        if self.settings.register_ai:
            await self.registry.delete(f"{self.runtime.ai_id}.{self.instance}")
        if self.micro is not None:
            with contextlib.suppress(Exception):
                await self.micro.stop()
        await self.dispatcher.wait_idle(timeout=5)
        await self.socket.stop()
        await self.http.stop()
        if self.usage is not None:  # every model call's record leaves before the drain
            await self.usage.flush()
        if self.nc is not None:
            await bus.close(self.nc)
        log.info("%s stopped", self.runtime.ai_id)
