"""Benchmark of the CI fleet against baselines measured in the same run.

    python -m bench.bench_fleet [--requests N] [--json]

1. NATS chat round trip to a specialist (simulated model, zero latency) against a raw
   nats-py echo responder and, where installed, the same echo through FastStream:
   median and p99 of sequential requests, and throughput with 50 in flight.
2. The socket path: a specialist's CI port against a raw asyncio TCP line echo.
3. `tekton up` of the whole fleet until every CI is ready, and resident memory per CI
   process against a bare nats-py responder.
Every responder runs in its own process; targets are printed beside the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import cast

import nats
import psutil

from tests.helpers import CIProc, Env, NatsServer, free_base, free_port

Call = Callable[[], Awaitable[object]]


def spawn_baseline(kind: str, target: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.echo_servers", kind, target],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    for line in proc.stdout:  # frameworks may log before the responder says ready
        if line.strip() == "ready":
            return proc
    raise RuntimeError(f"{kind} baseline did not start")


async def latency(call: Call, n: int) -> tuple[float, float]:
    for _ in range(min(200, n)):
        await call()  # warm up
    samples = []
    for _ in range(n):
        t = time.perf_counter()
        await call()
        samples.append(time.perf_counter() - t)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.99) - 1]


async def throughput(call: Call, total: int, inflight: int = 50) -> float:
    remaining = total

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            await call()

    t = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(inflight)))
    return total / (time.perf_counter() - t)


async def measure(call: Call, n: int) -> dict[str, float]:
    median, p99 = await latency(call, n)
    return {
        "median_ms": median * 1e3,
        "p99_ms": p99 * 1e3,
        "throughput_rps": await throughput(call, n * 3),
    }


async def bus_section(url: str, n: int) -> dict[str, dict[str, float]]:
    nc = await nats.connect(url)
    results: dict[str, dict[str, float]] = {}
    payload = b'{"content":"ping"}'

    def requester(subject: str) -> Call:
        return lambda: nc.request(subject, payload, timeout=10)

    async def responding(subject: str) -> None:
        # a responder may say "ready" a moment before the server routes to it
        for _ in range(100):
            try:
                await nc.request(subject, payload, timeout=1)
                return
            except (nats.errors.NoRespondersError, nats.errors.TimeoutError):
                await asyncio.sleep(0.05)
        raise RuntimeError(f"nothing answers on {subject}")

    results["tekton"] = await measure(requester("tekton.ci.apollo.chat"), n)
    raw = spawn_baseline("raw-nats", url)
    try:
        await responding("bench.echo")
        results["raw nats-py"] = await measure(requester("bench.echo"), n)
    finally:
        raw.kill()
    try:
        import faststream  # noqa: F401, PLC0415 - optional baseline
    except ImportError:
        pass
    else:
        fs = spawn_baseline("faststream", url)
        try:
            await responding("bench.echo")
            results["faststream"] = await measure(requester("bench.echo"), n)
        finally:
            fs.kill()
    await nc.close()
    return results


async def socket_section(ci_port: int, n: int) -> dict[str, dict[str, float]]:
    async def line_caller(port: int, line: bytes) -> Call:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)

        async def call() -> bytes:
            writer.write(line)
            return await reader.readline()

        return call

    line = b'{"type":"chat","content":"ping"}\n'
    results = {}
    median, p99 = await latency(await line_caller(ci_port, line), n)
    results["tekton"] = {"median_ms": median * 1e3, "p99_ms": p99 * 1e3}
    port = free_port()
    echo = spawn_baseline("tcp", str(port))
    try:
        median, p99 = await latency(await line_caller(port, line), n)
        results["raw TCP echo"] = {"median_ms": median * 1e3, "p99_ms": p99 * 1e3}
    finally:
        echo.kill()
    return results


def fleet_section(home: Path) -> dict[str, float]:
    base = free_base(181)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TEKTON_")}
    env.update(
        {
            "TEKTON_HOME": str(home),
            "TEKTON_NATS_PORT": str(free_port()),
            "TEKTON_PORT_BASE": str(base),
            "TEKTON_CI_PORT_BASE": str(base + 100),
        }
    )
    tekton = [sys.executable, "-m", "tekton_cli.main"]
    t = time.perf_counter()
    subprocess.run([*tekton, "up"], env=env, check=True, capture_output=True)
    up_seconds = time.perf_counter() - t
    try:
        out = subprocess.run(
            [*tekton, "status", "--json"], env=env, check=True, capture_output=True, text=True
        ).stdout
        rss = [c["memory_mb"] for c in json.loads(out)["cis"]]
    finally:
        subprocess.run([*tekton, "down"], env=env, check=True, capture_output=True)
    return {
        "up_seconds": up_seconds,
        "rss_mb_max": max(rss),
        "rss_mb_median": statistics.median(rss),
    }


def bare_rss(url: str) -> float:
    proc = spawn_baseline("raw-nats", url)
    try:
        return psutil.Process(proc.pid).memory_info().rss / 2**20
    finally:
        proc.kill()


def ratio_table(title: str, results: dict[str, dict[str, float]], base: str) -> list[str]:
    lines = [
        f"\n{title}",
        f"{'':16}{'median ms':>10}{'p99 ms':>10}{'req/s':>10}{'median×':>9}{'req/s×':>8}",
    ]
    ref = results[base]
    for name, r in results.items():
        rps = r.get("throughput_rps")
        lines.append(
            f"{name:16}{r['median_ms']:10.3f}{r['p99_ms']:10.3f}"
            f"{(f'{rps:10.0f}' if rps else ' ' * 10)}{r['median_ms'] / ref['median_ms']:9.2f}"
            + (f"{rps / ref['throughput_rps']:8.2f}" if rps else "")
        )
    return lines


async def run(n: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        server = NatsServer(Path(tmp) / "nats").start()
        env = Env(
            home=Path(tmp) / "home", nats_url=server.url, extra={"TEKTON_REGISTER_AI": "false"}
        )
        apollo = CIProc(env, "apollo").wait_ready()
        try:
            bus = await bus_section(server.url, n)
            sock = await socket_section(apollo.ci_port, n)
            rss_bare = bare_rss(server.url)
        finally:
            apollo.terminate()
            server.stop()
        fleet = fleet_section(Path(tmp) / "fleet")
    return {"bus": bus, "socket": sock, "fleet": fleet, "bare_responder_rss_mb": rss_bare}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000, help="sequential samples")
    parser.add_argument("--json", action="store_true", help="print raw figures as JSON")
    args = parser.parse_args()
    figures = asyncio.run(run(args.requests))
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    bus = cast(dict[str, dict[str, float]], figures["bus"])
    sock = cast(dict[str, dict[str, float]], figures["socket"])
    fleet = cast(dict[str, float], figures["fleet"])
    out = ratio_table("NATS chat round trip (ratios against raw nats-py)", bus, "raw nats-py")
    out.append("targets: median ≤ 1.50× raw, throughput ≥ 0.50× raw")
    out += ratio_table("Socket round trip (ratios against raw TCP line echo)", sock, "raw TCP echo")
    out.append("target: median ≤ 1.50× raw TCP")
    out.append(f"\ntekton up, 17 CIs ready: {fleet['up_seconds']:.2f}s (target ≤ 10 s)")
    out.append(
        f"RSS per CI process: median {fleet['rss_mb_median']:.1f} MB, max "
        f"{fleet['rss_mb_max']:.1f} MB (target ≤ 60 MB); bare nats-py responder "
        f"{figures['bare_responder_rss_mb']:.1f} MB"
    )
    print("\n".join(out))


if __name__ == "__main__":
    main()
