"""Numa's tools: the platform's live status, the fleet's recent events, and (granted by
name only) a CI's restart, asked of the supervisor on ``tekton.fleet.restart``.

Fleet events are what the supervisor publishes on ``tekton.fleet.events`` (restarts,
crash loops), what every CI publishes of the tool calls it served on
``tekton.tools.events`` (refused and failed calls among them), and every service's
unexpected failures on ``tekton.errors``; Numa keeps the latest from the moment it
starts. Nothing is read from another process's disk.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

import msgspec
import nats.errors
from nats.aio.client import Client
from nats.aio.msg import Msg

from tekton_common.catalog import CIId
from tekton_common.contract.codec import decode, encode
from tekton_common.contract.platform import RestartReply, RestartRequest
from tekton_common.settings import Settings
from tekton_common.subjects import ERRORS, FLEET_EVENTS, FLEET_RESTART, TOOL_EVENTS
from tekton_common.tools.base import Tool
from tekton_numa.status import PlatformStatus, platform_status

#: events kept, newest last
KEEP = 200


class StatusInput(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """No input: the whole platform."""


class FleetEvent(msgspec.Struct, frozen=True):
    """One event on the bus: a process restarted or in a crash loop, a tool call that
    was refused or failed, a request a service failed unexpectedly."""

    subject: str
    kind: str
    about: str
    ts: float
    detail: str = ""


class EventsInput(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Which events."""

    limit: Annotated[int, msgspec.Meta(ge=1, le=KEEP, description="newest events to return")] = 20
    since_s: Annotated[
        float, msgspec.Meta(ge=0, le=7 * 86400, description="only events this many seconds old")
    ] = 3600.0


class FleetEvents(msgspec.Struct, frozen=True):
    """The newest events, newest last, and since when Numa has been listening."""

    events: list[FleetEvent]
    listening_since: float


class EventLog:
    """The latest fleet events, as Numa has seen them."""

    def __init__(self) -> None:
        self.events: collections.deque[FleetEvent] = collections.deque(maxlen=KEEP)
        self.since = time.time()

    async def follow(self, nc: Client) -> None:
        """Keep what arrives on the fleet and tool event subjects."""

        async def on_event(msg: Msg) -> None:
            try:
                data = msgspec.json.decode(msg.data)
            except msgspec.DecodeError:
                return
            if not isinstance(data, dict):
                return
            kind = str(data.get("type", "?"))
            if kind == "tool_called.v1" and data.get("outcome") == "ok":
                return  # successful calls are not news
            about = str(data.get("name") or data.get("tool") or data.get("service") or "?")
            if kind == "error_reported.v1":
                about = f"{about} {data.get('endpoint', '')}"
            detail = str(data.get("error") or data.get("restarts") or "")
            ts = data.get("ts")
            self.events.append(
                FleetEvent(
                    subject=msg.subject,
                    kind=kind,
                    about=about[:200],
                    ts=ts if isinstance(ts, float) else time.time(),
                    detail=detail[:500],
                )
            )

        for subject in (FLEET_EVENTS, TOOL_EVENTS, ERRORS):
            await nc.subscribe(subject, cb=on_event)

    def recent(self, asked: EventsInput) -> FleetEvents:
        """The newest `limit` events of the last `since_s` seconds."""
        cutoff = time.time() - asked.since_s
        fresh = [e for e in self.events if e.ts >= cutoff]
        return FleetEvents(events=fresh[-asked.limit :], listening_since=self.since)


def _status_line(status: PlatformStatus) -> str:
    responding = sum(1 for s in status.cis if s.responding)
    line = f"{responding} of {len(status.cis)} CIs respond"
    if status.missing:
        return f"{line}; down (expected, not responding): {', '.join(status.missing)}"
    return f"{line}; every expected CI is up"


def _events_line(found: FleetEvents) -> str:
    if not found.events:
        return "no restarts, crash loops, failed tool calls or errors since Numa started listening"
    shown = [f"{e.kind} {e.about}" for e in found.events[-5:]]
    return f"{len(found.events)} events, newest: " + "; ".join(shown)


def numa_tools(
    nc: Client,
    settings: Settings,
    expected: list[str],
    spawn: Callable[[Coroutine[Any, Any, None]], None],
) -> list[Tool]:
    """Numa's tools, over the live bus."""
    log = EventLog()
    spawn(log.follow(nc))

    async def status(_asked: StatusInput) -> PlatformStatus:
        return await platform_status(nc, settings, expected)

    async def events(asked: EventsInput) -> FleetEvents:
        return log.recent(asked)

    async def restart(asked: RestartRequest) -> RestartReply:
        ci = str(CIId.from_str(asked.ci))
        try:
            msg = await nc.request(FLEET_RESTART, encode(RestartRequest(ci=ci)), timeout=5)
        except (nats.errors.NoRespondersError, nats.errors.TimeoutError):
            return RestartReply(
                ci,
                False,
                "no supervisor answers on this bus: under docker compose or Kubernetes the "
                "orchestrator's restart policy owns restarts (docker compose restart, "
                "kubectl rollout restart)",
            )
        reply: RestartReply = decode(msg.data, RestartReply)
        return reply

    return [
        Tool(
            ci="numa",
            name="status",
            description="The platform's live status: every CI, how many instances are "
            "registered, active and answering $SRV.PING, and which expected CIs are down.",
            input=StatusInput,
            output=PlatformStatus,
            run=status,
            summary=_status_line,
            keywords=("down", "status", "wrong", "health", "healthy", "platform"),
        ),
        Tool(
            ci="numa",
            name="events",
            description="Recent fleet events: processes the supervisor restarted or gave "
            "up on (crash loops), tool calls that were refused or failed, and requests "
            "services failed unexpectedly (500s).",
            input=EventsInput,
            output=FleetEvents,
            run=events,
            summary=_events_line,
            keywords=("restarted", "crash", "events", "wrong", "errors", "failing"),
        ),
        Tool(
            ci="numa",
            name="restart",
            description="Restart one CI's processes, asked of whatever supervises them "
            "(the embedded supervisor of `tekton up`).",
            input=RestartRequest,
            output=RestartReply,
            run=restart,
            summary=lambda r: r.detail,
            sensitive=True,  # granted by name only ([ci.numa] tools, mcp_tools)
            keywords=("restart",),
        ),
    ]
