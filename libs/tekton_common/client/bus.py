"""Talking to CIs over NATS (`BusClient`: chat, streamed chat, team chat) and the one
reader of micro error headers (`error_of`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import msgspec
import nats.errors
from nats.aio.client import Client
from nats.aio.msg import Msg

from tekton_common.catalog import CIId
from tekton_common.errors import RemoteError, RequestTimeoutError, TransportError
from tekton_common.gather import gather
from tekton_common.subjects import TEAM_CHAT, ci_chat, ci_stream
from tekton_common.wire import (
    Response,
    StreamChunk,
    StreamEnd,
    StreamError,
    StreamStart,
    TeamReply,
)

ERROR_HEADER = "Nats-Service-Error"
ERROR_CODE_HEADER = "Nats-Service-Error-Code"
#: what a CI streams: the start, each piece, then the end (or an error)
StreamEvent = StreamStart | StreamChunk | StreamEnd
_stream_event = msgspec.json.Decoder(StreamStart | StreamChunk | StreamEnd | StreamError)


def error_of(msg: Msg, who: str | None = None) -> RemoteError | None:
    """The error a micro endpoint answered with (its headers ``Nats-Service-Error`` and
    ``Nats-Service-Error-Code``), as a RemoteError with that code; None for a reply.
    The one place those headers are read."""
    headers = msg.headers or {}
    if ERROR_CODE_HEADER not in headers:
        return None
    code = headers[ERROR_CODE_HEADER]
    said = headers.get(ERROR_HEADER) or "error"
    return RemoteError(f"{who}: {said}" if who else said, int(code) if code.isdigit() else 500)


def raise_for_error(msg: Msg, who: str) -> None:
    """Raise the error a micro endpoint answered with, if it did."""
    if (error := error_of(msg, who)) is not None:
        raise error


class BusClient:
    """Talks to CIs over NATS: chat, streamed chat and team chat."""

    def __init__(self, nc: Client, timeout: float = 60.0) -> None:
        self.nc = nc
        self.timeout = timeout

    async def request(self, subject: str, payload: bytes, who: str) -> Msg:
        """One request/reply with Tekton's error mapping."""
        try:
            msg = await self.nc.request(subject, payload, timeout=self.timeout)
        except nats.errors.NoRespondersError as exc:
            raise TransportError(f"{who} is not running (no responders on {subject})") from exc
        except nats.errors.TimeoutError as exc:
            raise RequestTimeoutError(f"{who} did not answer within {self.timeout}s") from exc
        raise_for_error(msg, who)
        return msg

    async def chat(self, ci: str, message: str, **fields: Any) -> Response:
        """Ask one CI and wait for its reply."""
        ci_id = CIId.from_str(ci)
        payload = msgspec.json.encode({"content": message, **fields})
        msg = await self.request(ci_chat(ci_id), payload, str(ci_id))
        return msgspec.json.decode(msg.data, type=Response)

    async def stream(self, ci: str, message: str, **fields: Any) -> AsyncIterator[StreamEvent]:
        """Yield StreamStart, StreamChunk… and the final StreamEnd of a CI's reply
        (RemoteError for a StreamError)."""
        ci_id = CIId.from_str(ci)
        payload = msgspec.json.encode({"content": message, **fields})
        got_any = False
        async for msg in gather(self.nc, ci_stream(ci_id), payload, deadline=self.timeout):
            raise_for_error(msg, str(ci_id))
            got_any = True
            event = _stream_event.decode(msg.data)
            if isinstance(event, StreamError):
                raise RemoteError(f"{ci_id}: {event.error}")
            yield event
            if isinstance(event, StreamEnd):
                return
        if not got_any:
            raise RequestTimeoutError(f"{ci_id} did not answer within {self.timeout}s")
        raise RequestTimeoutError(f"{ci_id} stream did not finish within {self.timeout}s")

    async def team(
        self, message: str, *, deadline: float = 10.0, expected: int | None = None
    ) -> AsyncIterator[TeamReply]:
        """Broadcast to every CI; yield each reply as it arrives, until the deadline."""
        payload = msgspec.json.encode({"content": message})
        async for msg in gather(self.nc, TEAM_CHAT, payload, deadline=deadline, expected=expected):
            if error_of(msg) is not None:
                continue  # one CI's failure does not end the broadcast
            yield msgspec.json.decode(msg.data, type=TeamReply)
