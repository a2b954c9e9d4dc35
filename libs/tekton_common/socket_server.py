"""The CI port: newline-delimited JSON over TCP, replies in request order per connection.

Requests on one connection are served concurrently (up to `max_inflight`) but their
replies are written in the order the requests arrived: each request owns a queue of
outgoing messages, and one writer drains those queues in arrival order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator

import msgspec

from tekton_common.errors import LineTooLongError, ProtocolError, TektonError
from tekton_common.runtime import CIRuntime
from tekton_common.wire import MAX_LINE_BYTES, ErrorReply, decode_object, encode, to_chat_request

log = logging.getLogger(__name__)
READ_CHUNK = 64 * 1024
Outbox = asyncio.Queue[msgspec.Struct | None]


async def read_lines(
    reader: asyncio.StreamReader, max_line: int = MAX_LINE_BYTES
) -> AsyncIterator[bytes | LineTooLongError]:
    """Yield complete lines; a line over `max_line` yields one error and is skipped."""
    buffer = bytearray()
    discarding = False
    while True:
        try:
            chunk = await reader.read(READ_CHUNK)
        except (ConnectionError, OSError):
            return
        if not chunk:
            return
        buffer += chunk
        while True:
            end = buffer.find(b"\n")
            if end < 0:
                if len(buffer) > max_line and not discarding:
                    discarding = True
                    yield LineTooLongError(f"line exceeds {max_line} bytes; skipped")
                if discarding:
                    buffer.clear()
                break
            line = bytes(buffer[:end])
            del buffer[: end + 1]
            if discarding:
                discarding = False
                continue
            if len(line) > max_line:
                yield LineTooLongError(f"line exceeds {max_line} bytes; skipped")
            elif line.strip():
                yield line


class SocketServer:
    """Serves the socket protocol for one CI."""

    def __init__(self, runtime: CIRuntime, host: str, port: int, max_inflight: int = 64) -> None:
        self.runtime = runtime
        self.host = host
        self.port = port
        self.max_inflight = max_inflight
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Bind the port (shared with replicas through SO_REUSEPORT)."""
        self._server = await asyncio.start_server(
            self._on_connect, self.host, self.port, reuse_port=True
        )

    async def stop(self, grace: float = 2.0) -> None:
        """Stop accepting, give open connections `grace` seconds, then close them."""
        if self._server is not None:
            self._server.close()
        if self._connections:
            _, pending = await asyncio.wait(self._connections, timeout=grace)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    async def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        self.runtime.metrics.connections += 1
        try:
            await self._serve_connection(reader, writer)
        finally:
            self.runtime.metrics.connections -= 1
            self._connections.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()

    async def _serve_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        order: asyncio.Queue[Outbox | None] = asyncio.Queue()
        slots = asyncio.Semaphore(self.max_inflight)
        writer_task = asyncio.create_task(self._write_in_order(order, writer))
        workers: set[asyncio.Task[None]] = set()
        try:
            async for item in read_lines(reader):
                outbox: Outbox = asyncio.Queue()
                order.put_nowait(outbox)
                if isinstance(item, LineTooLongError):
                    outbox.put_nowait(ErrorReply(ai_id=self.runtime.ai_id, error=str(item)))
                    outbox.put_nowait(None)
                    continue
                await slots.acquire()
                worker = asyncio.create_task(self._serve_line(item, outbox))
                workers.add(worker)
                worker.add_done_callback(workers.discard)
                worker.add_done_callback(lambda _t: slots.release())
                if writer_task.done():
                    break
            order.put_nowait(None)
            await writer_task
        finally:
            for worker in workers:
                worker.cancel()
            writer_task.cancel()

    async def _write_in_order(
        self, order: asyncio.Queue[Outbox | None], writer: asyncio.StreamWriter
    ) -> None:
        try:
            while (outbox := await order.get()) is not None:
                while (message := await outbox.get()) is not None:
                    writer.write(encode(message) + b"\n")
                    if outbox.empty():
                        await writer.drain()
        except (ConnectionError, OSError):
            log.debug("client went away")

    async def _serve_line(self, line: bytes, outbox: Outbox) -> None:
        runtime = self.runtime
        started = time.perf_counter()
        kind = "chat"
        request_id: str | None = None
        ok = True
        try:
            obj = decode_object(line)
            raw_id = obj.get("request_id")
            request_id = raw_id if isinstance(raw_id, str) else None
            asked = obj.get("type")
            kind = asked if asked in ("ping", "health", "info") else "chat"
            if kind == "ping":
                outbox.put_nowait(runtime.pong())
            elif kind == "health":
                outbox.put_nowait(runtime.health())
            elif kind == "info":
                outbox.put_nowait(runtime.info())
            else:
                request = to_chat_request(obj)
                if request.stream:
                    kind = "stream"

                    async def emit(message: msgspec.Struct) -> None:
                        outbox.put_nowait(message)

                    await runtime.stream(request, emit)
                else:
                    outbox.put_nowait(await runtime.chat(request))
        except (TektonError, ProtocolError) as exc:
            ok = False
            if kind != "stream":
                outbox.put_nowait(
                    ErrorReply(ai_id=runtime.ai_id, error=str(exc), request_id=request_id)
                )
        except Exception as exc:  # a bad request must never take the CI down
            ok = False
            log.exception("socket request failed")
            if kind != "stream":
                outbox.put_nowait(
                    ErrorReply(
                        ai_id=runtime.ai_id,
                        error=f"internal error: {type(exc).__name__}",
                        request_id=request_id,
                    )
                )
        finally:
            outbox.put_nowait(None)
            runtime.metrics.observe("socket", kind, time.perf_counter() - started, ok)
