"""Load held: 1,000 concurrent chats from four requester processes at once, no reply lost
or handed to the wrong caller; 50 concurrent runs all finishing."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import nats
import pytest

from tests.e2e.test_fleet_lifecycle import Fleet
from tests.helpers import wait_for

REQUESTERS = 4
RUNS = 50
PER_REQUESTER = 250

pytestmark = pytest.mark.slow  # each starts the whole platform


def test_1000_concurrent_chats_from_several_processes(fleet: Fleet) -> None:
    url = f"nats://127.0.0.1:{fleet.nats_port}"
    args = [str(fleet.ci_port_base), str(PER_REQUESTER)]
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.faults.requester", url, *args, f"r{n}"],
            stdout=subprocess.PIPE,
            text=True,
        )
        for n in range(REQUESTERS)
    ]
    results = [json.loads(p.communicate(timeout=240)[0]) for p in procs]
    assert all(r["errors"] == [] for r in results), results
    assert sum(r["sent"] for r in results) == REQUESTERS * PER_REQUESTER
    assert sum(r["mismatched"] for r in results) == 0
    assert sum(r["ok"] for r in results) == REQUESTERS * PER_REQUESTER


def test_50_concurrent_runs_all_finish(fleet: Fleet) -> None:
    async def start_all() -> list[dict]:
        nc = await nats.connect(f"nats://127.0.0.1:{fleet.nats_port}")
        try:
            replies = await asyncio.gather(
                *(
                    nc.request(
                        "tekton.runs.start",
                        json.dumps({"goal": f"Concurrent goal {n}", "to_stage": "plan"}).encode(),
                        timeout=30,
                    )
                    for n in range(RUNS)
                )
            )
        finally:
            await nc.close()
        return [json.loads(r.data) for r in replies]

    started = asyncio.run(start_all())
    ids = {s["run_id"] for s in started}
    assert len(ids) == RUNS

    def finished() -> bool:
        listed = json.loads(fleet.run("runs", "list", "--json").stdout)
        done = {r["run_id"] for r in listed if r["status"] == "finished"}
        return ids <= done

    assert wait_for(finished, 240, interval=2)
    kept = fleet.home / "artifacts"  # the stages service's own artifacts root
    assert all((kept / run_id / "plan.json").exists() for run_id in ids)
