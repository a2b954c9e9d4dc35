"""The offline simulated model: deterministic, role-aware, and honest about being simulated."""

from __future__ import annotations

import asyncio
import hashlib

from tekton_common.providers.base import ModelReply, ModelRequest, OnChunk
from tekton_common.wire import Usage

SIMULATED = "simulated"

_APPROACH = {
    "planning": (
        "break it into three milestones with a check at the end of each",
        "start from the acceptance criteria and work backwards",
        "sequence the riskiest step first so the plan fails early if it must",
    ),
    "code": (
        "write the smallest change that passes a new failing test",
        "isolate the change behind one function and cover it with tests",
        "refactor the touched module first, then add the behaviour",
    ),
    "reasoning": (
        "weigh the evidence for and against before committing",
        "state the assumptions, then test the weakest one",
        "compare two alternatives on correctness, cost and reversibility",
    ),
    "chat": (
        "answer directly and list what to check next",
        "summarise the request and propose one concrete next step",
        "point to the part of the platform that owns this",
    ),
}


def _words(text: str) -> int:
    return max(1, len(text.split()))


class SimulatedProvider:
    """Replies without calling any model; `model` is always ``simulated``."""

    name = SIMULATED
    model = SIMULATED

    def __init__(self, latency_ms: float = 0.0) -> None:
        self.latency = max(0.0, latency_ms) / 1000.0

    def _reply(self, request: ModelRequest) -> ModelReply:
        prompt = request.messages[-1].content if request.messages else ""
        digest = hashlib.sha256(f"{request.ci}\0{prompt}".encode()).digest()
        options = _APPROACH.get(request.capability, _APPROACH["chat"])
        approach = options[digest[0] % len(options)]
        topic = " ".join(prompt.split())[:120] or "(empty message)"
        content = (
            f'[simulated {request.ci}, {request.role}] On "{topic}": I would {approach}. '
            f"This is a simulated reply; no model was called (ref {digest[:4].hex()})."
        )
        input_tokens = _words(request.system) + sum(_words(t.content) for t in request.messages)
        usage = Usage(input_tokens=input_tokens, output_tokens=_words(content))
        return ModelReply(content=content, model=SIMULATED, usage=usage)

    async def complete(self, request: ModelRequest) -> ModelReply:
        """Answer after the configured latency."""
        if self.latency:
            await asyncio.sleep(self.latency)
        return self._reply(request)

    async def stream(self, request: ModelRequest, on_chunk: OnChunk) -> ModelReply:
        """Deliver the same answer as `complete`, a few words per chunk."""
        reply = await self.complete(request)
        words = reply.content.split(" ")
        for start in range(0, len(words), 4):
            piece = " ".join(words[start : start + 4])
            await on_chunk(piece if start == 0 else " " + piece)
        return reply
