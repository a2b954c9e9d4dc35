"""A local fake of an OpenAI-compatible ``/v1/chat/completions`` endpoint (Ollama, vLLM).

Answers as JSON or server-sent events (with a final usage chunk when asked), records
every request, and plays scripted faults and tool calls like the Anthropic fake (a
streamed tool call comes in fragments: id and name, then its arguments in two pieces).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from tests.fakes.anthropic_server import FakeAnthropic, Step


class FakeOpenAI(FakeAnthropic):
    """Same lifecycle and script as FakeAnthropic; `url` ends in /v1."""

    PATH = "/v1/chat/completions"
    URL_SUFFIX = "/v1"

    async def _handle(self, request: Request) -> Response:
        body, step = await self._begin(request)
        if step.status != 200:
            return JSONResponse(
                {"error": {"message": f"fake error {step.status}"}},
                status_code=step.status,
                headers=step.headers,
            )
        text = (
            step.text
            if step.text is not None
            else (f"fake local reply to: {body['messages'][-1]['content']}")
        )
        usage = {
            "prompt_tokens": sum(len((m["content"] or "").split()) for m in body["messages"]),
            "completion_tokens": len(text.split()),
        }
        calls = [
            {
                "id": f"call_fake_{len(self.requests)}_{i}",
                "type": "function",
                "function": {"name": name, "arguments": json.dumps(arguments)},
            }
            for i, (name, arguments) in enumerate(step.tool_calls)
        ]
        finish = "tool_calls" if calls else "stop"
        if not body.get("stream"):
            message: dict[str, Any] = {"role": "assistant", "content": text}
            if calls:
                message["tool_calls"] = calls
            return JSONResponse(
                {
                    "id": "chatcmpl-fake",
                    "object": "chat.completion",
                    "model": body["model"],
                    "choices": [
                        {
                            "index": 0,
                            "message": message,
                            "finish_reason": finish,
                        }
                    ],
                    "usage": usage,
                }
            )
        return StreamingResponse(
            self._chunks(body, text, usage, step, calls), media_type="text/event-stream"
        )

    async def _chunks(
        self,
        body: dict[str, Any],
        text: str,
        usage: dict[str, int],
        step: Step,
        calls: list[dict[str, Any]],
    ) -> AsyncIterator[bytes]:
        def send(data: dict[str, Any] | str) -> bytes:
            payload = data if isinstance(data, str) else json.dumps(data)
            return f"data: {payload}\n\n".encode()

        words = text.split(" ")
        for i in range(0, len(words), 2):
            piece = " ".join(words[i : i + 2]) + (" " if i + 2 < len(words) else "")
            yield send(
                {
                    "id": "c",
                    "object": "chat.completion.chunk",
                    "model": body["model"],
                    "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}],
                }
            )
            if step.fail_mid_stream and i >= 2:
                yield send({"error": {"message": "model crashed"}})
                return
        for index, call in enumerate(calls):
            arguments = call["function"]["arguments"]
            half = len(arguments) // 2
            pieces = [
                {
                    "index": index,
                    "id": call["id"],
                    "type": "function",
                    "function": {"name": call["function"]["name"], "arguments": ""},
                },
                {"index": index, "function": {"arguments": arguments[:half]}},
                {"index": index, "function": {"arguments": arguments[half:]}},
            ]
            for piece in pieces:
                yield send(
                    {
                        "id": "c",
                        "object": "chat.completion.chunk",
                        "model": body["model"],
                        "choices": [
                            {"index": 0, "delta": {"tool_calls": [piece]}, "finish_reason": None}
                        ],
                    }
                )
        yield send(
            {
                "id": "c",
                "object": "chat.completion.chunk",
                "model": body["model"],
                "choices": [
                    {"index": 0, "delta": {}, "finish_reason": "tool_calls" if calls else "stop"}
                ],
            }
        )
        if (body.get("stream_options") or {}).get("include_usage"):
            yield send(
                {
                    "id": "c",
                    "object": "chat.completion.chunk",
                    "model": body["model"],
                    "choices": [],
                    "usage": usage,
                }
            )
        yield send("[DONE]")
