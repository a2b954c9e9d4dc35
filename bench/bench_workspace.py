"""Benchmark of workspaces and the checks' sandbox, against baselines run beside them.

    python -m bench.bench_workspace [--mib 50] [--runs 20] [--json]

1. A git repository of `--mib` MiB (incompressible files, one commit plus uncommitted
   work) packed into a bundle, put in a real nats-server's object store, fetched and
   checked out as a worktree on the other side; against the baseline of copying the same
   tree with ``cp -r`` (what a shared disk would cost) and a bare ``git bundle create``.
2. The sandbox's start overhead: a check (``true``, then a small Python program) run
   `--runs` times under bubblewrap against the same command as a bare subprocess (the
   same code path with ``TEKTON_SANDBOX=none``), interleaved.
Ratios are printed beside each figure; nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import nats

from tekton_common.workspace import IDENTITY, pack, upload
from tekton_stages import sandbox
from tekton_stages.worktrees import Worktrees
from tests.helpers import NatsServer


def make_repo(root: Path, mib: int) -> Path:
    """A git repository of about `mib` MiB: 1 MiB files, committed but for the last."""
    repo = root / "repo"
    repo.mkdir()
    env = {**os.environ, **IDENTITY}
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    for number in range(mib):
        (repo / f"data{number:03}.bin").write_bytes(os.urandom(2**20))
    subprocess.run(["git", "-C", str(repo), "add", "-A"], check=True, env=env)
    subprocess.run(["git", "-C", str(repo), "commit", "-q", "-m", "data"], check=True, env=env)
    (repo / "uncommitted.txt").write_text("work in progress\n")
    return repo


def timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


async def workspace_round_trip(root: Path, repo: Path, url: str) -> dict[str, float]:
    nc = await nats.connect(url)
    try:
        js = nc.jetstream(timeout=60)
        bundle = root / "ws.bundle"
        started = time.perf_counter()
        kind = await asyncio.to_thread(pack, repo, bundle, 2**34)
        packed = time.perf_counter()
        ref = await upload(js, "bench/source", bundle, kind, "bench")
        uploaded = time.perf_counter()
        worktree = await Worktrees(js, root / "scratch").checkout(ref, "bench", "attempt-1")
        done = time.perf_counter()
        assert (worktree / "uncommitted.txt").exists()
    finally:
        await nc.close()
    return {
        "pack_s": packed - started,
        "upload_s": uploaded - packed,
        "materialise_s": done - uploaded,
        "total_s": done - started,
        "size_mib": ref.size / 2**20,
    }


async def sandbox_overhead(root: Path, runs: int) -> dict[str, dict[str, float]]:
    worktree = root / "wt"
    worktree.mkdir()
    found: dict[str, dict[str, float]] = {}
    for label, command in (("true", "true"), ("python", f"{sys.executable} -c 'print(1)'")):
        boxed, bare = [], []
        for _ in range(runs):  # interleaved, so both see the same machine
            os.environ[sandbox.SANDBOX_ENV] = "bwrap"
            boxed.append((await sandbox.run(command, worktree)).duration_s)
            os.environ[sandbox.SANDBOX_ENV] = "none"  # the same path, a bare subprocess
            bare.append((await sandbox.run(command, worktree)).duration_s)
        os.environ.pop(sandbox.SANDBOX_ENV)
        found[label] = {
            "bwrap_ms": statistics.median(boxed) * 1000,
            "bare_ms": statistics.median(bare) * 1000,
        }
    return found


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mib", type=int, default=50, help="repository size")
    parser.add_argument("--runs", type=int, default=20, help="sandbox runs per command")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        repo = make_repo(root, args.mib)
        copy_s = timed(lambda: shutil.copytree(repo, root / "copy"))
        bundle_s = timed(
            lambda: subprocess.run(
                ["git", "-C", str(repo), "bundle", "create", "-q", str(root / "b"), "--all"],
                check=True,
            )
        )
        server = NatsServer(root / "nats").start()
        try:
            trip = await workspace_round_trip(root, repo, server.url)
        finally:
            server.stop()
        boxes = await sandbox_overhead(root, args.runs)
    figures = {"workspace": trip, "copy_s": copy_s, "bare_bundle_s": bundle_s, "sandbox": boxes}
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    print(f"workspace of {trip['size_mib']:.1f} MiB (git bundle through the object store):")
    print(
        f"  pack {trip['pack_s']:.2f}s, upload {trip['upload_s']:.2f}s, materialise "
        f"{trip['materialise_s']:.2f}s: total {trip['total_s']:.2f}s"
    )
    print(
        f"  baselines: cp -r {copy_s:.2f}s (x{trip['total_s'] / copy_s:.1f}), bare git bundle "
        f"{bundle_s:.2f}s (pack x{trip['pack_s'] / bundle_s:.1f})"
    )
    print(f"sandbox start overhead (median of {args.runs}):")
    for label, row in boxes.items():
        boxed, bare = row["bwrap_ms"], row["bare_ms"]
        print(f"  {label}: bwrap {boxed:.1f} ms, bare {bare:.1f} ms (x{boxed / bare:.1f})")


if __name__ == "__main__":
    asyncio.run(main())
