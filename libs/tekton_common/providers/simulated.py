"""The offline simulated model: deterministic, role-aware, and honest about being simulated.

Free-text replies name the CI and its role and say they are simulated. When the caller
asks for JSON (a JSON Schema in the request), the reply is an instance of that schema,
built deterministically from the input: a debate position (its vote follows the debate
role: the skeptic asks for a revision in the opening round, then accepts), a mediator's
outcome, an artifact. Offered tools whose keywords a free-text request names are called
first (`wanted_tools`), and the reply repeats what they returned, saying that the rest
is simulated. Latency and faults (errors, hangs, invalid JSON, JSON of the
wrong shape) can be injected for benchmarks and fault tests.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import random
import re
from typing import Any

from tekton_common.catalog import CI_NAMES
from tekton_common.contract.tools import ModelToolAnswer, ModelToolCall, ToolSpec
from tekton_common.errors import ConfigError, ProviderError
from tekton_common.providers.base import ModelReply, ModelRequest, OnChunk
from tekton_common.providers.schema_fill import SchemaFiller
from tekton_common.wire import Usage

SIMULATED = "simulated"
FAULT_KINDS = ("error", "timeout", "invalid_json", "wrong_schema")

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


#: a CI's system prompt is the same on every call (a handful per process)
_system_words = functools.lru_cache(maxsize=64)(_words)


class Fault:
    """One injected fault: a rate per call, or the first `count` calls."""

    def __init__(self, kind: str, rate: float = 0.0, count: int = 0) -> None:
        self.kind, self.rate, self.count = kind, rate, count

    def fires(self, dice: random.Random) -> bool:
        """Whether this call suffers the fault."""
        if self.count:
            self.count -= 1
            return True
        return dice.random() < self.rate


def parse_faults(text: str) -> list[Fault]:
    """``"error:0.1,invalid_json:#2"``: a rate per call, or ``#N`` for the first N calls."""
    faults = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        kind, _, rate = part.partition(":")
        if kind not in FAULT_KINDS:
            raise ConfigError(f"unknown simulated fault {kind!r}; known: {', '.join(FAULT_KINDS)}")
        try:
            faults.append(
                Fault(kind, count=int(rate[1:]))
                if rate.startswith("#")
                else Fault(kind, rate=float(rate or 1.0))
            )
        except ValueError:
            raise ConfigError(
                f"fault rate for {kind} must be a number or #N, got {rate!r}"
            ) from None
    return faults


SIMULATED_FILE = "TEKTON_SIMULATED_CHANGE.md"


def simulated_diff(ci: str) -> str:
    """A diff that adds one file saying it is simulated: it applies to any repository
    that does not already have that file."""
    lines = [
        f"# Simulated change from {ci}",
        "",
        "Written by Tekton's offline simulated model; no real model was called.",
    ]
    body = "".join(f"+{line}\n" for line in lines)
    return (
        f"diff --git a/{SIMULATED_FILE} b/{SIMULATED_FILE}\n"
        "new file mode 100644\n"
        "--- /dev/null\n"
        f"+++ b/{SIMULATED_FILE}\n"
        f"@@ -0,0 +1,{len(lines)} @@\n{body}"
    )


def wanted_tools(tools: list[ToolSpec], prompt: str) -> list[ModelToolCall]:
    """The tools a prompt asks for by their keywords, with what the prompt says of their
    inputs: an enum value it names (``yesterday``), a CI it names (``hermes``); never one
    whose required input the prompt does not give."""
    words = set(re.findall(r"[a-z0-9]+", prompt.lower()))
    calls = []
    for index, tool in enumerate(tools):
        if not words & set(tool.keywords):
            continue
        arguments: dict[str, Any] = {}
        for field, schema in tool.input_schema.get("properties", {}).items():
            options = schema.get("enum") or [
                v for alt in schema.get("anyOf", []) for v in alt.get("enum", [])
            ]
            if picked := [o for o in options if isinstance(o, str) and o in words]:
                arguments[field] = picked[0]
            elif field == "ci" and (named := [n for n in CI_NAMES if n in words]):
                arguments[field] = named[0]
        if set(tool.input_schema.get("required", [])) - set(arguments):
            continue  # it would have to make up an input (a run's id, a command)
        calls.append(ModelToolCall(id=f"sim-{index}", name=tool.name, input=arguments))
    return calls[:3]


