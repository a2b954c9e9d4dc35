"""Rhetor's process: the rhetor CI plus debates, the roster and moderated team chat."""

from __future__ import annotations

import sys
from collections.abc import Sequence

import msgspec
from nats.micro.request import Request

from tekton_common import spans
from tekton_common.contract.codec import decode
from tekton_common.contract.debates import DebateRequest, TeamRequest
from tekton_common.contract.events import DebateEvent
from tekton_common.contract.platform import Roster, TeamEvent
from tekton_common.micro import EndpointDef
from tekton_common.process import run_ci
from tekton_common.service import ServiceContext
from tekton_common.subjects import RHETOR_DEBATE, RHETOR_ROSTER, RHETOR_TEAM, debate_events
from tekton_rhetor.calls import CallStats, asker
from tekton_rhetor.debate import Debate
from tekton_rhetor.humans import HumanSeats
from tekton_rhetor.roster import RosterKeeper
from tekton_rhetor.team import moderate
from tekton_rhetor.tools import rhetor_tools


def rhetor_extension(context: ServiceContext) -> list[EndpointDef]:
    """Rhetor's endpoints beside its CI endpoints."""
    nc, settings = context.nc, context.runtime.settings
    stats = CallStats()
    call = asker(nc, stats)
    roster = RosterKeeper(nc, settings, stats)
    context.runtime.toolbox.add(*rhetor_tools(nc, roster))

    async def debate(request: Request) -> bytes:
        ask = decode(request.data, DebateRequest)
        subject = debate_events(ask.debate_id)

        async def publish(event: DebateEvent) -> None:
            with spans.quiet_hops():
                await nc.publish(subject, msgspec.json.encode(event))

        # a seat's wait ends in time for the stage that asked (its stage_timeout)
        within = max(settings.stage_timeout - 60.0, 1.0)
        humans = HumanSeats(nc, ask.debate_id, settings.human_seat_timeout, within=within)
        result = await Debate(
            ask, call, context.runtime.guard, settings.debate_turn_timeout, publish, humans
        ).run()
        return msgspec.json.encode(result)

    async def team(request: Request) -> None:
        ask = decode(request.data, TeamRequest)

        async def emit(message: TeamEvent) -> None:
            await request.respond(msgspec.json.encode(message))

        await moderate(nc, ask, stats, emit)

    async def roster_endpoint(_request: Request) -> bytes:
        return msgspec.json.encode(Roster(cis=await roster.snapshot()))

    return [
        EndpointDef("debate", debate, subject=RHETOR_DEBATE),
        EndpointDef("team_chat", team, subject=RHETOR_TEAM),
        EndpointDef("roster", roster_endpoint, subject=RHETOR_ROSTER),
    ]


def main(argv: Sequence[str] | None = None) -> int:
    """Run Rhetor."""
    return run_ci(argv, "tekton_rhetor", fixed_ci="rhetor", extra=rhetor_extension)


if __name__ == "__main__":
    sys.exit(main())
