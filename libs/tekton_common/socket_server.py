"""The CI port: newline-delimited JSON over TCP, replies in request order per connection.

Each connection is an asyncio Protocol: bytes arrive in `data_received`, are split into
lines, and each line is served in its own task, so requests on one connection run
concurrently (up to `max_inflight`; past that, reading pauses). Replies still leave in
request order: the oldest unfinished request writes straight to the socket (a stream
flows chunk by chunk) and later ones hold their messages until it is done.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections import deque
from typing import cast

import msgspec
from opentelemetry.trace import SpanKind

from tekton_common import spans
from tekton_common.errors import LineTooLongError, TektonError, UnauthorizedError
from tekton_common.runtime import CIRuntime
from tekton_common.secrets import failure
from tekton_common.wire import MAX_LINE_BYTES, ErrorReply, decode_object, encode, to_chat_request

log = logging.getLogger(__name__)
TRACE_FIELDS = ("traceparent", "tracestate")  # W3C trace context in a request line
LOOPBACK = ("127.0.0.1", "::1", "localhost")


class LineSplitter:
    """Splits a byte stream into lines; a line over `max_line` becomes one error."""

    def __init__(self, max_line: int = MAX_LINE_BYTES) -> None:
        self.max_line = max_line
        self.buffer = bytearray()
        self.discarding = False

    def feed(self, data: bytes) -> list[bytes | LineTooLongError]:
        """Complete lines (blank ones dropped) and errors for oversized ones, in order."""
        out: list[bytes | LineTooLongError] = []
        self.buffer += data
        while True:
            end = self.buffer.find(b"\n")
            if end < 0:
                if len(self.buffer) > self.max_line:
                    if not self.discarding:
                        out.append(self._too_long())
                    self.discarding = True
                    self.buffer.clear()
                return out
            line = bytes(self.buffer[:end])
            del self.buffer[: end + 1]
            if self.discarding:
                self.discarding = False
            elif len(line) > self.max_line:
                out.append(self._too_long())
            elif line.strip():
                out.append(line)

    def _too_long(self) -> LineTooLongError:
        return LineTooLongError(f"line exceeds {self.max_line} bytes; skipped")


class _Reply:
    """The messages of one request that wait for earlier requests' replies."""

    __slots__ = ("buffered", "done")

    def __init__(self) -> None:
        self.buffered: list[bytes] = []
        self.done = False


class Connection(asyncio.Protocol):
    """One client connection on a CI port."""

    def __init__(self, server: SocketServer) -> None:
        self.server = server
        self.lines = LineSplitter(server.max_line)
        self.pending: deque[_Reply] = deque()
        self.tasks: set[asyncio.Task[None]] = set()
        self.transport: asyncio.Transport | None = None
        self.reading_paused = False
        self.eof = False
        self.writable = asyncio.Event()
        self.writable.set()

    # -- asyncio.Protocol -------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Track the connection."""
        # uvloop's TCP transports do not subclass asyncio.Transport, but behave as one
        self.transport = cast(asyncio.Transport, transport)
        self.server.connections.add(self)
        self.server.runtime.metrics.connection(+1)

    def data_received(self, data: bytes) -> None:
        """Serve every complete line."""
        for item in self.lines.feed(data):
            reply = self._open()
            if isinstance(item, LineTooLongError):
                self.emit(reply, ErrorReply(ai_id=self.server.runtime.ai_id, error=str(item)))
                self.finish(reply)
                continue
            task = asyncio.get_running_loop().create_task(self.server.serve(item, self, reply))
            self.tasks.add(task)
            task.add_done_callback(self._task_done)
        if len(self.tasks) >= self.server.max_inflight and self.transport:
            self.transport.pause_reading()
            self.reading_paused = True

    def eof_received(self) -> bool:
        """The client stopped sending: finish what it asked for, then close."""
        self.eof = True
        if not self.tasks and self.transport:
            self.transport.close()
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        """The client is gone: drop its work."""
        self.server.connections.discard(self)
        self.server.runtime.metrics.connection(-1)
        for task in self.tasks:
            task.cancel()
        self.writable.set()

    def pause_writing(self) -> None:
        """The send buffer is full."""
        self.writable.clear()

    def resume_writing(self) -> None:
        """The send buffer drained."""
        self.writable.set()

    # -- ordered replies ----------------------------------------------------------------
    def _open(self) -> _Reply:
        reply = _Reply()
        self.pending.append(reply)
        return reply

    def emit(self, reply: _Reply, message: msgspec.Struct) -> None:
        """Send (or hold back, while an earlier request is unfinished) one message."""
        data = encode(message) + b"\n"
        if self.pending and self.pending[0] is reply:
            self._write(data)
        else:
            reply.buffered.append(data)

    def finish(self, reply: _Reply) -> None:
        """Mark `reply` complete and release whatever now may go out."""
        reply.done = True
        while self.pending:
            head = self.pending[0]
            if head.buffered:
                self._write(b"".join(head.buffered))
                head.buffered.clear()
            if not head.done:
                return
            self.pending.popleft()

    async def drain(self) -> None:
        """Wait while the client is not reading (backpressure)."""
        await self.writable.wait()

    def close(self) -> None:
        """Close the connection now."""
        if self.transport is not None:
            self.transport.close()

    def _write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        if self.transport is None:
            return
        if self.reading_paused and len(self.tasks) < self.server.max_inflight:
            self.reading_paused = False
            self.transport.resume_reading()
        if self.eof and not self.tasks:
            self.transport.close()


