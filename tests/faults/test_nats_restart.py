"""nats-server dies mid-run and comes back: every service reconnects by itself and the
run finishes, with every event kept."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.e2e.test_fleet_lifecycle import Fleet
from tests.helpers import tcp_open, wait_for


def test_run_finishes_across_a_nats_restart(tmp_path: Path) -> None:
    fleet = Fleet(tmp_path / "home")
    fleet.env["TEKTON_SIMULATED_LATENCY_MS"] = "150"  # a run of a few seconds
    # a turn whose request or reply was inside nats-server when it died is lost; Rhetor
    # asks again after the turn timeout (120 s by default, for real models)
    fleet.env["TEKTON_DEBATE_TURN_TIMEOUT"] = "8"
    try:
        assert fleet.run("up").returncode == 0
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tekton_cli.main",
                "run",
                "--goal",
                "Survive NATS",
                "--to",
                "research",
                "--output",
                str(tmp_path),
                "--json",
            ],
            env=fleet.env,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None
        run_id = json.loads(proc.stdout.readline())["run_id"]
        for line in proc.stdout:  # wait until the plan debate is under way
            if json.loads(line)["type"] == "DebateTurn.v1":
                break
        killed_at = time.time()
        record = fleet.home / "run" / "nats-server.json"
        nats_pid = json.loads(record.read_text())["pid"]
        os.kill(nats_pid, signal.SIGKILL)
        # the supervisor brings nats-server back on the same store
        assert wait_for(
            lambda: json.loads(record.read_text())["pid"] != nats_pid and tcp_open(fleet.nats_port),
            20,
        )
        proc.kill()
        proc.wait()
        watched = fleet.run("runs", "watch", run_id, "--json", timeout=120)
        events = [json.loads(line) for line in watched.stdout.splitlines()]
        assert events and events[-1]["type"] == "RunFinished.v1", watched.stdout[-2000:]
        assert [e["seq"] for e in events] == list(range(1, len(events) + 1))  # none lost
        finished = [e["stage"] for e in events if e["type"] == "StageFinished.v1"]
        assert finished == ["plan", "research"]
        assert all(e["ts"] > killed_at for e in events if e["type"] == "StageFinished.v1")
        status = fleet.json("status")
        assert all(c["active"] for c in status["cis"])  # everyone reconnected
    finally:
        fleet.run("down", "--grace", "3")
