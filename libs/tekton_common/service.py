"""A CI process: the `Lifecycle` with a socket port, a registry record (file fallback
until NATS answers) and a heartbeat, and its usage records on their way. SIGTERM or
SIGINT: stop taking requests, finish those in flight, deregister, drain NATS, exit 0.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from nats.aio.client import Client

from tekton_common import __version__, bus
from tekton_common.ci_endpoints import ci_endpoints
from tekton_common.lifecycle import Lifecycle
from tekton_common.micro import EndpointDef
from tekton_common.registry import Registry
from tekton_common.runtime import CIRuntime
from tekton_common.secrets import read_secret
from tekton_common.socket_server import SocketServer
from tekton_common.subjects import ci_group
from tekton_common.tools.mcp_in import ExternalTools
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


class CIService(Lifecycle):
    """Runs one CI: socket port, HTTP port, NATS micro service, registry heartbeat, and
    its usage records on their way."""

    grace = 5.0

    def __init__(self, runtime: CIRuntime, extra: ExtraEndpoints | None = None) -> None:
        super().__init__(
            runtime.ai_id,
            runtime.spec.description,
            runtime.settings,
            runtime.component_port,
            ci_group(runtime.spec.ci_id),
            runtime.metrics,
        )
        self.runtime = runtime
        self.extra = extra
        self.instance = uuid.uuid4().hex[:10]
        self.registry = Registry(self.settings)
        self.socket = SocketServer(
            runtime, self.settings.host, runtime.ci_port, token=read_secret("TEKTON_SOCKET_TOKEN")
        )
        self.usage: UsageOutbox | None = None
        self.registered_at = time.time()
        self.started_at = runtime.started_at
        self._heartbeat_task: asyncio.Task[None] | None = None

    def identity(self) -> dict[str, Any]:
        """The CI and this instance."""
        return {"ci": self.runtime.ai_id, "instance": self.instance}

    def metadata(self) -> dict[str, str]:
        """What `nats micro info` shows of the CI."""
        spec = self.runtime.spec
        return {
            "component": spec.component,
            "ci_port": str(self.runtime.ci_port),
            "component_port": str(self.runtime.component_port),
            "model": self.runtime.model,
            "provider": self.runtime.provider.name,
            "role": spec.role,
            "instance": self.instance,
        }

    def ports(self) -> str:
        """Both ports, for a bind failure's message."""
        return f"{self.name} ports {self.runtime.ci_port}/{self.runtime.component_port}"

    def ready(self) -> bool:
        """Listening and on the bus."""
        return self.runtime.ready and super().ready()

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

    async def open(self) -> None:
        """The socket port."""
        await self.socket.start()

    def started(self) -> None:
        """Ready to serve the socket; heartbeats begin (file fallback until NATS)."""
        self.runtime.ready = True
        log.info(
            "%s listening on %s:%d (socket) and :%d (http)",
            self.name,
            self.settings.host,
            self.runtime.ci_port,
            self.runtime.component_port,
        )
        if self.settings.register_ai:
            self.spawn(self._heartbeat())

    async def connect(self) -> Client:
        """The CI's connection; a reconnect writes the registry record at once."""
        return await bus.connect(
            self.settings, self.name, retry_forever=True, on_reconnect=self._on_reconnect
        )

    async def endpoints(self, nc: Client) -> list[EndpointDef]:
        """The CI's own endpoints and the extension's (Numa's status, Rhetor's debates)."""
        keep = functools.partial(ensure_usage_stream, nc, self.settings.usage_retention_days)
        await bus.patiently(keep, "usage stream")
        self.usage = UsageOutbox(self.runtime.ai_id, self._publish_usage)
        self.runtime.on_usage = self.usage.add
        self.spawn(self.runtime.guard.watch(nc))
        context = ServiceContext(nc, self.runtime, self.spawn)
        extras = self.extra(context) if self.extra else []  # may add tools to the toolbox
        self.runtime.toolbox.nc = nc
        if servers := self.settings.ci_override(self.runtime.spec).mcp:
            external = ExternalTools(self.runtime.ai_id, servers)
            self.runtime.toolbox.external = external
            self.spawn(external.run())
        return ci_endpoints(self.runtime) + self.runtime.toolbox.endpoints() + extras

    async def joined_bus(self, nc: Client) -> None:
        """Registered in the KV registry."""
        if self.settings.register_ai:
            await bus.patiently(functools.partial(self.registry.attach, nc), "registry")
            await self.registry.put(self.record())

    async def _publish_usage(self, subject: str, payload: bytes) -> None:
        if self.nc is not None:
            await self.nc.publish(subject, payload)

    async def _on_reconnect(self) -> None:
        log.info("%s reconnected to NATS", self.name)
        if self.settings.register_ai and self.registry.bucket is not None:
            await self.registry.put(self.record())

    async def _heartbeat(self) -> None:
        while True:
            try:
                await self.registry.put(self.record())
            except OSError as exc:
                log.error("registry write failed: %s", exc)
            await asyncio.sleep(self.settings.heartbeat_interval)

    async def close_ports(self) -> None:
        """The socket port, then the HTTP port."""
        self.runtime.ready = False
        await self.socket.stop()
        await super().close_ports()

    async def closing(self) -> None:
        """Deregistered, and every model call's usage record sent before the drain."""
        if self.settings.register_ai:
            await self.registry.delete(f"{self.runtime.ai_id}.{self.instance}")
        if self.usage is not None:
            await self.usage.flush()
