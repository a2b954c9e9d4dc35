"""Clients of the CIs: the socket API (`ai_send`, `ai_send_sync`) and the bus client.

`ai_send(ai_id, message, host, port)` keeps the seed's signature: it returns the reply
text and raises RemoteError on an error reply, RequestTimeoutError on timeout and
TransportError when nothing listens.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import msgspec
import nats.errors
from nats.aio.client import Client
from nats.aio.msg import Msg

from tekton_common import spans, telemetry
from tekton_common.catalog import DEFAULT_CI_PORT_BASE, CIId, get_ci
from tekton_common.errors import ProtocolError, RemoteError, RequestTimeoutError, TransportError
from tekton_common.gather import gather
from tekton_common.secrets import read_secret
from tekton_common.subjects import TEAM_CHAT, ci_chat, ci_stream
from tekton_common.wire import MAX_LINE_BYTES, Response, TeamReply, decode_object

ERROR_HEADER = "Nats-Service-Error"
ERROR_CODE_HEADER = "Nats-Service-Error-Code"
STREAM_DONE = frozenset({"stream_end", "stream_error"})


class SocketClient:
    """One connection to a CI port; requests may be pipelined, replies come in order."""

    def __init__(
        self, host: str, port: int, timeout: float = 30.0, token: str | None = None
    ) -> None:
        """`token`: the shared socket token (default: TEKTON_SOCKET_TOKEN, if set)."""
        self.host, self.port, self.timeout = host, port, timeout
        self.token = token or read_secret("TEKTON_SOCKET_TOKEN")
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._lock = asyncio.Lock()

    async def __aenter__(self) -> SocketClient:
        await self.connect()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    async def connect(self) -> None:
        """Open the TCP connection."""
        try:
            self._reader, self._writer = await asyncio.wait_for(
                asyncio.open_connection(self.host, self.port, limit=MAX_LINE_BYTES * 2),
                self.timeout,
            )
        except TimeoutError as exc:
            raise RequestTimeoutError(f"connect to {self.host}:{self.port} timed out") from exc
        except OSError as exc:
            raise TransportError(f"no CI listening on {self.host}:{self.port}: {exc}") from exc

    async def close(self) -> None:
        """Close the connection."""
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(OSError):
                await self._writer.wait_closed()

    async def send(self, request: dict[str, Any]) -> None:
        """Write one request line."""
        if self._writer is None:
            raise TransportError("socket client is not connected")
        if spans.traced() and "traceparent" not in request:  # the socket's trace context
            request = {**request, **telemetry.inject()}
        if self.token and "token" not in request:
            request = {**request, "token": self.token}
        self._writer.write(msgspec.json.encode(request) + b"\n")
        await self._writer.drain()

    async def receive(self) -> dict[str, Any]:
        """Read one reply line; raises on timeout or a closed connection."""
        if self._reader is None:
            raise TransportError("socket client is not connected")
        try:
            line = await asyncio.wait_for(self._reader.readline(), self.timeout)
        except TimeoutError as exc:
            raise RequestTimeoutError(
                f"no reply from {self.host}:{self.port} within {self.timeout}s"
            ) from exc
        except (OSError, ValueError) as exc:
            raise TransportError(f"connection to {self.host}:{self.port} failed: {exc}") from exc
        if not line:
            raise TransportError(f"{self.host}:{self.port} closed the connection")
        return decode_object(line)

    async def request(self, request: dict[str, Any]) -> dict[str, Any]:
        """Send one request and return its reply; an error reply raises RemoteError."""
        async with self._lock:
            await self.send(request)
            reply = await self.receive()
        if reply.get("type") == "error":
            raise RemoteError(f"{reply.get('ai_id', 'CI')}: {reply.get('error')}", 400)
        return reply


def ci_address(ai_id: str, port: int | None, ci_port_base: int = DEFAULT_CI_PORT_BASE) -> int:
    """The CI port to use: the one given, or the catalog's for `ai_id`."""
    return port if port is not None else get_ci(ai_id).ci_port(ci_port_base)


async def ai_send(
    ai_id: str,
    message: str,
    host: str = "127.0.0.1",
    port: int | None = None,
    *,
    timeout: float = 30.0,
    history: list[dict[str, str]] | None = None,
) -> str:
    """Send `message` to a CI over its socket and return the reply text."""
    CIId.from_str(ai_id)  # unknown names fail here, before any connection
    async with SocketClient(host, ci_address(ai_id, port), timeout) as client:
        reply = await client.request({"type": "chat", "content": message, "history": history or []})
    if reply.get("type") != "response":
        raise ProtocolError(f"unexpected reply type {reply.get('type')!r}")
    return str(reply["content"])


def ai_send_sync(
    ai_id: str,
    message: str,
    host: str = "127.0.0.1",
    port: int | None = None,
    *,
    timeout: float = 30.0,
    history: list[dict[str, str]] | None = None,
) -> str:
    """Blocking `ai_send`, for code without an event loop."""
    return asyncio.run(ai_send(ai_id, message, host, port, timeout=timeout, history=history))


def raise_for_error(msg: Msg, who: str) -> None:
    """Turn micro error headers into RemoteError."""
    headers = msg.headers or {}
    if ERROR_CODE_HEADER in headers:
        raise RemoteError(
            f"{who}: {headers.get(ERROR_HEADER, 'error')}", int(headers[ERROR_CODE_HEADER])
        )


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

    async def stream(self, ci: str, message: str, **fields: Any) -> AsyncIterator[dict[str, Any]]:
        """Yield stream_start, stream_chunk… and the final stream_end of a CI's reply."""
        ci_id = CIId.from_str(ci)
        payload = msgspec.json.encode({"content": message, **fields})
        got_any = False
        async for msg in gather(self.nc, ci_stream(ci_id), payload, deadline=self.timeout):
            raise_for_error(msg, str(ci_id))
            got_any = True
            event = decode_object(msg.data)
            yield event
            if event.get("type") in STREAM_DONE:
                if event["type"] == "stream_error":
                    raise RemoteError(f"{ci_id}: {event.get('error')}")
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
            if (msg.headers or {}).get(ERROR_CODE_HEADER):
                continue  # one CI's failure does not end the broadcast
            yield msgspec.json.decode(msg.data, type=TeamReply)
