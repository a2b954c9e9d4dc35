"""The whole platform in containers, as an air-gapped site runs it: the images built from
package registries only (deploy/offline/build.sh), the stack brought up by the real
Docker Compose v2 binary over podman (deploy/offline/compose.sh), and used from this
host through its published ports alone: discovery, a goal through every stage, a
repository whose branch comes back (no disk is shared), a killed CI brought back by the
restart policy, and nothing left behind (slow: the first build takes minutes).

Needs root, podman, runc, netavark and debootstrap (scripts/test.sh installs them);
without them the test is skipped, unless TEKTON_CONTAINER_TESTS=required (CI), when it
fails."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import nats
import pytest

from tekton_cli.deploy import API_PORT, STAGES_PORT, compose
from tekton_common.catalog import CATALOG
from tekton_common.gather import gather_all
from tests.e2e.test_runs import git, git_repo
from tests.helpers import tcp_open, wait_for

# the first build from nothing takes minutes (a slow mirror more)
pytestmark = [pytest.mark.slow, pytest.mark.timeout(2400)]

ROOT = Path(__file__).resolve().parents[2]
OFFLINE = ROOT / "deploy" / "offline"
TEKTON = [sys.executable, "-m", "tekton_cli.main"]
#: a project of its own (never a stack of someone's named `tekton`, whose volumes `down
#: --volumes` would remove); its ports are the platform's fixed ones all the same
PROJECT = f"tekton-e2e-{secrets.token_hex(3)}"
NATS_URL = "nats://127.0.0.1:4222"
GOAL = "Add rate limiting to the public API"


def _missing() -> str | None:
    if os.geteuid() != 0:
        return "the container test runs as root (podman with runc and cgroupfs)"
    tools = ("podman", "runc", "debootstrap", "netavark", "aardvark-dns")
    absent = [t for t in tools if not shutil.which(t) and not Path(f"/usr/lib/podman/{t}").exists()]
    if absent:
        apt = "apt install podman runc netavark aardvark-dns debootstrap"
        return f"not installed: {', '.join(absent)} ({apt})"
    return None


def _published() -> list[int]:
    """Every host port the stack publishes."""
    ports = []
    for service in compose()["services"].values():
        ports += [int(p.split(":")[1]) for p in service.get("ports", [])]
    return ports


@dataclass
class Stack:
    env: dict[str, str]
    token: str
    home: Path

    def compose(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return _run([str(OFFLINE / "compose.sh"), "-p", PROJECT, *args], self.env, timeout)

    def podman(self, *args: str) -> subprocess.CompletedProcess[str]:
        return _run(["podman", *args], self.env, 60)

    def tekton(self, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        return _run([*TEKTON, *args], self.env, 300, cwd)

    def api(self, path: str, token: str | None = None) -> tuple[int, dict]:
        request = urllib.request.Request(f"http://127.0.0.1:{API_PORT}{path}")
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=5) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            return exc.code, {}


def _run(
    command: list[str], env: dict[str, str], timeout: float, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )


def _ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as resp:
            return resp.status == 200
    except (OSError, urllib.error.HTTPError):
        return False


def _pings(subject: str, deadline: float) -> list[dict]:
    """Every micro service's reply to a `$SRV.PING` subject, through the published NATS."""

    async def gather() -> list[dict]:
        nc = await nats.connect(NATS_URL)
        try:
            return [json.loads(m.data) for m in await gather_all(nc, subject, deadline=deadline)]
        finally:
            await nc.close()

    return asyncio.run(gather())


