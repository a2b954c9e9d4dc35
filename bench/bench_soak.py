"""Soak: memory of every process while the platform works for a while.

    python -m bench.bench_soak [--minutes 10] [--json]

Starts the embedded platform (`tekton up`, simulated model at 20 ms) and keeps it busy:
a stream of chats to every CI (32 at a time) and a run (plan and research) every 10 s.
Every 30 s it samples the resident memory of each process. The baseline is each
process's own memory after the first minute (warm: caches filled, the embedding model
loaded); the figure is its memory at the end against that, as a ratio. Target: no
Tekton process above 1.10x (flat); nats-server and Milvus are reported beside them and
grow with the data they keep.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

import msgspec
import nats
import psutil

from bench.embedded import embedded_platform, nats_url
from tekton_common.catalog import CATALOG

SERVERS = ("nats-server", "milvus")  # they grow with the data they keep, by design
SAMPLE_EVERY = 30.0
WARM_UP = 60.0


def rss_by_process(home: Any) -> dict[str, float]:
    """MiB resident per process `tekton up` started (from its pid files)."""
    sizes = {}
    for record in (home / "run").glob("*.json"):
        try:
            pid = json.loads(record.read_text())["pid"]
            sizes[record.stem] = psutil.Process(pid).memory_info().rss / 2**20
        except (OSError, ValueError, KeyError, psutil.Error):
            continue
    return sizes


async def chats(nc: Any, stop: float, counter: list[int]) -> None:
    n = 0
    while time.monotonic() < stop:
        spec = CATALOG[n % len(CATALOG)]
        n += 1
        await nc.request(f"tekton.ci.{spec.name}.chat", f"soak {n}".encode(), timeout=30)
        counter[0] += 1


async def runs(nc: Any, stop: float, counter: list[int]) -> None:
    while time.monotonic() < stop:
        ask = {"goal": f"Soak goal {counter[0]}", "to_stage": "research"}
        await nc.request("tekton.runs.start", msgspec.json.encode(ask), timeout=30)
        counter[0] += 1
        await asyncio.sleep(10)


async def soak(env: dict[str, str], home: Any, minutes: float) -> dict[str, Any]:
    nc = await nats.connect(nats_url(env))
    stop = time.monotonic() + minutes * 60
    done_chats, done_runs = [0], [0]
    workers = [asyncio.create_task(chats(nc, stop, done_chats)) for _ in range(32)]
    workers.append(asyncio.create_task(runs(nc, stop, done_runs)))
    started = time.monotonic()
    samples: list[tuple[float, dict[str, float]]] = []
    while time.monotonic() < stop:
        await asyncio.sleep(SAMPLE_EVERY)
        samples.append((time.monotonic() - started, rss_by_process(home / "home")))
    await asyncio.gather(*workers)
    await nc.close()
    warm = next(s for t, s in samples if t >= WARM_UP)
    last = samples[-1][1]
    ratios = {name: last[name] / warm[name] for name in warm if name in last}
    return {
        "minutes": minutes,
        "chats": done_chats[0],
        "runs": done_runs[0],
        "warm_mib": warm,
        "end_mib": last,
        "ratio": ratios,
        "worst": max(((k, v) for k, v in ratios.items() if k not in SERVERS), key=lambda kv: kv[1]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="how long to soak")
    parser.add_argument("--json", action="store_true", help="print raw figures as JSON")
    args = parser.parse_args()
    if args.minutes * 60 < WARM_UP + 2 * SAMPLE_EVERY:
        parser.error("soak at least 2 minutes (a warm sample and a later one)")
    with embedded_platform(TEKTON_SIMULATED_LATENCY_MS="20") as (env, tmp):
        figures = asyncio.run(soak(env, tmp, args.minutes))
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    print(
        f"soak {figures['minutes']:g} min: {figures['chats']} chats, {figures['runs']} runs; "
        "resident memory at the end against the same process after 1 min (baseline)"
    )
    for name, ratio in sorted(figures["ratio"].items(), key=lambda kv: -kv[1]):
        print(
            f"  {name:<18} {figures['warm_mib'][name]:7.1f} MiB → "
            f"{figures['end_mib'][name]:7.1f} MiB  {ratio:.3f}x"
        )
    name, worst = figures["worst"]
    verdict = "met" if worst <= 1.10 else "NOT met"
    print(f"worst Tekton process {name} {worst:.3f}x (target ≤ 1.10x: {verdict}); the servers")
    print("(nats-server, milvus) grow with what they store: usage records, run events, lessons")


if __name__ == "__main__":
    main()
