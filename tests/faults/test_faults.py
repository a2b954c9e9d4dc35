"""Faults survived on real servers, mid-run: each test starts the platform, starts a run,
breaks something while the plan debate is under way, and checks that the run finishes
with every event kept."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import asyncpg
import pytest

from tekton_cli.postgres import embedded_server
from tests.e2e.test_fleet_lifecycle import Fleet
from tests.helpers import tcp_open, wait_for

pytestmark = pytest.mark.slow  # each starts the whole platform


def start_run_until_debating(fleet: Fleet, tmp_path: Path) -> str:
    """Start a run (plan and research) and return once the plan debate has a turn."""
    command = ["run", "--goal", "Survive faults", "--to", "research", "--output", str(tmp_path)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "tekton_cli.main", *command, "--json"],
        env=fleet.env,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    run_id = str(json.loads(proc.stdout.readline())["run_id"])
    for line in proc.stdout:
        if json.loads(line)["type"] == "DebateTurn.v1":
            break
    proc.kill()  # the run goes on without its command line
    proc.wait()
    return run_id


def finished_run(fleet: Fleet, run_id: str, after: float) -> list[dict]:
    """The run's whole event log once it finished; checks nothing was lost."""
    watched = fleet.run("runs", "watch", run_id, "--json", timeout=120)
    events = [json.loads(line) for line in watched.stdout.splitlines()]
    assert events and events[-1]["type"] == "RunFinished.v1", (
        watched.stdout[-2000:] + watched.stderr
    )
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))  # none lost
    finished = [e for e in events if e["type"] == "StageFinished.v1"]
    assert [e["stage"] for e in finished] == ["plan", "research"]
    assert all(e["ts"] > after for e in finished)  # the fault came before they finished
    return events


def pid(fleet: Fleet, name: str) -> int:
    return int(json.loads((fleet.home / "run" / f"{name}.json").read_text())["pid"])


def test_run_finishes_across_a_nats_restart(fleet: Fleet, tmp_path: Path) -> None:
    run_id = start_run_until_debating(fleet, tmp_path)
    killed_at, old = time.time(), pid(fleet, "nats-server")
    os.kill(old, signal.SIGKILL)
    # the supervisor brings nats-server back on the same store
    assert wait_for(lambda: pid(fleet, "nats-server") != old and tcp_open(fleet.nats_port), 20)
    finished_run(fleet, run_id, killed_at)
    assert all(c["active"] for c in fleet.json("status")["cis"])  # everyone reconnected


def test_run_finishes_when_a_debater_is_killed(fleet: Fleet, tmp_path: Path) -> None:
    run_id = start_run_until_debating(fleet, tmp_path)
    killed_at, old = time.time(), pid(fleet, "athena-ci")  # the plan's skeptic
    os.kill(old, signal.SIGKILL)
    events = finished_run(fleet, run_id, killed_at)
    athena = next(c for c in fleet.json("status")["cis"] if c["ci"] == "athena-ci")
    assert athena["restarts"] == 1 and athena["pid"] != old  # the supervisor restarted it
    skeptic = [
        e["turn"] for e in events if e["type"] == "DebateTurn.v1" and e["turn"]["ci"] == "athena-ci"
    ]
    assert any(t.get("position") for t in skeptic if t["started_at"] > killed_at)


def _recorded(fleet: Fleet, run_id: str) -> list[dict]:
    listed = json.loads(fleet.run("runs", "list", "--json").stdout)
    return [r for r in listed if r["run_id"] == run_id and r.get("source") == "postgresql"]


def test_history_is_complete_after_postgres_stops_mid_run(fleet: Fleet, tmp_path: Path) -> None:
    run_id = start_run_until_debating(fleet, tmp_path)
    stopped_at = time.time()
    embedded_server(fleet.home / "pg", cleanup_mode="stop").cleanup()  # PostgreSQL goes down
    try:
        events = finished_run(fleet, run_id, stopped_at)  # the run does not need it
    finally:
        fleet.up()  # and it comes back
    assert wait_for(
        lambda: _recorded(fleet, run_id) and _recorded(fleet, run_id)[0]["status"] == "finished", 60
    )
    dsn = json.loads((fleet.home / "run" / "postgres.json").read_text())["dsn"]

    async def count() -> int:
        conn = await asyncpg.connect(dsn)
        try:
            return int(await conn.fetchval("SELECT count(*) FROM events WHERE run_id = $1", run_id))
        finally:
            await conn.close()

    assert wait_for(lambda: asyncio.run(count()) == len(events), 30)
