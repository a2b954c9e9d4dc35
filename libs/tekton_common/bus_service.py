"""The base of Tekton processes that are not CIs (the stages service): a `Lifecycle`
whose endpoints come from a setup function, run once connected."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from nats.aio.client import Client

from tekton_common.lifecycle import Lifecycle
from tekton_common.metrics import Metrics
from tekton_common.micro import EndpointDef
from tekton_common.settings import Settings

Spawn = Callable[[Coroutine[Any, Any, None]], None]
#: builds the endpoints once connected; may start background work through `spawn`
Setup = Callable[[Client, Spawn], Awaitable[list[EndpointDef]]]


class BusService(Lifecycle):
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
        super().__init__(name, description, settings, http_port, group, Metrics(name))
        self.setup = setup

    async def endpoints(self, nc: Client) -> list[EndpointDef]:
        """What `setup` builds."""
        return await self.setup(nc, self.spawn)
