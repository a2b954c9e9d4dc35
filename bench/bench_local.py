"""Benchmark of a 2-round debate on the local model (llama.cpp serving SmolLM2-135M),
against the same debate with its calls made one after another.

    python -m bench.bench_local [--rounds 2] [--json]

Each variant gets a freshly started llama.cpp server (so neither finds the other's
prompts in its cache) with the settings `tekton --model local up` uses (3 slots), and
runs Rhetor's Debate with every turn asked through the CIs' own request handling
(CIRuntime, streaming: the first piece of each reply gives the time to first token) on
the local provider, without NATS between them. The debate is over a stage-sized context
(the first 3,000 characters of the README). Printed: wall time of both and their ratio,
decode tokens per second, median time to first token, and the share of debaters' prompt
tokens in rounds 2 and later that llama.cpp served from its prompt cache (target ≥ 50 %).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import msgspec

from tekton_common.budget import BudgetGuard
from tekton_common.catalog import CIId, get_ci
from tekton_common.contract.debates import DebateRequest, TurnRecord
from tekton_common.providers.select import build_provider
from tekton_common.runtime import CIRuntime
from tekton_common.settings import Settings, load_settings
from tekton_common.wire import ChatRequest, Response, StreamChunk, StreamEnd
from tekton_rhetor.calls import Attempt
from tekton_rhetor.debate import Debate
from tests.helpers import free_port, http_get, wait_for

ROOT = Path(__file__).resolve().parent.parent
QUESTION = "Which parts of this platform should a new contributor read first, and why?"


class Calls:
    """Debate turns asked through each CI's runtime; one at a time when `serial`."""

    def __init__(self, settings: Settings, serial: bool) -> None:
        provider = build_provider("local", settings)
        self.settings = settings
        self.runtimes: dict[str, CIRuntime] = {}
        self.provider = provider
        self.lock = asyncio.Lock() if serial else None
        self.first_token: list[float] = []
        self.decode: list[tuple[int, float]] = []

    def _runtime(self, ci: str) -> CIRuntime:
        name = CIId.from_str(ci).name
        if name not in self.runtimes:
            self.runtimes[name] = CIRuntime(get_ci(name), self.settings, self.provider)
        return self.runtimes[name]

    async def __call__(self, ci: str, request: ChatRequest, timeout: float) -> Attempt:
        if self.lock is None:
            return await self._collect(ci, request)
        async with self.lock:
            return await self._collect(ci, request)

    async def _collect(self, ci: str, request: ChatRequest) -> Attempt:
        started = time.perf_counter()
        content: list[str] = []
        first: list[float] = []
        end: list[StreamEnd] = []

        async def emit(message: msgspec.Struct) -> None:
            if isinstance(message, StreamChunk):
                if not first:
                    first.append(time.perf_counter())
                content.append(message.content)
            elif isinstance(message, StreamEnd):
                end.append(message)

        await self._runtime(ci).stream(request, emit)
        done = time.perf_counter()
        if first:
            self.first_token.append(first[0] - started)
            self.decode.append((end[0].usage.output_tokens, done - first[0]))
        reply = Response(ci, "".join(content), end[0].model, end[0].usage, done - started)
        return Attempt(reply=reply, latency=done - started)


def _server(home: Path, port: int) -> subprocess.Popen[bytes]:
    env = {"TEKTON_HOME": str(home), "TEKTON_LOCAL_PORT": str(port), "PATH": "/usr/bin:/bin"}
    log = (home / "local.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "tekton_cli.local_server"], env=env, stdout=log, stderr=log
    )
    if not wait_for(lambda: http_get(port, "/health")[0] == 200, 120):
        proc.kill()
        raise RuntimeError(f"local server did not start: {(home / 'local.log').read_text()}")
    return proc


async def one_debate(rounds: int, serial: bool) -> dict[str, Any]:
    """A fresh server, one debate, its numbers."""
    with tempfile.TemporaryDirectory() as folder:
        home, port = Path(folder), free_port()
        proc = _server(home, port)
        try:
            settings = load_settings(
                environ={"TEKTON_HOME": str(home), "TEKTON_LOCAL_PORT": str(port)},
                config_file=home / "none.toml",
            )
            calls = Calls(settings, serial)
            request = DebateRequest(
                prompt=QUESTION,
                context=(ROOT / "README.md").read_text()[:3000],
                max_rounds=rounds,
                threshold=1.0,  # every round runs
                turn_timeout=600,
            )

            async def publish(_: Any) -> None:
                return None

            debate = Debate(request, calls, BudgetGuard("bench"), 600, publish)
            started = time.perf_counter()
            result = await debate.run()
            wall = time.perf_counter() - started
        finally:
            proc.terminate()
            proc.wait(30)
    later = [t for t in result.transcript if t.round >= 2 and t.role != "mediator"]
    return {
        "wall_s": round(wall, 2),
        "status": result.status,
        "turns": len(result.transcript),
        "abstained": sum(t.abstained for t in result.transcript),
        "output_tokens": sum(t.output_tokens for t in result.transcript),
        "decode_tok_s": round(
            sum(n for n, _ in calls.decode) / max(1e-9, sum(s for _, s in calls.decode)), 1
        ),
        "first_token_s": round(statistics.median(calls.first_token), 2),
        "cache_share_later_rounds": _cache_share(later),
    }


def _cache_share(turns: list[TurnRecord]) -> float:
    cached = sum(t.cache_read_input_tokens for t in turns)
    total = cached + sum(t.input_tokens for t in turns)
    return round(cached / total, 3) if total else 0.0


async def main(rounds: int) -> dict[str, Any]:
    together = await one_debate(rounds, serial=False)
    serial = await one_debate(rounds, serial=True)
    return {
        "model": "local:smollm2-135m",
        "rounds": rounds,
        "parallel": together,
        "one_after_another": serial,
        "speedup": round(serial["wall_s"] / together["wall_s"], 2),
    }


def report(numbers: dict[str, Any]) -> str:
    p, s = numbers["parallel"], numbers["one_after_another"]
    return "\n".join(
        [
            f"{numbers['rounds']}-round debate on {numbers['model']} (llama.cpp, 3 slots):",
            f"  debaters in parallel  {p['wall_s']:7.1f} s  ({p['turns']} turns, "
            f"{p['output_tokens']} output tokens, {p['abstained']} abstained, {p['status']})",
            f"  one after another     {s['wall_s']:7.1f} s  ({s['turns']} turns, "
            f"{s['output_tokens']} output tokens, {s['abstained']} abstained, {s['status']})",
            f"  ratio                 {numbers['speedup']:.2f}x faster in parallel",
            f"  decode                {p['decode_tok_s']} tok/s per reply in parallel, "
            f"{s['decode_tok_s']} alone",
            f"  first token (median)  {p['first_token_s']} s in parallel, "
            f"{s['first_token_s']} s alone",
            f"  prompt cache, rounds ≥ 2: {p['cache_share_later_rounds']:.0%} of debaters' "
            f"prompt tokens served from it (target ≥ 50 %), "
            f"{s['cache_share_later_rounds']:.0%} one after another",
        ]
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    numbers = asyncio.run(main(args.rounds))
    print(json.dumps(numbers, indent=2) if args.json else report(numbers))
