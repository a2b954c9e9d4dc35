"""Benchmark of a whole offline Diamond run against its debates alone, run beside it.

    python -m bench.bench_run [--runs 5] [--json]

Starts the embedded platform (`tekton up`: nats-server, 17 CIs, the stages service) with
the simulated model at zero latency and the hashing embedder, then measures, interleaved:
- a full run through all nine stages (`tekton.runs.start`, until RunFinished), the
  coordinator, the stages, JetStream events and artifacts on disk included;
- the baseline: the same nine debates asked of Rhetor directly, one after another.
The ratio is what the stage and run layer adds. Target: at most 2x the debates alone.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
import uuid
from typing import Any

import msgspec
import nats
from nats.js.api import DeliverPolicy

from bench.embedded import embedded_platform, nats_url
from tekton_common.runlog import run_subject
from tekton_common.stages import DIAMOND


async def one_run(nc: Any) -> float:
    js = nc.jetstream(timeout=30)
    run_id = uuid.uuid4().hex[:12]
    sub = await js.subscribe(
        run_subject(run_id), ordered_consumer=True, deliver_policy=DeliverPolicy.ALL
    )
    started = time.perf_counter()
    await nc.request(
        "tekton.runs.start",
        msgspec.json.encode({"goal": "Add rate limiting to the public API", "run_id": run_id}),
        timeout=30,
    )
    while True:
        event = json.loads((await sub.next_msg(timeout=60)).data)
        if event["type"] == "RunFinished.v1":
            break
        if event["type"] == "RunFailed.v1":
            raise RuntimeError(event["reason"])
    elapsed = time.perf_counter() - started
    await sub.unsubscribe()
    return elapsed


async def debates_only(nc: Any) -> float:
    started = time.perf_counter()
    for stage in DIAMOND:
        reply = await nc.request(
            "tekton.rhetor.debate",
            msgspec.json.encode(
                {
                    "prompt": "Goal: Add rate limiting to the public API",
                    "stage": stage,
                    "artifact_schema": stage,
                }
            ),
            timeout=60,
        )
        if json.loads(reply.data)["status"] != "approved":
            raise RuntimeError(f"{stage} debate blocked")
    return time.perf_counter() - started


async def measure(url: str, runs: int) -> dict[str, float]:
    nc = await nats.connect(url)
    try:
        await one_run(nc)  # warm up
        run_times, debate_times = [], []
        for _ in range(runs):
            run_times.append(await one_run(nc))
            debate_times.append(await debates_only(nc))
    finally:
        await nc.close()
    run, debates = statistics.median(run_times), statistics.median(debate_times)
    return {
        "run_s": run,
        "debates_s": debates,
        "ratio": run / debates,
        "outside_debates_share": (run - debates) / run,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="samples of each")
    parser.add_argument("--json", action="store_true", help="print raw figures as JSON")
    args = parser.parse_args()
    with embedded_platform(TEKTON_EMBEDDER="hashing") as (env, _tmp):
        figures = asyncio.run(measure(nats_url(env), args.runs))
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    print(
        "full Diamond run (9 stages, simulated model, zero latency, hashing embedder), "
        f"median of {args.runs}"
    )
    print(f"  tekton run (coordinator, stages, events, artifacts) {figures['run_s']:.3f} s")
    print(f"  the nine debates alone (baseline)                  {figures['debates_s']:.3f} s")
    print(
        f"  ratio {figures['ratio']:.2f}x (target ≤ 2x); share of the run outside the debates "
        f"{figures['outside_debates_share']:.0%}; outside model calls: all of it (zero "
        "model latency)"
    )


if __name__ == "__main__":
    main()
