"""A local fake of Anthropic's Messages API, for tests through the real SDK.

It answers ``POST /v1/messages`` as JSON or as server-sent events, keeps a record of
every request, simulates prompt caching (a cache_control breakpoint first creates a
cache entry, an identical prefix later reads it), and plays scripted faults: an HTTP
status with headers (429 with retry-after, 529 overloaded, 400 invalid request), a
mid-stream ``overloaded_error``, a slow reply, or a fixed text (say, JSON).
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}


@dataclass
class Step:
    """One scripted answer: a status with headers, a delay, a fixed text, or a stream fault."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    text: str | None = None
    fail_mid_stream: bool = False


def _tokens(text: str) -> int:
    return max(1, len(text.split()))


class FakeAnthropic:
    """Run with `start()`; `url` is the base URL for the SDK; `requests` records bodies."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.script: deque[Step] = deque()
        self.cache: set[str] = set()
        self.url = ""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle (own thread and loop, so sync and async tests can both use it) -------
    def start(self) -> FakeAnthropic:
        ready = threading.Event()

        def run() -> None:
            self._loop = asyncio.new_event_loop()
            self._loop.run_until_complete(self._serve())
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    def stop(self) -> None:
        if self._loop and self._runner:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread:
            self._thread.join(10)

    PATH = "/v1/messages"
    URL_SUFFIX = ""

    async def _serve(self) -> None:
        app = web.Application(client_max_size=64 * 2**20)
        app.router.add_post(self.PATH, self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}{self.URL_SUFFIX}"

    async def _begin(self, request: web.Request) -> tuple[dict[str, Any], Step]:
        """Record the request and take the next scripted step (after its delay)."""
        body = await request.json()
        self.requests.append(body)
        self.headers.append({k.lower(): v for k, v in request.headers.items()})
        step = self.script.popleft() if self.script else Step()
        if step.delay:
            await asyncio.sleep(step.delay)
        return body, step

    # -- the API -------------------------------------------------------------------------
    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body, step = await self._begin(request)
        if step.status != 200:
            kind = ERROR_TYPES.get(step.status, "api_error")
            return web.json_response(
                {"type": "error", "error": {"type": kind, "message": f"fake {kind}"}},
                status=step.status,
                headers=step.headers,
            )
        text = step.text if step.text is not None else self._answer(body)
        usage = self._usage(body, text)
        if body.get("stream"):
            return await self._stream(request, body, text, usage, step)
        return web.json_response(
            {
                "id": f"msg_fake_{len(self.requests)}",
                "type": "message",
                "role": "assistant",
                "model": body["model"],
                "content": [{"type": "text", "text": text}],
                "stop_reason": "end_turn",
                "stop_sequence": None,
                "usage": usage,
            }
        )

    @staticmethod
    def _answer(body: dict[str, Any]) -> str:
        last = body["messages"][-1]["content"]
        if isinstance(last, list):
            last = " ".join(block.get("text", "") for block in last)
        return f"fake claude reply to: {last}"

    def _usage(self, body: dict[str, Any], text: str) -> dict[str, int]:
        """Token counts, with prompt caching: each breakpoint's prefix is cached once."""
        blocks: list[str] = []
        system = body.get("system") or []
        if isinstance(system, str):
            system = [{"type": "text", "text": system}]
        for block in system:
            blocks.append(json.dumps(block.get("text")))
            if block.get("cache_control"):
                blocks.append("\0breakpoint")
        for message in body["messages"]:
            content = message["content"]
            if isinstance(content, str):
                content = [{"type": "text", "text": content}]
            for block in content:
                blocks.append(json.dumps([message["role"], block.get("text")]))
                if block.get("cache_control"):
                    blocks.append("\0breakpoint")
        total = sum(_tokens(b) for b in blocks if b != "\0breakpoint")
        created = read = 0
        prefix: list[str] = []
        for item in blocks:
            if item != "\0breakpoint":
                prefix.append(item)
                continue
            key = "\n".join(prefix)
            size = sum(_tokens(b) for b in prefix) - created - read
            if key in self.cache:
                read += size
            else:
                self.cache.add(key)
                created += size
        return {
            "input_tokens": total - created - read,
            "output_tokens": _tokens(text),
            "cache_creation_input_tokens": created,
            "cache_read_input_tokens": read,
        }

    async def _stream(
        self,
        request: web.Request,
        body: dict[str, Any],
        text: str,
        usage: dict[str, int],
        step: Step,
    ) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await response.prepare(request)

        async def send(event: str, data: dict[str, Any]) -> None:
            await response.write(f"event: {event}\ndata: {json.dumps(data)}\n\n".encode())

        start_usage = {**usage, "output_tokens": 1}
        await send(
            "message_start",
            {
                "type": "message_start",
                "message": {
                    "id": f"msg_fake_{len(self.requests)}",
                    "type": "message",
                    "role": "assistant",
                    "model": body["model"],
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": start_usage,
                },
            },
        )
        await send(
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
        )
        await send("ping", {"type": "ping"})
        words = text.split(" ")
        for i in range(0, len(words), 3):
            piece = " ".join(words[i : i + 3]) + (" " if i + 3 < len(words) else "")
            await send(
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {"type": "text_delta", "text": piece},
                },
            )
            if step.fail_mid_stream and i >= 3:
                await send(
                    "error",
                    {
                        "type": "error",
                        "error": {"type": "overloaded_error", "message": "Overloaded"},
                    },
                )
                return response
        await send("content_block_stop", {"type": "content_block_stop", "index": 0})
        await send(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": usage["output_tokens"]},
            },
        )
        await send("message_stop", {"type": "message_stop"})
        return response