class SocketServer:
    """Serves the socket protocol for one CI."""

    def __init__(
        self,
        runtime: CIRuntime,
        host: str,
        port: int,
        max_inflight: int = 64,
        max_line: int = MAX_LINE_BYTES,
        token: str | None = None,
    ) -> None:
        self.runtime = runtime
        self.token = token
        self.host = host
        self.port = port
        self.max_inflight = max_inflight
        self.max_line = max_line
        self.connections: set[Connection] = set()
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        """Bind the port (shared with replicas through SO_REUSEPORT)."""
        if self.token is None and self.host not in LOOPBACK:
            log.warning(
                "socket port %s is bound on %s without TEKTON_SOCKET_TOKEN: anyone who can "
                "reach it can talk to the CI",
                self.port,
                self.host,
            )
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: Connection(self), self.host, self.port, reuse_port=True
        )

    async def stop(self, grace: float = 2.0) -> None:
        """Stop accepting, give requests in flight `grace` seconds, then close."""
        if self._server is not None:
            self._server.close()
        tasks = {t for c in self.connections for t in c.tasks}
        if tasks:
            await asyncio.wait(tasks, timeout=grace)
        for connection in list(self.connections):
            connection.close()

    async def serve(self, line: bytes, conn: Connection, reply: _Reply) -> None:
        """Answer one request line."""
        runtime = self.runtime
        started = time.perf_counter()
        kind = "chat"
        request_id: str | None = None
        ok = True
        try:
            obj = decode_object(line)
            given = obj.get("token")
            if self.token is not None and not (
                isinstance(given, str) and hmac.compare_digest(given.encode(), self.token.encode())
            ):
                raise UnauthorizedError("this CI requires the shared socket token")
            raw_id = obj.get("request_id")
            request_id = raw_id if isinstance(raw_id, str) else None
            asked = obj.get("type")
            kind = asked if asked in ("ping", "health", "info") else "chat"
            if kind == "ping":
                conn.emit(reply, runtime.pong())
            elif kind == "health":
                conn.emit(reply, runtime.health())
            elif kind == "info":
                conn.emit(reply, runtime.info())
            else:
                request = to_chat_request(obj)
                kind = "stream" if request.stream else "chat"
                carrier = {k: v for k in TRACE_FIELDS if isinstance(v := obj.get(k), str)}
                with spans.entry(
                    f"socket {kind}",
                    lambda: {"network.transport": "tcp", "server.port": self.port},
                    SpanKind.SERVER,
                    carrier,
                    sampled=True,
                ):
                    if request.stream:

                        async def emit(message: msgspec.Struct) -> None:
                            conn.emit(reply, message)
                            await conn.drain()

                        await runtime.stream(request, emit)
                    else:
                        conn.emit(reply, await runtime.chat(request))
        except TektonError as exc:
            ok = False
            if kind != "stream":  # a failed stream already ended with stream_error
                conn.emit(
                    reply, ErrorReply(ai_id=runtime.ai_id, error=str(exc), request_id=request_id)
                )
        except Exception as exc:  # a bad request must never take the CI down
            ok = False
            log.exception("socket request failed")
            if kind != "stream":
                conn.emit(
                    reply,
                    ErrorReply(
                        ai_id=runtime.ai_id,
                        error=f"internal error: {failure(exc)}",
                        request_id=request_id,
                    ),
                )
        finally:
            conn.finish(reply)
            runtime.metrics.observe("socket", kind, time.perf_counter() - started, ok)
        await conn.drain()