def _http_ports() -> list[int]:
    return [s.component_port() for s in CATALOG] + [STAGES_PORT, API_PORT]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    if (why := _missing()) is not None:
        if os.environ.get("TEKTON_CONTAINER_TESTS") == "required":
            pytest.fail(why)
        pytest.skip(why)
    taken = [p for p in _published() if tcp_open(p)]
    assert not taken, f"the stack's ports are in use here (a `tekton up`?): {taken}"
    home = tmp_path_factory.mktemp("stack")
    token = secrets.token_hex(16)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TEKTON_", "ANTHROPIC_"))}
    env.update(
        {
            "CONTAINERS_CONF": str(OFFLINE / "containers.conf"),
            "PODMAN_SOCKET": str(home / "podman.sock"),
            "TEKTON_API_TOKEN": token,
            "TEKTON_NATS_URL": NATS_URL,
            "TEKTON_HOME": str(home / "host"),
            "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        }
    )
    built = _run([str(OFFLINE / "build.sh")], env, 1500)
    assert built.returncode == 0, built.stdout + built.stderr
    print(built.stdout)  # the images and their sizes, in the log of a failure
    stack = Stack(env, token, home)
    try:
        started = time.monotonic()
        up = stack.compose("up", "-d")
        assert up.returncode == 0, up.stderr
        every = _http_ports()
        assert wait_for(lambda: all(_ready(p) for p in every), timeout=240, interval=1), [
            p for p in every if not _ready(p)
        ]
        print(f"stack ready {time.monotonic() - started:.1f} s after `up -d`")
        yield stack
    finally:
        try:
            stack.compose("down", "--volumes", "--remove-orphans")
        finally:
            stopped = _run([str(OFFLINE / "compose.sh"), "--stop-service"], env, 60)
            assert stopped.returncode == 0, stopped.stderr


def test_every_service_is_ready_and_registered(stack: Stack) -> None:
    ps = stack.compose("ps", "--format", "json")
    assert ps.returncode == 0, ps.stderr
    lines = [json.loads(line) for line in ps.stdout.splitlines() if line.strip()]
    services = {row["Service"]: row["State"] for row in lines}
    expected = {s.name for s in CATALOG} | {"nats", "postgres", "milvus", "stages", "api"}
    # every service running, and no Jaeger (offline, traces stay in each service's files)
    assert {name for name, state in services.items() if state == "running"} == expected

    def registered() -> bool:
        done = stack.tekton("status", "--json")
        cis = json.loads(done.stdout)["cis"] if done.returncode == 0 else []
        return len(cis) == len(CATALOG) and all(c["registered"] and c["active"] for c in cis)

    assert wait_for(registered, timeout=60, interval=1)
    # this host runs no Tekton process: the stages service is the container's
    report = json.loads(stack.tekton("status", "--json").stdout)
    assert report["stages_pid"] is None and report["stages_on_bus"] == 1
    assert report["memory"]["reachable"] and report["memory"]["milvus_uri"] == "http://milvus:19530"
    text = stack.tekton("status").stdout
    assert "stages service: 1 on the bus, elsewhere" in text, text
    assert "PostgreSQL: the stages service's own" in text and "(the stages service's)" in text


def test_discovery_and_the_api_answer_from_the_host(stack: Stack) -> None:
    names = {reply["name"] for reply in _pings("$SRV.PING", deadline=2)}
    assert {f"{s.name}-ci" for s in CATALOG} | {"tekton-stages"} <= names
    assert stack.api("/runs")[0] == 401  # the compose stack's API asks for its token
    assert stack.api("/runs", "not-the-token")[0] == 401
    status, checks = stack.api("/system/checks", stack.token)
    assert status == 200 and checks["checks"]["postgresql"]["ok"], checks


def test_a_goal_crosses_the_containers(stack: Stack) -> None:
    done = stack.tekton("run", "--goal", GOAL, "--json", "--output", str(stack.home / "out"))
    assert done.returncode == 0, done.stderr[-2000:]
    events = [json.loads(line) for line in done.stdout.splitlines()]
    # every turn taken by a CI in its container, each saying it is simulated (no key)
    turns = [e["turn"] for e in events if e["type"] == "DebateTurn.v1"]
    assert turns and all(turn["model"] == "simulated" for turn in turns)
    run_id = events[0]["run_id"]
    artifacts = [e for e in events if e["type"] == "ArtifactCreated.v1"]
    assert len(artifacts) == 9 and events[-1]["type"] == "RunFinished.v1"
    # the API in its container read the same run from the same stream
    status, state = stack.api(f"/runs/{run_id}", stack.token)
    assert status == 200 and state["status"] == "finished", state


def test_a_repository_run_brings_its_branch_back_to_the_host(stack: Stack, tmp_path: Path) -> None:
    repo = git_repo(tmp_path / "shop")
    (repo / "notes.md").write_text("uncommitted work travels too\n")
    check = "test=python -c 'import limits; assert limits.rate_limit(1, 1)'"
    args = ["--goal", "Rate limit the shop", "--repo", str(repo), "--check", check]
    done = stack.tekton("run", *args, "--from", "code", "--to", "code", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    events = [json.loads(line) for line in done.stdout.splitlines()]
    [checked] = [e for e in events if e["type"] == "ChecksFinished.v1"]
    [result] = checked["results"]
    # the check ran inside the stages container, under bubblewrap there
    assert result["exit_code"] == 0 and result["sandbox"] == "bwrap", result
    branch = f"tekton/{events[0]['run_id']}"
    assert git(repo, "rev-list", "--count", f"main..{branch}") == "2"
    assert "simulated" in git(repo, "show", f"{branch}:TEKTON_SIMULATED_CHANGE.md").lower()
    assert git(repo, "show", f"{branch}:notes.md") == "uncommitted work travels too"


def test_a_killed_ci_is_restarted_and_registers_again(stack: Stack) -> None:
    container = f"{PROJECT}-apollo-1"

    def apollo_ids() -> set[str]:
        return {reply["id"] for reply in _pings("$SRV.PING.apollo-ci", deadline=1)}

    before = apollo_ids()
    inspect = ["inspect", "--format", "{{.State.Pid}} {{.RestartCount}}", container]
    pid, restarts = stack.podman(*inspect).stdout.split()
    os.kill(int(pid), 9)  # the CI's process, inside its container

    def back() -> bool:
        now = stack.podman(*inspect).stdout.split()
        return len(now) == 2 and now[0] not in ("0", pid) and int(now[1]) > int(restarts)

    assert wait_for(back, timeout=60, interval=0.5)
    port = next(s.component_port() for s in CATALOG if s.name == "apollo")
    assert wait_for(lambda: _ready(port), timeout=60, interval=0.5)
    assert wait_for(lambda: bool(apollo_ids() - before), timeout=30, interval=1)
    asked = stack.tekton("ask", "apollo", "Are you back?")
    assert asked.returncode == 0 and "simulated" in asked.stdout.lower(), asked.stderr


def test_down_leaves_nothing_behind(stack: Stack) -> None:
    down = stack.compose("down", "--volumes", "--remove-orphans")
    assert down.returncode == 0, down.stderr
    label = f"label=com.docker.compose.project={PROJECT}"
    for kind in ("container", "volume", "network"):
        every = ["--all"] if kind == "container" else []
        listed = stack.podman(kind, "ls", *every, "--filter", label, "--quiet")
        assert listed.returncode == 0 and listed.stdout.strip() == "", (kind, listed.stdout)
    assert not any(tcp_open(p) for p in _published())
