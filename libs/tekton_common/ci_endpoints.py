"""The NATS endpoints every CI serves: chat, stream, info and the team chat."""

from __future__ import annotations

import msgspec
from nats.micro.request import Request

from tekton_common.errors import ProtocolError
from tekton_common.micro import EndpointDef
from tekton_common.runtime import CIRuntime
from tekton_common.subjects import TEAM_CHAT
from tekton_common.wire import TeamReply, bus_chat_request, encode


def ci_endpoints(runtime: CIRuntime) -> list[EndpointDef]:
    """Endpoint definitions for one CI (group ``tekton.ci.<name>`` plus team chat)."""

    async def chat(request: Request) -> bytes:
        return encode(await runtime.chat(bus_chat_request(request.data)))

    async def stream(request: Request) -> None:
        if not request._msg.reply:
            raise ProtocolError("stream needs a reply subject to send chunks to")
        chat_request = bus_chat_request(request.data)

        async def emit(message: msgspec.Struct) -> None:
            await request.respond(encode(message))

        await runtime.stream(chat_request, emit)

    async def info(_request: Request) -> bytes:
        return encode(runtime.info())

    async def team(request: Request) -> bytes:
        reply = await runtime.chat(bus_chat_request(request.data))
        return encode(
            TeamReply(
                ai_id=reply.ai_id, content=reply.content, model=reply.model, latency=reply.latency
            )
        )

    return [
        EndpointDef("chat", chat),
        EndpointDef("stream", stream),
        EndpointDef("info", info),
        # queue group = CI id, so exactly one replica of every CI answers a broadcast
        EndpointDef("team", team, subject=TEAM_CHAT, queue_group=runtime.ai_id),
    ]
