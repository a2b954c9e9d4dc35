"""A local fake of Anthropic's Messages API, for tests through the real SDK.

It answers ``POST /v1/messages`` as JSON or as server-sent events, keeps a record of
every request, simulates prompt caching (a cache_control breakpoint first creates a
cache entry, an identical prefix later reads it), and plays scripted faults: an HTTP
status with headers (429 with retry-after, 529 overloaded, 400 invalid request), a
mid-stream ``overloaded_error``, a slow reply, a fixed text (say, JSON), or ``tool_use``
blocks (as JSON and as streamed ``input_json_delta`` events).
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

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
    #: tools the reply asks to call, (name, input) each: ``tool_use`` blocks after the
    #: text, and ``stop_reason: tool_use``
    tool_calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


def _tokens(text: str) -> int:
    return max(1, len(text.split()))


class FakeAnthropic:
    """Run with `start()`; `url` is the base URL for the SDK; `requests` records bodies."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.script: deque[Step] = deque()
        #: answers a request when no scripted step gives a text (a test's model)
        self.responder: Callable[[dict[str, Any]], str] | None = None
        self.cache: set[str] = set()
        self.url = ""
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle (a uvicorn server on its own thread, so sync and async tests can both
    # use it) ---------------------------------------------------------------------------
    def start(self) -> FakeAnthropic:
        app = Starlette(routes=[Route(self.PATH, self._handle, methods=["POST"])])
        config = uvicorn.Config(app, log_level="warning", lifespan="off")
        self._server = uvicorn.Server(config)
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}{self.URL_SUFFIX}"
        server = self._server
        self._thread = threading.Thread(
            target=lambda: asyncio.run(server.serve(sockets=[sock])), daemon=True
        )
        self._thread.start()
        for _ in range(200):
            if server.started:
                break
            threading.Event().wait(0.05)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread:
            self._thread.join(10)

    PATH = "/v1/messages"
    URL_SUFFIX = ""

    async def _begin(self, request: Request) -> tuple[dict[str, Any], Step]:
        """Record the request and take the next scripted step (after its delay)."""
        body = await request.json()
        self.requests.append(body)
        self.headers.append({k.lower(): v for k, v in request.headers.items()})
        step = self.script.popleft() if self.script else Step()
        if step.delay:
            await asyncio.sleep(step.delay)
        return body, step

    # -- the API -------------------------------------------------------------------------
    async def _handle(self, request: Request) -> Response:
        body, step = await self._begin(request)
        if step.status != 200:
            kind = ERROR_TYPES.get(step.status, "api_error")
            return JSONResponse(
                {"type": "error", "error": {"type": kind, "message": f"fake {kind}"}},
                status_code=step.status,
                headers=step.headers,
            )
        answer = self.responder or self._answer
        text = step.text if step.text is not None else answer(body)
        usage = self._usage(body, text)
        if body.get("stream"):
            return StreamingResponse(
                self._stream(body, text, usage, step),
                media_type="text/event-stream",
                headers={"Cache-Control": "no-cache"},
            )
        uses = self._tool_uses(step)
        return JSONResponse(
            {
                "id": f"msg_fake_{len(self.requests)}",
                "type": "message",
                "role": "assistant",
                "model": body["model"],
                "content": ([{"type": "text", "text": text}] if text else []) + uses,
                "stop_reason": "tool_use" if uses else "end_turn",
                "stop_sequence": None,
                "usage": usage,
            }
        )

    def _tool_uses(self, step: Step) -> list[dict[str, Any]]:
        return [
            {
                "type": "tool_use",
                "id": f"toolu_fake_{len(self.requests)}_{i}",
                "name": n,
                "input": a,
            }
            for i, (n, a) in enumerate(step.tool_calls)
        ]

    @staticmethod
    def _answer(body: dict[str, Any]) -> str:
        last = body["messages"][-1]["content"]
        if isinstance(last, list):
            # a tool result's content is what the model read last
            last = " ".join(str(b.get("text") or b.get("content") or "") for b in last)
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
        self, body: dict[str, Any], text: str, usage: dict[str, int], step: Step
    ) -> AsyncIterator[bytes]:
        def send(event: str, data: dict[str, Any]) -> bytes:
            return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()

        start_usage = {**usage, "output_tokens": 1}
        yield send(
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
        yield send(
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
        )
        yield send("ping", {"type": "ping"})
        words = text.split(" ")
        for i in range(0, len(words), 3):
            piece = " ".join(words[i : i + 3]) + (" " if i + 3 < len(words) else "")
            yield send(
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {"type": "text_delta", "text": piece},
                },
            )
            if step.fail_mid_stream and i >= 3:
                yield send(
                    "error",
                    {
                        "type": "error",
                        "error": {"type": "overloaded_error", "message": "Overloaded"},
                    },
                )
                return
        yield send("content_block_stop", {"type": "content_block_stop", "index": 0})
        uses = self._tool_uses(step)
        for index, use in enumerate(uses, start=1):
            block = {**use, "input": {}}
            yield send(
                "content_block_start",
                {"type": "content_block_start", "index": index, "content_block": block},
            )
            partial = json.dumps(use["input"])
            for cut in range(0, len(partial), 8):
                delta = {"type": "input_json_delta", "partial_json": partial[cut : cut + 8]}
                yield send(
                    "content_block_delta",
                    {"type": "content_block_delta", "index": index, "delta": delta},
                )
            yield send("content_block_stop", {"type": "content_block_stop", "index": index})
        yield send(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "tool_use" if uses else "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": usage["output_tokens"]},
            },
        )
        yield send("message_stop", {"type": "message_stop"})