def _quoted(answer: ModelToolAnswer) -> str:
    """What a tool answered, as the simulated model repeats it."""
    if answer.error:
        return f"{answer.name} failed: {answer.content[:300]}."
    try:
        summary = json.loads(answer.content).get("summary", "")
    except (ValueError, AttributeError):
        summary = answer.content[:300]
    return f"{answer.name} says: {summary}."


class SimulatedProvider:
    """Replies without calling any model; `model` is always ``simulated``."""

    name = SIMULATED
    model = SIMULATED

    def __init__(
        self,
        latency_ms: float = 0.0,
        faults: str = "",
        seed: int = 0,
        hang_seconds: float = 3600.0,
    ) -> None:
        self.latency = max(0.0, latency_ms) / 1000.0
        self.faults = parse_faults(faults)
        self.hang_seconds = hang_seconds
        self._dice = random.Random(seed)

    async def _maybe_fault(self, request: ModelRequest) -> str | None:
        """Roll for each configured fault; returns the kind that alters the reply, or raises."""
        for fault in self.faults:
            if not fault.fires(self._dice):
                continue
            if fault.kind == "error":
                raise ProviderError(f"{request.ci}: simulated provider fault (injected error)")
            if fault.kind == "timeout":
                await asyncio.sleep(self.hang_seconds)
                raise ProviderError(f"{request.ci}: simulated provider fault (injected hang)")
            return fault.kind
        return None

    def _overrides(self, request: ModelRequest) -> dict[str, Any]:
        """Values that make JSON replies behave like the role they play."""
        props = (request.json_schema or {}).get("properties", {})
        out: dict[str, Any] = {}
        if "vote" in props:
            role = request.hints.get("debate_role")
            opening = request.hints.get("round", 1) == 1
            out["vote"] = "revise" if role == "skeptic" and opening else "accept"
        if "status" in props and "approved" in props["status"].get("enum", []):
            out["status"] = "approved"
        return out

    def _reply(self, request: ModelRequest, fault: str | None = None) -> ModelReply:
        prompt = request.messages[-1].content if request.messages else ""
        first = request.tools and not request.exchanges and not request.tools_done
        if first and (calls := wanted_tools(request.tools, prompt)):
            usage = Usage(input_tokens=_words(prompt), output_tokens=len(calls))
            return ModelReply(content="", model=SIMULATED, usage=usage, tool_calls=calls)
        digest = hashlib.sha256(f"{request.ci}\0{prompt}".encode()).digest()
        if request.json_schema is not None:
            if fault == "wrong_schema":
                data: Any = {"simulated": f"{request.ci} answered with the wrong shape"}
            else:
                # a real unified diff, so `git apply --check` of a code change means something
                fixed = {"diff": simulated_diff(request.ci), "files_changed": [SIMULATED_FILE]}
                filler = SchemaFiller(
                    request.json_schema, digest.hex(), f"{request.ci} (simulated)", fixed
                )
                data = filler.fill()
                if isinstance(data, dict):  # a schema need not ask for an object
                    data = {**data, **self._overrides(request)}
            content = json.dumps(data, ensure_ascii=False)
            if fault == "invalid_json":
                content = content[: len(content) // 2]
            usage = Usage(
                input_tokens=_system_words(request.system)
                + sum(_words(t.content) for t in request.messages),
                output_tokens=_words(content),
            )
            return ModelReply(content=content, model=SIMULATED, usage=usage)
        options = _APPROACH.get(request.capability, _APPROACH["chat"])
        approach = options[digest[0] % len(options)]
        topic = " ".join(prompt.split())[:120] or "(empty message)"
        if request.exchanges:
            looked = " ".join(_quoted(a) for e in request.exchanges for a in e.answers)
            content = (
                f'[simulated {request.ci}, {request.role}] On "{topic}": {looked} '
                "The rest of this reply is simulated; no model was called, and the lines "
                f"above are what the tools returned (ref {digest[:4].hex()})."
            )
        else:
            content = (
                f'[simulated {request.ci}, {request.role}] On "{topic}": I would {approach}. '
                f"This is a simulated reply; no model was called (ref {digest[:4].hex()})."
            )
        if fault == "invalid_json":
            content = content[: len(content) // 2]
        input_tokens = _system_words(request.system) + sum(
            _words(t.content) for t in request.messages
        )
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
        words = reply.content.split(" ") if reply.content else []
        for start in range(0, len(words), 4):
            piece = " ".join(words[start : start + 4])
            await on_chunk(piece if start == 0 else " " + piece)
        return reply
