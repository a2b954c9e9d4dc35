"""Hostile input, generated: the socket protocol and NATS endpoints answer every bad
request with a clear error (or a reply) and keep serving everyone else."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Iterator
from typing import Any

import nats
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers import CIProc, StagesProc

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
#: chat requests with every field present or not, of any type
REQUESTS = st.fixed_dictionaries(
    {},
    optional={
        k: JSON
        for k in (
            "type",
            "content",
            "message",
            "history",
            "temperature",
            "max_tokens",
            "context",
            "json_schema",
            "request_id",
            "traceparent",
            "model",
        )
    }
    | {"stream": st.booleans()},
)
LINES = st.one_of(
    st.binary(max_size=200).map(lambda b: b.replace(b"\n", b" ")),  # invalid UTF-8 and all
    JSON.map(lambda v: json.dumps(v).encode()),
    REQUESTS.map(lambda v: json.dumps(v).encode()),
)
FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture
def apollo(start_ci) -> CIProc:
    return start_ci("apollo")


class LineClient:
    """A blocking socket client reading one JSON line at a time."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.buffer = b""

    def send(self, line: bytes) -> None:
        self.sock.sendall(line + b"\n")

    def receive(self) -> dict[str, Any]:
        while b"\n" not in self.buffer:
            chunk = self.sock.recv(65536)
            assert chunk, "the CI closed the connection"
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        reply = json.loads(line)
        assert isinstance(reply, dict) and isinstance(reply.get("type"), str), reply
        return reply

    def until_pong(self, probe: str) -> list[dict[str, Any]]:
        self.send(json.dumps({"type": "ping", "request_id": probe}).encode())
        seen = []
        while True:
            reply = self.receive()
            if reply["type"] == "pong":
                return seen
            seen.append(reply)


def test_socket_survives_generated_garbage(apollo: CIProc) -> None:
    client = LineClient(apollo.ci_port)
    count = [0]

    @FUZZ
    @given(line=LINES)
    def fuzz(line: bytes) -> None:
        count[0] += 1
        client.send(line)
        replies = client.until_pong(f"probe-{count[0]}")
        if not line.strip():  # blank lines are skipped, as the protocol says
            assert replies == []
            return
        assert replies, f"no reply to {line!r}"
        kinds = {r["type"] for r in replies}
        assert kinds <= {"error", "response", "stream_start", "stream_chunk", "stream_end"}
        for reply in replies:
            if reply["type"] == "error":
                assert reply["error"] and reply["ai_id"] == "apollo-ci"

    fuzz()
    assert count[0] >= 100


async def test_huge_slow_and_half_open_connections_do_not_stop_service(apollo: CIProc) -> None:
    port = apollo.ci_port
    # a 10 MiB line is refused and skipped; the connection goes on
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=2**20)
    writer.write(b'{"content":"' + b"x" * (10 * 2**20) + b'"}\n{"type":"ping"}\n')
    await writer.drain()
    refused = json.loads(await asyncio.wait_for(reader.readline(), 20))
    assert refused["type"] == "error" and "exceeds" in refused["error"]
    assert json.loads(await asyncio.wait_for(reader.readline(), 10))["type"] == "pong"
    writer.close()
    # 100 half-open connections, each stuck in the middle of a line
    stuck = []
    for _ in range(100):
        _, w = await asyncio.open_connection("127.0.0.1", port)
        w.write(b'{"type":"ping", "content": "never fin')
        stuck.append(w)

    # a flood of 300 connections opened and dropped at once
    async def touch() -> None:
        _, w = await asyncio.open_connection("127.0.0.1", port)
        w.close()

    await asyncio.gather(*(touch() for _ in range(300)))
    # and a normal client is still served promptly
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b'{"content":"still there?"}\n')
    reply = json.loads(await asyncio.wait_for(reader.readline(), 5))
    assert reply["type"] == "response" and "simulated" in reply["model"]
    writer.close()
    for w in stuck:
        w.close()


@pytest.fixture
def bus(env) -> Iterator[tuple[asyncio.AbstractEventLoop, Any]]:
    loop = asyncio.new_event_loop()
    nc = loop.run_until_complete(nats.connect(env.nats_url))
    yield loop, nc
    loop.run_until_complete(nc.close())
    loop.close()


def test_nats_endpoints_survive_generated_garbage(env, start_many, bus) -> None:
    env.extra.update({"TEKTON_DEBATE_TURN_TIMEOUT": "1", "TEKTON_MILVUS_URI": "http://127.0.0.1:1"})
    start_many({"apollo": {}, "rhetor": {}, "numa": {}})
    stages = StagesProc(env).wait_ready()
    loop, nc = bus
    subjects = [
        "tekton.ci.apollo.chat",
        "tekton.ci.apollo.stream",
        "tekton.ci.apollo.info",
        "tekton.rhetor.debate",
        "tekton.rhetor.roster",
        "tekton.ci.rhetor.chat",
        "tekton.numa.status",
        "tekton.stage.plan.run",
        "tekton.stage.code.run",
        "tekton.runs.start",
        "tekton.runs.resume",
        "tekton.memory.info",
        # tools: typed inputs, hostile calls (a call's input is decoded into its Struct)
        "tekton.ci.numa.tools",
        "tekton.ci.numa.tool.status.operator",
        "tekton.ci.numa.tool.events.operator",
        "tekton.ci.apollo.tool.runs.operator",
        "tekton.ci.apollo.tool.run.operator",
        "tekton.ci.rhetor.tool.transcript.operator",
        "tekton.ci.numa.tool.status.nobody",  # no such caller: refused
    ]
    payloads = st.one_of(
        st.binary(max_size=200),
        JSON.map(lambda v: json.dumps(v).encode()),
        REQUESTS.map(lambda v: json.dumps(v).encode()),
    )

    @FUZZ
    @given(subject=st.sampled_from(subjects), payload=payloads)
    def fuzz(subject: str, payload: bytes) -> None:
        reply = loop.run_until_complete(nc.request(subject, payload, timeout=10))
        headers = reply.headers or {}
        if "Nats-Service-Error-Code" in headers:
            assert headers["Nats-Service-Error"], headers
            assert headers["Nats-Service-Error-Code"].isdigit()
        else:
            assert isinstance(json.loads(reply.data), dict)

    try:
        fuzz()
        # the services still answer
        for name in ("apollo-ci", "rhetor-ci", "numa-ci", "tekton-stages"):
            ping = loop.run_until_complete(nc.request(f"$SRV.PING.{name}", b"", timeout=5))
            assert json.loads(ping.data)["name"] == name
        chat = loop.run_until_complete(nc.request("tekton.ci.apollo.chat", b"hello", timeout=5))
        assert "simulated" in json.loads(chat.data)["model"]
    finally:
        stages.terminate()
