"""`tekton up` / `status` / `ask` / `team` / `ci` / `down` end to end, as a user runs them."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import nats
import psutil
import pytest

from tekton_common.catalog import CATALOG, get_ci
from tekton_common.client import ai_send
from tests.helpers import free_base, free_port, tcp_open, wait_for

TEKTON = [sys.executable, "-m", "tekton_cli.main"]
SCHEMAS = {
    verb: json.loads(
        (Path(__file__).parent.parent / "schemas" / f"micro_v1_{verb}.json").read_text()
    )
    for verb in ("ping", "info", "stats")
}


class Fleet:
    def __init__(self, home: Path) -> None:
        base = free_base(181)
        self.nats_port = free_port()
        self.milvus_port = free_port()
        self.api_port = free_port()
        self.mcp_port = free_port()
        self.port_base, self.ci_port_base = base, base + 100
        self.env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("TEKTON_", "ANTHROPIC_", "OPENAI_"))
        }
        self.env.update(
            {
                "TEKTON_HOME": str(home),
                "TEKTON_NATS_PORT": str(self.nats_port),
                "TEKTON_MILVUS_PORT": str(self.milvus_port),
                "TEKTON_API_PORT": str(self.api_port),
                "TEKTON_MCP_PORT": str(self.mcp_port),
                "TEKTON_PORT_BASE": str(base),
                "TEKTON_CI_PORT_BASE": str(base + 100),
                "TEKTON_HEARTBEAT_INTERVAL": "0.5",
                "TEKTON_STALE_AFTER": "2",
            }
        )
        self.home = home

    def run(
        self, *args: str, stdin: str | None = None, timeout: float = 90
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*TEKTON, *args],
            env=self.env,
            input=stdin,
            text=True,
            capture_output=True,
            timeout=timeout,
            check=False,
        )

    def up(self, *names: str) -> subprocess.CompletedProcess[str]:
        """`tekton up`, which must succeed; a failure shows what it printed."""
        done = self.run("up", *names, timeout=300)  # each batch may take its 90 s
        assert done.returncode == 0, done.stdout + done.stderr
        return done

    def json(self, *args: str) -> object:
        result = self.run(*args, "--json")
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    def ports(self) -> list[int]:
        ci_ports = [
            p
            for s in CATALOG
            for p in (s.ci_port(self.ci_port_base), s.component_port(self.port_base))
        ]
        return [*ci_ports, self.port_base + 91, self.api_port]  # the stages process, the API


@contextlib.contextmanager
def running(home: Path, **env: str) -> Iterator[Fleet]:
    """The whole platform started under `home` with `env`, and stopped afterwards, also
    when `up` fails half way."""
    fleet = Fleet(home)
    fleet.env.update(env)
    try:
        fleet.up()
        yield fleet
    finally:
        fleet.run("down", "--grace", "3")


@pytest.fixture
def fleet(tmp_path: Path):
    f = Fleet(tmp_path / "home")
    yield f
    f.run("down", "--grace", "3")


def test_up_status_talk_down(fleet: Fleet) -> None:
    up = fleet.up()
    assert "19/19 processes ready" in up.stdout  # 17 CIs, the stages process and the API
    assert up.stdout.strip().splitlines()[-2].startswith("numa-ci")  # Numa started last

    status = fleet.json("status")
    assert status["nats_reachable"] and status["registry"] == "kv"
    assert len(status["cis"]) == 17
    for ci in status["cis"]:
        assert ci["running"] and ci["registered"] and ci["active"], ci
        assert ci["model"] == "simulated" and ci["memory_mb"] > 0 and ci["pid"]
    pids = {ci["ci"]: ci["pid"] for ci in status["cis"]}
    nats_pid = json.loads((fleet.home / "run" / "nats-server.json").read_text())["pid"]

    # every CI answers on its socket port and on NATS
    async def talk() -> tuple[list[str], list[dict]]:
        socket_replies = await asyncio.gather(
            *(ai_send(s.name, "roll call", port=s.ci_port(fleet.ci_port_base)) for s in CATALOG)
        )
        nc = await nats.connect(f"nats://127.0.0.1:{fleet.nats_port}")
        try:
            bus = await asyncio.gather(
                *(nc.request(f"tekton.ci.{s.name}.chat", b"hi", timeout=5) for s in CATALOG)
            )
        finally:
            await nc.close()
        return socket_replies, [json.loads(m.data) for m in bus]

    socket_replies, bus_replies = asyncio.run(talk())
    assert all("simulated" in r for r in socket_replies)
    assert sorted(r["ai_id"] for r in bus_replies) == sorted(str(s.ci_id) for s in CATALOG)

    ask = fleet.run("ask", "athena", "Review", stdin="def f(): pass\n")
    assert ask.returncode == 0 and "Review def f(): pass" in ask.stdout, ask.stderr
    streamed = fleet.run("ask", "nous", "--stream", "--socket", "go on")
    assert streamed.returncode == 0 and "go on" in streamed.stdout
    team = fleet.run("team", "who is here?", "--deadline", "3", "--json")
    assert sorted(json.loads(line)["ai_id"] for line in team.stdout.splitlines()) == sorted(
        str(s.ci_id) for s in CATALOG
    )
    for command, verb in (("ls", "ping"), ("info", "info"), ("stats", "stats")):
        replies = fleet.json("ci", command)
        assert sorted(r["name"] for r in replies) == sorted(
            [*(str(s.ci_id) for s in CATALOG), "tekton-stages"]
        )
        for reply in replies:
            jsonschema.validate(reply, SCHEMAS[verb])
    stats = fleet.json("ci", "stats", "athena")
    chat = next(e for e in stats[0]["endpoints"] if e["name"] == "chat")
    assert chat["num_requests"] >= 2

    # memory: Milvus reachable once the stages service has loaded its embedder
    assert wait_for(lambda: fleet.json("status")["memory"]["reachable"], 60)
    assert fleet.json("status")["memory"]["lessons"] == 0

    unknown = fleet.run("ask", "zeus", "hi")
    assert unknown.returncode == 1 and "unknown CI 'zeus'" in unknown.stderr

    # a CI killed outright is restarted by the supervisor; status and an event say so
    async def killed_and_back() -> dict:
        nc = await nats.connect(f"nats://127.0.0.1:{fleet.nats_port}")
        try:
            sub = await nc.subscribe("tekton.fleet.events")
            os.kill(pids["metis-ci"], signal.SIGKILL)
            msg = await sub.next_msg(timeout=10)
            return json.loads(msg.data)
        finally:
            await nc.close()

    event = asyncio.run(killed_and_back())
    assert event["type"] == "process.restarted" and event["name"] == "metis-ci"

    def metis() -> dict:
        return next(c for c in fleet.json("status")["cis"] if c["ci"] == "metis-ci")

    assert wait_for(
        lambda: metis()["active"] and metis()["pid"] not in (None, pids["metis-ci"]), 20
    )
    assert metis()["restarts"] == 1 and metis()["supervision"] == "running"
    assert "1 (running)" in fleet.run("status").stdout
    pids["metis-ci"] = metis()["pid"]

    supervisor_pid = fleet.json("status")["supervisor_pid"]
    down = fleet.run("down")
    assert down.returncode == 0, down.stderr
    assert down.stdout.splitlines()[0].startswith("tekton-supervisor")  # it goes first
    assert down.stdout.splitlines()[1].startswith("numa-ci")  # then Numa
    for pid in [*pids.values(), nats_pid, supervisor_pid]:
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == "zombie"
    assert not [p for p in fleet.ports() if tcp_open(p)]
    assert not tcp_open(fleet.nats_port) and not tcp_open(fleet.milvus_port)
    assert list((fleet.home / "registry").glob("*.json")) == []
    assert list((fleet.home / "run").glob("*.json")) == []
    for name in ("tekton-stages", "tekton-api", "rhetor-ci", "numa-ci"):  # stopped cleanly
        log = (fleet.home / "logs" / f"{name}.log").read_text()
        assert '"level": "error"' not in log and "drain failed" not in log, name
    after = fleet.json("status")
    assert not after["nats_reachable"]
    assert not any(ci["running"] or ci["registered"] for ci in after["cis"])


def test_partial_up_and_down(fleet: Fleet) -> None:
    up = fleet.run("up", "apollo-ai", "penia")
    assert up.returncode == 0 and "2/2 processes ready" in up.stdout, up.stdout + up.stderr
    again = fleet.run("up", "apollo")  # already running: reused, not duplicated
    assert again.returncode == 0
    status = {c["ci"]: c for c in fleet.json("status")["cis"]}
    assert status["apollo-ci"]["running"] and status["budget-ci"]["running"]
    assert status["apollo-ci"]["instances"] == 1 and not status["athena-ci"]["running"]
    down = fleet.run("down", "apollo")
    assert down.returncode == 0 and "apollo-ci" in down.stdout
    status = {c["ci"]: c for c in fleet.json("status")["cis"]}
    assert not status["apollo-ci"]["running"] and not status["apollo-ci"]["registered"]
    assert status["budget-ci"]["running"] and status["budget-ci"]["registered"]
    assert tcp_open(fleet.nats_port)  # NATS stays while CIs remain


def test_a_taken_port_fails_clearly(fleet: Fleet) -> None:
    port = get_ci("hermes").component_port(fleet.port_base)
    with socket.create_server(("127.0.0.1", port)):  # another program holds Hermes' port
        up = fleet.run("up", "hermes", "apollo")
    assert up.returncode == 1 and "1/2 processes ready" in up.stdout, up.stdout
    failed = up.stdout[up.stdout.index("hermes-ci       FAILED") :]
    assert f"{port}" in failed and "address already in use" in failed
    assert "another process holds the port" in failed


def test_status_without_anything_running(tmp_path: Path) -> None:
    fleet = Fleet(tmp_path / "home")
    result = fleet.run("status")
    assert result.returncode == 0
    assert "UNREACHABLE" in result.stdout and "apollo-ci" in result.stdout
    nothing = fleet.run("down")
    assert nothing.returncode == 0 and "nothing was running" in nothing.stdout
    talk = fleet.run("ask", "apollo", "hi")
    assert talk.returncode == 1 and "cannot reach NATS" in talk.stderr


def test_up_with_a_global_model_override(fleet: Fleet) -> None:
    up = fleet.run("--model", "legacy", "up", "athena")
    assert up.returncode == 0, up.stdout + up.stderr
    status = {c["ci"]: c for c in fleet.json("status")["cis"]}
    assert status["athena-ci"]["model"] == "claude-3-5-sonnet-20241022"
    # no key: the explicitly chosen Claude model fails clearly instead of pretending
    asked = fleet.run("ask", "athena", "hello")
    assert asked.returncode == 1 and "needs ANTHROPIC_API_KEY" in asked.stderr


def test_a_crash_loop_stops_being_restarted(fleet: Fleet) -> None:
    fleet.env.update({"TEKTON_RESTART_BACKOFF": "0.1", "TEKTON_RESTART_LIMIT": "3"})
    fleet.up("apollo")
    record_path = fleet.home / "run" / "apollo-ci.json"
    record = json.loads(record_path.read_text())
    # from now on apollo's command fails at once: every restart dies again
    record["command"] = [sys.executable, "-c", "raise SystemExit(3)"]
    record_path.write_text(json.dumps(record))
    os.kill(record["pid"], signal.SIGKILL)

    def apollo() -> dict:
        return next(c for c in fleet.json("status")["cis"] if c["ci"] == "apollo-ci")

    assert wait_for(lambda: apollo()["supervision"] == "crash-loop", 20)
    assert apollo()["restarts"] == 3 and not apollo()["running"]
    log = (fleet.home / "logs" / "tekton-supervisor.log").read_text()
    assert "process.crash_loop: apollo-ci" in log
    down = fleet.run("down")
    assert down.returncode == 0 and "tekton-supervisor" in down.stdout
