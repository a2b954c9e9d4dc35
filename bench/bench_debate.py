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
1.2x of one, overhead ≤ 0.5 ms per call; beside it, the floor: seven calls one after
another to a bare nats-py responder with the same latency.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import msgspec
import nats

from tekton_common.contract.debates import PositionReply, outcome_schema, reply_schema
from tests.fakes.otlp_receiver import OtlpReceiver
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
                "json_schema": reply_schema(PositionReply),
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


async def floor_calls(nc: Any) -> None:
    """The floor: the debate's shape (rounds of three calls at once, then one) made of
    calls to a bare nats-py responder that answers after the same latency: what waking
    idle processes and the sleep's own overshoot cost on this machine, no Tekton in it."""

    async def call() -> None:
        await nc.request("bench.echo.raw", b'{"content":"x"}', timeout=60)

    for _ in range(ROUNDS):
        await asyncio.gather(call(), call(), call())
    await call()


async def timed(coro: Any) -> float:
    started = time.perf_counter()
    await coro
    return time.perf_counter() - started


async def measure(url: str, latency: float, concurrent: int, repeats: int) -> dict[str, float]:
    nc = await nats.connect(url)
    try:
        await through_rhetor(nc, "warm")
        await sequential_triad(nc)
        await floor_calls(nc)
        parallel, sequential, floor = [], [], []
        for i in range(repeats):  # interleaved, so drift hits all alike
            parallel.append(await timed(through_rhetor(nc, f"p{i}")))
            sequential.append(await timed(sequential_triad(nc)))
            floor.append(await timed(floor_calls(nc)))
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
        # the same shape with a bare responder, beyond its latency: the machine's floor
        "floor_ms_per_call": (statistics.median(floor) - critical_path) / calls * 1000,
    }


async def run(
    latency_ms: float, concurrent: int, repeats: int, otlp: str | None = None
) -> dict[str, float]:
    """One configuration: the defaults, or (with `otlp`) traces and metrics by OTLP."""
    with tempfile.TemporaryDirectory() as tmp:
        server = NatsServer(Path(tmp) / "nats").start()
        extra = {"TEKTON_REGISTER_AI": "false", "TEKTON_SIMULATED_LATENCY_MS": str(latency_ms)}
        if otlp:
            extra["OTEL_EXPORTER_OTLP_ENDPOINT"] = otlp
        env = Env(home=Path(tmp) / "home", nats_url=server.url, extra=extra)
        procs = [CIProc(env, "rhetor", module="tekton_rhetor")]
        procs += [CIProc(env, ci) for ci in CAST.values()]
        bare = await asyncio.create_subprocess_exec(
            sys.executable,
            *("-m", "bench.echo_servers", "raw-nats", server.url, str(latency_ms)),
            stdout=asyncio.subprocess.PIPE,
        )
        try:
            assert bare.stdout is not None and (await bare.stdout.readline()).strip() == b"ready"
            for proc in procs:
                proc.wait_ready()
            return await measure(server.url, latency_ms / 1000, concurrent, repeats)
        finally:
            bare.kill()
            for proc in procs:
                proc.terminate()
            server.stop()


def report(title: str, f: dict[str, float], repeats: int) -> None:
    """One configuration's figures."""
    latency = f["latency_s"] * 1000
    print(f"{title}: 2-round debate, model latency L = {latency:.0f} ms, median of {repeats}")
    print(f"  through Rhetor (parallel)   {f['one_debate_s']:.3f} s")
    print(f"  sequential triad (baseline) {f['sequential_s']:.3f} s")
    print(
        f"  speed-up {f['speedup']:.2f}x (target ≥ 2.3x); bound 1.15 x (rounds + 2) x L = "
        f"{f['bound_s']:.3f} s ({'met' if f['one_debate_s'] <= f['bound_s'] else 'MISSED'})"
    )
    print(
        f"  {f['concurrent']:.0f} debates at once: {f['concurrent_s']:.3f} s = "
        f"{f['concurrent_ratio']:.2f}x one debate (target ≤ 1.2x)"
    )
    print(
        f"  orchestration overhead: {f['overhead_ms_per_call']:.2f} ms per model call "
        f"(target ≤ 0.5 ms); the floor, bare nats-py responders in the debate's shape: "
        f"{f['floor_ms_per_call']:.2f} ms; above it: "
        f"{f['overhead_ms_per_call'] - f['floor_ms_per_call']:.2f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--latency-ms", type=float, default=200.0, help="simulated model latency")
    parser.add_argument("--concurrent", type=int, default=50, help="debates at once")
    parser.add_argument("--repeats", type=int, default=5, help="samples of each single debate")
    parser.add_argument(
        "--quick", action="store_true", help="L = 100 ms, 3 samples, 20 at once (the CI log's form)"
    )
    parser.add_argument("--json", action="store_true", help="print raw figures as JSON")
    args = parser.parse_args()
    if args.quick:
        args.latency_ms, args.repeats, args.concurrent = 100.0, 3, 20
    receiver = OtlpReceiver().start()
    try:
        figures = {
            "defaults": asyncio.run(run(args.latency_ms, args.concurrent, args.repeats)),
            "otlp": asyncio.run(
                run(args.latency_ms, args.concurrent, args.repeats, receiver.grpc_endpoint)
            ),
        }
    finally:
        receiver.stop()
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    report("defaults (spans to local files)", figures["defaults"], args.repeats)
    report("OTLP (traces and metrics to a local OTLP receiver)", figures["otlp"], args.repeats)


if __name__ == "__main__":
    main()
