"""Benchmark of Rhetor's debates against a sequential triad run beside it.

    python -m bench.bench_debate [--latency-ms 200] [--concurrent 50] [--json]

Every CI answers through the simulated model after a fixed latency L. Measured:
- one 2-round debate through Rhetor (three debaters in parallel per round, then the
  mediator) against the same two rounds called one debater after another, the way the
  reference design does it, with the same CIs over the same NATS;
- N debates at once against one debate alone;
- orchestration overhead per model call: (wall time - model latency on the critical
  path) / calls.
Targets: ≥ 2.3x faster than sequential, ≤ 1.15 x (rounds + 2) x L, N at once within
1.5x of one, overhead ≤ 2 ms per call.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import msgspec
import nats

from tekton_rhetor.models import POSITION_SCHEMA, outcome_schema
from tests.helpers import CIProc, Env, NatsServer

CAST = {"proponent": "prometheus", "skeptic": "athena", "pragmatist": "metis", "mediator": "apollo"}
ROUNDS = 2


async def through_rhetor(nc: Any, tag: str) -> dict[str, Any]:
    request = {"prompt": "Adopt JetStream for run events?", "max_rounds": ROUNDS, "debate_id": tag}
    reply = await nc.request("tekton.rhetor.debate", msgspec.json.encode(request), timeout=120)
    result: dict[str, Any] = json.loads(reply.data)
    if result["loops_run"] != ROUNDS or result["status"] != "approved":
        raise RuntimeError(f"unexpected debate: {result['status']} {result['reason']}")
    return result


async def sequential_triad(nc: Any) -> None:
    """The reference design: every debater asked in turn, then the mediator."""
    transcript: list[str] = []
    for number in range(1, ROUNDS + 1):
        for role in ("proponent", "skeptic", "pragmatist"):
            payload = {
                "content": f"You are the {role} (round {number}).",
                "history": [
                    {"role": "user", "content": "\n".join(transcript) or "-"},
                    {"role": "assistant", "content": "Understood."},
                ],
                "json_schema": POSITION_SCHEMA,
                "context": {"debate_role": role, "round": number},
            }
            msg = await nc.request(
                f"tekton.ci.{CAST[role]}.chat", msgspec.json.encode(payload), timeout=60
            )
            transcript.append(json.loads(msg.data)["content"])
    schema = outcome_schema({"type": "object", "properties": {"decision": {"type": "string"}}})
    await nc.request(
        f"tekton.ci.{CAST['mediator']}.chat",
        msgspec.json.encode(
            {
                "content": "Mediate.",
                "history": [
                    {"role": "user", "content": "\n".join(transcript)},
                    {"role": "assistant", "content": "Understood."},
                ],
                "json_schema": schema,
            }
        ),
        timeout=60,
    )


async def timed(coro: Any) -> float:
    started = time.perf_counter()
    await coro
    return time.perf_counter() - started


async def measure(url: str, latency: float, concurrent: int, repeats: int) -> dict[str, float]:
    nc = await nats.connect(url)
    try:
        await through_rhetor(nc, "warm")
        await sequential_triad(nc)
        parallel, sequential = [], []
        for i in range(repeats):  # interleaved, so drift hits both alike
            parallel.append(await timed(through_rhetor(nc, f"p{i}")))
            sequential.append(await timed(sequential_triad(nc)))
        one = statistics.median(parallel)
        many = await timed(
            asyncio.gather(*(through_rhetor(nc, f"c{i}") for i in range(concurrent)))
        )
    finally:
        await nc.close()
    calls = ROUNDS * 3 + 1
    critical_path = (ROUNDS + 1) * latency
    return {
        "latency_s": latency,
        "one_debate_s": one,
        "sequential_s": statistics.median(sequential),
        "speedup": statistics.median(sequential) / one,
        "bound_s": 1.15 * (ROUNDS + 2) * latency,
        "concurrent": concurrent,
        "concurrent_s": many,
        "concurrent_ratio": many / one,
        "overhead_ms_per_call": (one - critical_path) / calls * 1000,
    }


async def run(latency_ms: float, concurrent: int, repeats: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        server = NatsServer(Path(tmp) / "nats").start()
        env = Env(
            home=Path(tmp) / "home",
            nats_url=server.url,
            extra={"TEKTON_REGISTER_AI": "false", "TEKTON_SIMULATED_LATENCY_MS": str(latency_ms)},
        )
        procs = [CIProc(env, "rhetor", module="tekton_rhetor")]
        procs += [CIProc(env, ci) for ci in CAST.values()]
        try:
            for proc in procs:
                proc.wait_ready()
            return await measure(server.url, latency_ms / 1000, concurrent, repeats)
        finally:
            for proc in procs:
                proc.terminate()
            server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--latency-ms", type=float, default=200.0, help="simulated model latency")
    parser.add_argument("--concurrent", type=int, default=50, help="debates at once")
    parser.add_argument("--repeats", type=int, default=5, help="samples of each single debate")
    parser.add_argument("--json", action="store_true", help="print raw figures as JSON")
    args = parser.parse_args()
    f = asyncio.run(run(args.latency_ms, args.concurrent, args.repeats))
    if args.json:
        print(json.dumps(f, indent=2))
        return
    print(
        f"2-round debate, model latency L = {f['latency_s'] * 1000:.0f} ms, median of "
        f"{args.repeats}"
    )
    print(f"  through Rhetor (parallel)   {f['one_debate_s']:.3f} s")
    print(f"  sequential triad (baseline) {f['sequential_s']:.3f} s")
    print(
        f"  speed-up {f['speedup']:.2f}x (target ≥ 2.3x); bound 1.15 x (rounds + 2) x L = "
        f"{f['bound_s']:.3f} s ({'met' if f['one_debate_s'] <= f['bound_s'] else 'MISSED'})"
    )
    print(
        f"{f['concurrent']:.0f} debates at once: {f['concurrent_s']:.3f} s = "
        f"{f['concurrent_ratio']:.2f}x one debate (target ≤ 1.5x)"
    )
    print(
        f"orchestration overhead: {f['overhead_ms_per_call']:.2f} ms per model call (target ≤ 2 ms)"
    )


if __name__ == "__main__":
    main()
