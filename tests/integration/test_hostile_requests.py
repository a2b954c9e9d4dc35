"""Attacks that matter for this platform, sent to every endpoint that takes the field.

Each entry of a table is one request as an attacker with access to the bus, a CI port,
the API or the command line would send it: path traversal in ids and paths, wildcards
and separators in ids, out-of-range numbers, oversized strings, schema bombs. Each must
get a clear 4xx naming the field within a few seconds, write nothing outside the
services' own folders, leave no retry loop behind, and leave every service serving.
The random fuzzing of test_hostile_input.py stays beside these.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nats
import pytest
from starlette.testclient import TestClient

from tekton_api.app import create_app
from tekton_cli.main import main as tekton
from tekton_common.settings import load_settings
from tests.helpers import CIProc, Env, NatsServer, StagesProc

TIMEOUT = 3.0  # a refusal comes at once; anything slower fails the test
BAD_IDS = ["../../evil", "*", ">", "a.b", "a b", "x/y", "\u202eevil", "x" * 101]
SELF_REF = {"type": "object", "required": ["a"], "properties": {"a": {"$ref": "#"}}}
LOOP = {
    "$defs": {
        "N": {"type": "object", "required": ["n"], "properties": {"n": {"$ref": "#/$defs/N"}}}
    },
    "$ref": "#/$defs/N",
}


def nested(depth: int) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    for _ in range(depth):
        schema = {"type": "object", "properties": {"x": schema}}
    return schema


HUGE_SCHEMA = {"type": "object", "description": "x" * 100_000}


class Stack:
    """nats-server, Apollo, Rhetor, Numa and the stages service, for the whole module."""

    def __init__(self, root: Path, server: NatsServer) -> None:
        self.root = root
        self.evil = root / "evil"  # where the attacks try to write
        extra = {
            "TEKTON_HEARTBEAT_INTERVAL": "0.5",
            "TEKTON_DEBATE_TURN_TIMEOUT": "5",
            "TEKTON_MILVUS_URI": "http://127.0.0.1:1",  # memory unreachable: said, not fatal
            "TEKTON_EMBEDDER": "hashing",
        }
        self.env = Env(home=root / "home", nats_url=server.url, extra=extra)
        self.cis = [
            CIProc(self.env, "apollo"),
            CIProc(self.env, "rhetor", module="tekton_rhetor"),
            CIProc(self.env, "numa", module="tekton_numa"),
        ]
        for proc in self.cis:
            proc.wait_ready()
        self.stages = StagesProc(self.env).wait_ready()

    def logs(self) -> str:
        return "\n".join(p.log.read_text() for p in (*self.cis, self.stages))

    def stop(self) -> None:
        self.stages.terminate()
        for proc in self.cis:
            proc.terminate()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, nats_server: NatsServer) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("hostile")
    (root / "repos").mkdir()
    started = Stack(root, nats_server)
    yield started
    started.stop()


@pytest.fixture(scope="module")
def bus(stack: Stack) -> Iterator[tuple[asyncio.AbstractEventLoop, Any]]:
    loop = asyncio.new_event_loop()
    nc = loop.run_until_complete(nats.connect(stack.env.nats_url))
    yield loop, nc
    loop.run_until_complete(nc.close())
    loop.close()


def stage_request(**fields: Any) -> dict[str, Any]:
    return {"run_id": "r1", "stage": "plan", "goal": "g", "debate_id": "d1", **fields}


def chat(**fields: Any) -> dict[str, Any]:
    return {"content": "hello", **fields}


def _nats_cases() -> list[tuple[str, str, dict[str, Any], str]]:
    """(case id, subject, payload, what the error must name)."""
    cases: list[tuple[str, str, dict[str, Any], str]] = [
        ("start-output", "tekton.runs.start", {"goal": "x", "output": "EVIL"}, "output"),
        ("start-rounds", "tekton.runs.start", {"goal": "x", "max_rounds": 1000}, "max_rounds"),
        ("start-threshold", "tekton.runs.start", {"goal": "x", "threshold": -1}, "threshold"),
        ("start-stage", "tekton.runs.start", {"goal": "x", "to_stage": "../x"}, "to_stage"),
        ("start-goal", "tekton.runs.start", {"goal": "g" * 9000}, "goal"),
        ("start-repo", "tekton.runs.start", {"goal": "x", "repo": "/etc"}, "repo"),
        ("start-url", "tekton.runs.start", {"goal": "x", "repo_url": "file:///etc"}, "repo_url"),
        (
            "start-url-path",
            "tekton.runs.start",
            {"goal": "x", "repo_url": "https://host/../../etc"},
            "repo_url",
        ),
        (
            "start-workspace",
            "tekton.runs.start",
            {"goal": "x", "workspace": {"name": "../../etc/source", "kind": "git", "size": 1}},
            "workspace",
        ),
        (
            "start-missing-workspace",
            "tekton.runs.start",
            {
                "goal": "x",
                "run_id": "nobody",
                "workspace": {"name": "nobody/source", "kind": "git", "size": 1},
            },
            "no workspace object",
        ),
        (
            "start-others-workspace",
            "tekton.runs.start",
            {"goal": "x", "workspace": {"name": "victim/result", "kind": "git", "size": 1}},
            "a run takes its own",
        ),
        (
            "start-check",
            "tekton.runs.start",
            {"goal": "x", "checks": [{"name": "a b", "command": "true"}]},
            "checks",
        ),
        ("stage-repo", "tekton.stage.code.run", stage_request(stage="code", repo="/etc"), "repo"),
        ("stage-rounds", "tekton.stage.plan.run", stage_request(max_rounds=99), "max_rounds"),
        ("stage-wrong", "tekton.stage.plan.run", stage_request(stage="code"), "runs plan"),
        (
            "debate-rounds",
            "tekton.rhetor.debate",
            {"prompt": "p", "max_rounds": 1000},
            "max_rounds",
        ),
        ("debate-threshold", "tekton.rhetor.debate", {"prompt": "p", "threshold": -1}, "threshold"),
        (
            "debate-budget",
            "tekton.rhetor.debate",
            {"prompt": "p", "token_budget": -5},
            "token_budget",
        ),
        (
            "debate-timeout",
            "tekton.rhetor.debate",
            {"prompt": "p", "turn_timeout": 1e9},
            "turn_timeout",
        ),
        (
            "debate-repairs",
            "tekton.rhetor.debate",
            {"prompt": "p", "max_repairs": 50},
            "max_repairs",
        ),
        (
            "debate-role",
            "tekton.rhetor.debate",
            {"prompt": "p", "roles": {"judge": "apollo"}},
            "roles",
        ),
        ("debate-prompt", "tekton.rhetor.debate", {"prompt": "p" * 200_001}, "prompt"),
        (
            "schema-self",
            "tekton.rhetor.debate",
            {"prompt": "p", "artifact_schema": SELF_REF},
            "artifact_schema",
        ),
        (
            "schema-loop",
            "tekton.rhetor.debate",
            {"prompt": "p", "artifact_schema": LOOP},
            "refers to itself",
        ),
        (
            "schema-deep",
            "tekton.rhetor.debate",
            {"prompt": "p", "artifact_schema": nested(40)},
            "deeper",
        ),
        (
            "schema-huge",
            "tekton.rhetor.debate",
            {"prompt": "p", "artifact_schema": HUGE_SCHEMA},
            "bytes",
        ),
        (
            "schema-remote",
            "tekton.rhetor.debate",
            {"prompt": "p", "artifact_schema": {"properties": {"a": {"$ref": "http://x/s"}}}},
            "only local",
        ),
        ("schema-name", "tekton.rhetor.debate", {"prompt": "p", "artifact_schema": "nope"}, "nope"),
        ("team-deadline", "tekton.rhetor.team", {"message": "m", "deadline": 1e9}, "deadline"),
        ("team-ci", "tekton.rhetor.team", {"message": "m", "cis": ["*"]}, "cis"),
    ]
    for subject in ("tekton.ci.apollo.chat", "tekton.ci.apollo.stream", "tekton.ci.rhetor.chat"):
        short = subject.split(".")[2] + "-" + subject.split(".")[3]
        cases += [
            (f"{short}-max-tokens", subject, chat(max_tokens=-5), "max_tokens"),
            (f"{short}-temperature", subject, chat(temperature=99), "temperature"),
            (
                f"{short}-history",
                subject,
                chat(history=[{"role": "user", "content": "x"}] * 500),
                "history",
            ),
            (f"{short}-schema", subject, chat(json_schema=LOOP), "json_schema"),
            (f"{short}-run", subject, chat(run_id="../../evil"), "run_id"),
            (f"{short}-model", subject, chat(model="a b"), "model"),
        ]
    for number, bad in enumerate(BAD_IDS):
        cases += [
            (f"start-id-{number}", "tekton.runs.start", {"goal": "x", "run_id": bad}, "run_id"),
            (f"resume-id-{number}", "tekton.runs.resume", {"run_id": bad}, "run_id"),
            (f"stage-run-{number}", "tekton.stage.plan.run", stage_request(run_id=bad), "run_id"),
            (
                f"stage-debate-{number}",
                "tekton.stage.plan.run",
                stage_request(debate_id=bad),
                "debate_id",
            ),
            (
                f"debate-id-{number}",
                "tekton.rhetor.debate",
                {"prompt": "p", "debate_id": bad},
                "debate_id",
            ),
            (
                f"debate-run-{number}",
                "tekton.rhetor.debate",
                {"prompt": "p", "run_id": bad},
                "run_id",
            ),
            (
                f"debate-ci-{number}",
                "tekton.rhetor.debate",
                {"prompt": "p", "roles": {"skeptic": bad}},
                "roles",
            ),
        ]
    return cases


NATS_CASES = _nats_cases()


@pytest.mark.parametrize(
    ("subject", "payload", "named"), [c[1:] for c in NATS_CASES], ids=[c[0] for c in NATS_CASES]
)
def test_nats_refuses_at_once_naming_the_field(
    stack: Stack,
    bus: tuple[asyncio.AbstractEventLoop, Any],
    subject: str,
    payload: dict[str, Any],
    named: str,
) -> None:
    loop, nc = bus
    data = json.dumps(payload).replace("EVIL", str(stack.evil)).encode()
    reply = loop.run_until_complete(nc.request(subject, data, timeout=TIMEOUT))
    headers = reply.headers or {}
    assert headers.get("Nats-Service-Error-Code") in ("400", "404"), (headers, reply.data[:200])
    assert named in headers["Nats-Service-Error"], headers["Nats-Service-Error"]


def test_a_wildcard_run_id_names_no_other_run(
    stack: Stack, bus: tuple[asyncio.AbstractEventLoop, Any]
) -> None:
    loop, nc = bus
    started = loop.run_until_complete(
        nc.request(
            "tekton.runs.start",
            json.dumps({"goal": "mine", "to_stage": "plan"}).encode(),
            timeout=TIMEOUT,
        )
    )
    assert "Nats-Service-Error-Code" not in (started.headers or {}), started.headers
    for bad in ("*", ">", "*.events"):
        reply = loop.run_until_complete(
            nc.request("tekton.runs.resume", json.dumps({"run_id": bad}).encode(), timeout=TIMEOUT)
        )
        assert (reply.headers or {}).get("Nats-Service-Error-Code") == "400"
        assert json.loads(started.data)["run_id"].encode() not in reply.data


def _socket_ask(port: int, line: dict[str, Any]) -> dict[str, Any]:
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as conn:
        conn.sendall(json.dumps(line).encode() + b"\n")
        data = b""
        while not data.endswith(b"\n"):
            chunk = conn.recv(65536)
            assert chunk, "the CI closed the connection"
            data += chunk
    return json.loads(data)


SOCKET_CASES = [
    (chat(max_tokens=-5), "max_tokens"),
    (chat(temperature=99), "temperature"),
    (chat(history=[{"role": "user", "content": "x"}] * 500), "history"),
    (chat(json_schema=SELF_REF), "json_schema"),
    (chat(json_schema=nested(40)), "deeper"),
    (chat(run_id="*"), "run_id"),
    (chat(request_id="r" * 500), "request_id"),
    (chat(stream=True, max_tokens=0), "max_tokens"),
]


@pytest.mark.parametrize(("line", "named"), SOCKET_CASES)
def test_the_socket_refuses_naming_the_field(
    stack: Stack, line: dict[str, Any], named: str
) -> None:
    reply = _socket_ask(stack.cis[0].ci_port, line)
    assert reply["type"] in ("error", "stream_error"), reply
    assert named in reply["error"] and "internal error" not in reply["error"]


@pytest.fixture(scope="module")
def api(stack: Stack) -> Iterator[TestClient]:
    settings = load_settings(environ=stack.env.vars())
    with TestClient(create_app(settings, None)) as client:
        yield client


API_CASES = [
    ("GET", "/runs/*", None, 400),
    ("GET", "/runs/a.b", None, 400),
    ("GET", "/runs/%E2%80%AEevil", None, 400),
    ("GET", f"/runs/{'x' * 100}", None, 400),
    ("GET", "/runs/a.b/events", None, 400),
    ("GET", "/runs/*/artifacts", None, 400),
    ("GET", "/runs/*/artifacts/plan.json", None, 400),
    ("PUT", "/config", {"output": "EVIL"}, 422),
    ("PUT", "/config", {"max_rounds": 1000}, 422),
    ("PUT", "/config", {"threshold": -1}, 422),
    ("POST", "/runs", {"goal": "x", "repo": "/etc"}, 422),
    ("POST", "/runs", {"goal": "x", "repo_url": "file:///etc"}, 422),
    ("POST", "/runs/workspaces", "not a bundle", 400),
    ("POST", "/runs", {"goal": "x", "model": "a b"}, 400),
    ("POST", "/runs", {"goal": "g" * 9000}, 422),
    ("POST", "/runs", {"goal": "x", "to_stage": "../x"}, 422),
]


@pytest.mark.parametrize(("method", "path", "body", "status"), API_CASES)
def test_the_api_refuses_with_a_problem(
    stack: Stack, api: TestClient, method: str, path: str, body: Any, status: int
) -> None:
    content = json.dumps(body).replace("EVIL", str(stack.evil)) if body is not None else None
    reply = api.request(method, path, content=content, headers={"content-type": "application/json"})
    assert reply.status_code == status, reply.text
    problem = reply.json()
    assert problem["status"] == status and problem["detail"]


CLI_CASES = [
    (["run", "--goal", "x", "--threshold", "5"], "threshold"),
    (["run", "--goal", "x", "--max-rounds", "1000"], "max_rounds"),
    (["run", "--goal", "x", "--model", "a b"], "model"),
    (["run", "--goal", "x", "--repo", "file:///etc"], "only https://"),
    (["run", "--goal", "x", "--repo", "https://h/../etc"], "only https://"),
    (["run", "--goal", "x", "--check", "no-command"], "NAME=COMMAND"),
    (["run", "--resume", "../../evil"], "not a valid id"),
    (["runs", "show", "*"], "not a valid id"),
    (["runs", "artifacts", "a.b", "--output", "EVIL"], "not a valid id"),
    (["usage", "--run", ">"], "not a valid id"),
    (["ask", "apollo.>", "hi"], "not a valid id"),
    (["debate", "q", "--rounds", "1000"], "max_rounds"),
    (["debate", "q", "--role", "skeptic=*"], "--role"),
    (["team", "m", "--to", "apollo", "--deadline", "1e9"], "deadline"),
]


@pytest.mark.parametrize(("args", "named"), CLI_CASES)
def test_the_command_line_refuses_before_sending(
    stack: Stack,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    named: str,
) -> None:
    for key, value in stack.env.vars().items():
        monkeypatch.setenv(key, value)
    started = time.monotonic()
    code = tekton([a.replace("EVIL", str(stack.evil)) for a in args])
    assert code == 2 and time.monotonic() - started < TIMEOUT
    said = capsys.readouterr().err
    assert said.startswith("tekton: error:") and named in said, said


def test_nothing_was_written_outside_and_nothing_loops(
    stack: Stack, bus: tuple[asyncio.AbstractEventLoop, Any]
) -> None:
    """Runs last in this module: after every attack above."""
    loop, nc = bus
    time.sleep(2)  # long enough for a retry loop, had one been left, to log again
    assert not stack.evil.exists()
    assert sorted(p.name for p in stack.root.iterdir()) == ["home", "repos"]
    logs = stack.logs()
    for sign in ("asking again", "Traceback", "internal error", "endpoint "):
        assert sign not in logs, sign
    for name in ("apollo-ci", "rhetor-ci", "numa-ci", "tekton-stages"):
        ping = loop.run_until_complete(nc.request(f"$SRV.PING.{name}", b"", timeout=5))
        assert json.loads(ping.data)["name"] == name
    reply = loop.run_until_complete(nc.request("tekton.ci.apollo.chat", b"still there?", timeout=5))
    assert "simulated" in json.loads(reply.data)["model"]
