"""The component port: a minimal HTTP/1.1 server for /healthz, /readyz and /metrics.

Three fixed GET routes do not justify a web framework's import cost in every CI
process (the memory budget is 60 MB), so this reads one request line and headers,
answers, and closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
from collections.abc import Callable
from http import HTTPStatus

Route = Callable[[], tuple[int, str, str]]
MAX_HEAD = 16 * 1024


def bind_failure(what: str, exc: OSError) -> str:
    """Why `what` could not listen, and what to look at when its port is taken."""
    said = f"cannot bind {what}: {exc}"
    if exc.errno == errno.EADDRINUSE:
        said += (
            "; another process holds the port (`ss -tanp` shows which; an outgoing"
            " connection can hold a port of the ephemeral range: docs/reliability.md, Ports)"
        )
    return said


class HealthServer:
    """Serves a fixed set of GET routes; each route returns (status, content type, body)."""

    def __init__(self, host: str, port: int, routes: dict[str, Route]) -> None:
        self.host = host
        self.port = port
        self.routes = routes
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        """Bind the port (shared with replicas through SO_REUSEPORT)."""
        self._server = await asyncio.start_server(
            self._on_connect, self.host, self.port, reuse_port=True
        )

    async def stop(self) -> None:
        """Stop accepting connections."""
        if self._server is not None:
            self._server.close()

    async def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=5)
            method, path = self._parse(head)
            status, ctype, body = self._answer(method, path)
        except (
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
            TimeoutError,
            ConnectionError,
            ValueError,
        ):
            status, ctype, body = 400, "text/plain", "bad request\n"
        payload = body.encode()
        reason = HTTPStatus(status).phrase
        writer.write(
            f"HTTP/1.1 {status} {reason}\r\nContent-Type: {ctype}\r\n"
            f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n".encode()
            + payload
        )
        with contextlib.suppress(ConnectionError, OSError):
            await writer.drain()
            writer.close()
            await writer.wait_closed()

    @staticmethod
    def _parse(head: bytes) -> tuple[str, str]:
        if len(head) > MAX_HEAD:
            raise ValueError("request head too large")
        method, path, _version = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ", 2)
        return method, path.split("?", 1)[0]

    def _answer(self, method: str, path: str) -> tuple[int, str, str]:
        if method not in ("GET", "HEAD"):
            return 405, "text/plain", "method not allowed\n"
        route = self.routes.get(path)
        if route is None:
            return 404, "application/json", json.dumps({"error": f"no route {path}"}) + "\n"
        return route()
