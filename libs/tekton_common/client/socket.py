"""The socket protocol's client (a CI's port): `SocketClient`, and `ai_send(ai_id, message,
host, port)` / `ai_send_sync`, which keep the seed's signature: they return the reply text
and raise RemoteError on an error reply, RequestTimeoutError on timeout and
TransportError when nothing listens.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import msgspec

from tekton_common import spans, telemetry
from tekton_common.catalog import DEFAULT_CI_PORT_BASE, CIId, get_ci
from tekton_common.errors import ProtocolError, RemoteError, RequestTimeoutError, TransportError
from tekton_common.secrets import read_secret
from tekton_common.wire import MAX_LINE_BYTES, decode_object


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
