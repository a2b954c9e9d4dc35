"""NATS micro wiring: endpoints that run concurrently and answer errors with micro headers.

nats-py awaits a subscription's callbacks one at a time, so a slow model call would
serialise a CI's whole endpoint. Each request is therefore handed to its own task, and
the task's outcome (duration, error) is folded back into the endpoint's micro stats so
``$SRV.STATS`` still tells the truth.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from nats.micro.request import Request
from nats.micro.service import Endpoint, Service

from tekton_common import spans
from tekton_common.errors import TektonError
from tekton_common.metrics import Metrics
from tekton_common.secrets import failure

log = logging.getLogger(__name__)
DEFAULT_QUEUE_GROUP = "q"  # nats-py micro's queue group when an endpoint names none

#: returns the reply payload, or None when the handler responded itself (streaming)
Handler = Callable[[Request], Awaitable[bytes | None]]


@dataclass(frozen=True, slots=True)
class EndpointDef:
    """One micro endpoint: in the CI's group unless `subject` is absolute."""

    name: str
    handler: Handler
    subject: str | None = None
    queue_group: str | None = None


def _fold_stats(endpoint: Endpoint | None, elapsed_ns: int, error: str | None) -> None:
    if endpoint is None:
        return
    # private fields of nats-py's Endpoint: the only place Tekton touches them
    endpoint._processing_time += elapsed_ns
    endpoint._average_processing_time = int(
        endpoint._processing_time / max(1, endpoint._num_requests)
    )
    if error is not None:
        endpoint._num_errors += 1
        endpoint._last_error = error  # type: ignore[assignment]


class Dispatcher:
    """Runs endpoint handlers as tasks and keeps track of the ones in flight."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics
        #: told of each request that failed unexpectedly (endpoint, error): the service
        #: publishes it on ``tekton.errors``
        self.report: Callable[[str, str], None] | None = None
        self.inflight: set[asyncio.Task[None]] = set()
        self.accepting = True

    def wrap(
        self, service: Service, definition: EndpointDef
    ) -> Callable[[Request], Awaitable[None]]:
        """The callback nats-py calls for each request of `definition`."""

        found: list[Endpoint] = []

        def endpoint() -> Endpoint | None:
            if not found:  # added after this wrapper is made; looked up once
                found.extend(e for e in service._endpoints if e._name == definition.name)
            return found[0] if found else None

        async def serve(request: Request) -> None:
            started = time.perf_counter_ns()
            error: str | None = None
            group = definition.queue_group or DEFAULT_QUEUE_GROUP
            with spans.process(request.subject, request.headers, group) as current:
                try:
                    if not self.accepting:
                        raise _StoppingError()
                    payload = await definition.handler(request)
                    if payload is not None:
                        await request.respond(payload)
                except TektonError as exc:
                    error = str(exc)
                    await request.respond_error(str(exc.code), error)
                except Exception as exc:  # a bad request must never take the service down
                    error = f"internal error: {failure(exc)}"
                    log.exception("endpoint %s failed", definition.name)
                    await request.respond_error("500", error)
                    if self.report is not None:
                        self.report(definition.name, error)
                finally:
                    elapsed = time.perf_counter_ns() - started
                    _fold_stats(endpoint(), elapsed, error)
                    self.metrics.observe("nats", definition.name, elapsed / 1e9, error is None)
                    if error is not None:
                        spans.fail(current, error)

        async def on_request(request: Request) -> None:
            task = asyncio.create_task(serve(request))
            self.inflight.add(task)
            task.add_done_callback(self.inflight.discard)

        return on_request

    async def wait_idle(self, timeout: float) -> None:
        """Stop taking requests and wait (up to `timeout`) for those in flight."""
        self.accepting = False
        if self.inflight:
            await asyncio.wait(set(self.inflight), timeout=timeout)


class _StoppingError(TektonError):
    code = 503

    def __init__(self) -> None:
        super().__init__("service is stopping")


async def add_endpoints(
    service: Service, group_name: str, definitions: list[EndpointDef], dispatcher: Dispatcher
) -> None:
    """Register `definitions` on `service`, relative ones inside `group_name`."""
    group = service.add_group(name=group_name)
    for definition in definitions:
        callback = dispatcher.wrap(service, definition)
        if definition.subject is None:
            await group.add_endpoint(
                name=definition.name, handler=callback, queue_group=definition.queue_group
            )
        else:
            await service.add_endpoint(
                name=definition.name,
                subject=definition.subject,
                handler=callback,
                queue_group=definition.queue_group,
            )


def log_failure(task: asyncio.Task[None]) -> None:
    """Done callback of a service's own tasks: a failure is logged, never lost."""
    if not task.cancelled() and (exc := task.exception()) is not None:
        log.error("task %s failed: %s", task.get_name(), failure(exc), exc_info=exc)
