"""Benchmark of the CI fleet against baselines measured in the same run.

    python -m bench.bench_fleet [--requests N] [--json]

1. NATS chat round trip to a specialist (simulated model, zero latency) against a raw
   nats-py echo responder and, where installed, the same echo through FastStream:
   median and p99 of sequential requests, and throughput with 50 in flight.
2. The socket path: a specialist's CI port against a raw asyncio TCP line echo.
3. `tekton up` of the whole platform (and of its 17 CIs) until every process is ready,
   and resident memory per CI process against a bare nats-py responder.
Both configurations are measured in one run, interleaved: the shipped defaults (Apollo:
telemetry on, spans to local files) and an OTLP exporter for traces and metrics
(Athena, sending to a local OTLP receiver). Every responder runs in its own process;
targets are printed beside the figures. `--quick` is the short form CI prints.

On a machine with two or more cores the client is pinned to CPU 0 and every server
(nats-server, the CI, each baseline) to CPU 1. Round trips on loopback are dominated
by cross-core wake-ups whose cost depends on where the scheduler happens to place the
processes (in a VM it varies twofold between runs); pinning makes every contender pay
the same, so the ratios compare the software, not the placement.
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

from tests.fakes.otlp_receiver import OtlpReceiver
from tests.helpers import CIProc, Env, NatsServer, free_base, free_port

Call = Callable[[], Awaitable[object]]


def pin_servers(*pids: int) -> None:
    """Client on CPU 0, servers on CPU 1 (see the module docstring)."""
    if (os.cpu_count() or 1) < 2:
        return
    psutil.Process().cpu_affinity([0])
    for pid in pids:
        psutil.Process(pid).cpu_affinity([1])


def unpin() -> None:
    """Let this process (and what it starts) run on every core again."""
    if (os.cpu_count() or 1) >= 2:
        psutil.Process().cpu_affinity([])


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
            pin_servers(proc.pid)
            return proc
    raise RuntimeError(f"{kind} baseline did not start")


async def compare(calls: dict[str, Call], n: int, rounds: int = 10) -> dict[str, dict[str, float]]:
    """Median and p99 of `n` sequential calls per contender, measured in interleaved rounds
    so that drift or load on the machine hits every contender alike."""
    samples: dict[str, list[float]] = {name: [] for name in calls}
    for call in calls.values():
        for _ in range(min(200, n)):
            await call()  # warm up
    for _ in range(rounds):
        for name, call in calls.items():
            for _ in range(n // rounds):
                t = time.perf_counter()
                await call()
                samples[name].append(time.perf_counter() - t)
    out = {}
    for name, values in samples.items():
        values.sort()
        out[name] = {
            "median_ms": statistics.median(values) * 1e3,
            "p99_ms": values[int(len(values) * 0.99) - 1] * 1e3,
        }
    return out


async def throughput(call: Call, total: int, inflight: int = 50) -> float:
    """Requests per second with `inflight` requests outstanding at all times."""
    remaining = total

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            await call()

    t = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(inflight)))
    return total / (time.perf_counter() - t)


async def bus_section(url: str, n: int) -> dict[str, dict[str, float]]:
    nc = await nats.connect(url)
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

    subjects = {
        "tekton": "tekton.ci.apollo.chat",
        "tekton (OTLP)": "tekton.ci.athena.chat",
        "raw nats-py": "bench.echo.raw",
    }
    procs = [spawn_baseline("raw-nats", url), spawn_baseline("micro", url)]
    subjects["nats-py micro"] = "bench.echo.micro"  # the library a CI is built on
    try:
        import faststream  # noqa: F401, PLC0415 - optional baseline
    except ImportError:
        pass
    else:
        procs.append(spawn_baseline("faststream", url))
        subjects["faststream"] = "bench.echo.faststream"
    try:
        for subject in subjects.values():
            await responding(subject)
        results = await compare({k: requester(v) for k, v in subjects.items()}, n)
        for _ in range(2):  # best of two throughput runs each, interleaved
            for name, subject in subjects.items():
                rps = await throughput(requester(subject), n * 2)
                results[name]["throughput_rps"] = max(rps, results[name].get("throughput_rps", 0.0))
    finally:
        for proc in procs:
            proc.kill()
        await nc.close()
    return results


async def socket_section(ci_port: int, otlp_port: int, n: int) -> dict[str, dict[str, float]]:
    async def line_caller(port: int, line: bytes) -> Call:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)

        async def call() -> bytes:
            writer.write(line)
            return await reader.readline()

        return call

    line = b'{"type":"chat","content":"ping"}\n'
    port, proto_port = free_port(), free_port()
    echo = spawn_baseline("tcp", str(port))
    proto = spawn_baseline("tcp-protocol", str(proto_port))
    try:
        return await compare(
            {
                "tekton": await line_caller(ci_port, line),
                "tekton (OTLP)": await line_caller(otlp_port, line),
                "raw TCP echo": await line_caller(port, line),
                "protocol echo": await line_caller(proto_port, line),
            },
            n,
        )
    finally:
        echo.kill()
        proto.kill()


def fleet_section(home: Path) -> dict[str, float]:
    base = free_base(181)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TEKTON_", "ANTHROPIC_"))}
    env.update(
        {
            "TEKTON_HOME": str(home),
            "TEKTON_NATS_PORT": str(free_port()),
            "TEKTON_MILVUS_PORT": str(free_port()),
            "TEKTON_API_PORT": str(free_port()),
            "TEKTON_PORT_BASE": str(base),
            "TEKTON_CI_PORT_BASE": str(base + 100),
        }
    )
    tekton = [sys.executable, "-m", "tekton_cli.main"]
    t = time.perf_counter()
    started = subprocess.run(
        [*tekton, "up", "--json"], env=env, check=True, capture_output=True, text=True
    )
    up_seconds = time.perf_counter() - t
    cis = [r for r in json.loads(started.stdout) if r["ci"].endswith("-ci")]
    try:
        out = subprocess.run(
            [*tekton, "status", "--json"], env=env, check=True, capture_output=True, text=True
        ).stdout
        rss = [c["memory_mb"] for c in json.loads(out)["cis"]]
    finally:
        subprocess.run([*tekton, "down"], env=env, check=True, capture_output=True)
    return {
        "up_seconds": up_seconds,
        # the CIs start together (beside PostgreSQL and Milvus); the slowest one's time
        "cis_seconds": max(r["seconds"] for r in cis),
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


async def run(n: int, quick: bool) -> dict[str, object]:
    receiver = OtlpReceiver().start()
    with tempfile.TemporaryDirectory() as tmp:
        server = NatsServer(Path(tmp) / "nats").start()
        env = Env(
            home=Path(tmp) / "home", nats_url=server.url, extra={"TEKTON_REGISTER_AI": "false"}
        )
        otlp = {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.grpc_endpoint}
        apollo = CIProc(env, "apollo").wait_ready()
        athena = CIProc(env, "athena", extra_env=otlp).wait_ready()
        pin_servers(apollo.proc.pid, athena.proc.pid, server.proc.pid)  # type: ignore[union-attr]
        try:
            bus = await bus_section(server.url, n)
            sock = await socket_section(apollo.ci_port, athena.ci_port, n)
            rss_bare = bare_rss(server.url)
        finally:
            apollo.terminate()
            athena.terminate()
            server.stop()
            receiver.stop()
        unpin()  # the fleet measurement runs on every core, as a user's would
        fleet = {} if quick else fleet_section(Path(tmp) / "fleet")
    return {"bus": bus, "socket": sock, "fleet": fleet, "bare_responder_rss_mb": rss_bare}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000, help="sequential samples")
    parser.add_argument(
        "--quick", action="store_true", help="500 samples and no `tekton up` (the CI log's form)"
    )
    parser.add_argument("--json", action="store_true", help="print raw figures as JSON")
    args = parser.parse_args()
    figures = asyncio.run(run(500 if args.quick else args.requests, args.quick))
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    bus = cast(dict[str, dict[str, float]], figures["bus"])
    sock = cast(dict[str, dict[str, float]], figures["socket"])
    fleet = cast(dict[str, float], figures["fleet"])
    out = ratio_table("NATS chat round trip (ratios against raw nats-py)", bus, "raw nats-py")
    out.append("targets: median ≤ 1.20× raw, throughput ≥ 0.70× raw")
    out += ratio_table("Socket round trip (ratios against raw TCP line echo)", sock, "raw TCP echo")
    out.append(
        "target: median ≤ 1.30× raw TCP (the streams readline echo); the protocol"
        " echo, which parses nothing, is the floor"
    )
    if fleet:
        out.append(
            f"\ntekton up: the 17 CIs ready in {fleet['cis_seconds']:.2f}s (target ≤ 4 s); the "
            f"whole platform (PostgreSQL, Milvus, stages, API too) {fleet['up_seconds']:.2f}s"
        )
        out.append(
            f"RSS per CI process: median {fleet['rss_mb_median']:.1f} MB, max "
            f"{fleet['rss_mb_max']:.1f} MB (target ≤ 40 MB); bare nats-py responder "
            f"{figures['bare_responder_rss_mb']:.1f} MB"
        )
    print("\n".join(out))


if __name__ == "__main__":
    main()
