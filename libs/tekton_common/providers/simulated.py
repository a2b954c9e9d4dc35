"""The offline simulated model: deterministic, role-aware, and honest about being simulated.

Free-text replies name the CI and its role and say they are simulated. When the caller
asks for JSON (a JSON Schema in the request), the reply is an instance of that schema,
built deterministically from the input (a debate position, an artifact). Latency and
faults (errors, hangs, invalid JSON) can be injected for benchmarks and fault tests.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random

from tekton_common.errors import ConfigError, ProviderError
from tekton_common.providers.base import ModelReply, ModelRequest, OnChunk
from tekton_common.providers.schema_fill import SchemaFiller
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

    def __init__(
        self, latency_ms: float = 0.0, faults: str = "", seed: int = 0, hang_seconds: float = 3600.0
    ) -> None:
        self.latency = max(0.0, latency_ms) / 1000.0
        self.faults = parse_faults(faults)
        self.hang_seconds = hang_seconds
        self._dice = random.Random(seed)

    async def _maybe_fault(self, request: ModelRequest) -> str | None:
        """Roll for each configured fault; returns "invalid_json" or None, or raises."""
        for kind, rate in self.faults.items():
            if self._dice.random() >= rate:
                continue
            if kind == "error":
                raise ProviderError(f"{request.ci}: simulated provider fault (injected error)")
            if kind == "timeout":
                await asyncio.sleep(self.hang_seconds)
                raise ProviderError(f"{request.ci}: simulated provider fault (injected hang)")
            return kind
        return None

    def _reply(self, request: ModelRequest, fault: str | None = None) -> ModelReply:
        prompt = request.messages[-1].content if request.messages else ""
        digest = hashlib.sha256(f"{request.ci}\0{prompt}".encode()).digest()
        if request.json_schema is not None:
            filler = SchemaFiller(request.json_schema, digest.hex(), f"{request.ci} (simulated)")
            content = json.dumps(filler.fill(), ensure_ascii=False)
            if fault == "invalid_json":
                content = content[: len(content) // 2]
            usage = Usage(
                input_tokens=_words(request.system) + _words(prompt), output_tokens=_words(content)
            )
            return ModelReply(content=content, model=SIMULATED, usage=usage)
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
        """Answer after the configured latency (or fail, when a fault is injected)."""
        if self.latency:
            await asyncio.sleep(self.latency)
        fault = await self._maybe_fault(request) if self.faults else None
        return self._reply(request, fault)

    async def stream(self, request: ModelRequest, on_chunk: OnChunk) -> ModelReply:
        """Deliver the same answer as `complete`, a few words per chunk."""
        reply = await self.complete(request)
        words = reply.content.split(" ")
        for start in range(0, len(words), 4):
            piece = " ".join(words[start : start + 4])
            await on_chunk(piece if start == 0 else " " + piece)
        return reply


FAULT_KINDS = ("error", "timeout", "invalid_json")


def parse_faults(text: str) -> dict[str, float]:
    """``"error:0.1,invalid_json:0.2"`` → rates per fault kind."""
    faults: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        kind, _, rate = part.partition(":")
        if kind not in FAULT_KINDS:
            raise ConfigError(f"unknown simulated fault {kind!r}; known: {', '.join(FAULT_KINDS)}")
        try:
            faults[kind] = float(rate or 1.0)
        except ValueError:
            raise ConfigError(f"fault rate for {kind} must be a number, got {rate!r}") from None
    return faults
