"""The socket protocol on a CI port, against a real specialist process."""

from __future__ import annotations

import asyncio
import json
import socket

import psutil
import pytest

from tekton_common.client import SocketClient, ai_send, ai_send_sync
from tekton_common.errors import RemoteError, RequestTimeoutError, TransportError, UnknownCIError
from tests.helpers import free_port, streamed


@pytest.fixture
def apollo(start_ci):
    return start_ci("apollo")


async def _exchange(port: int, lines: list[bytes], replies: int) -> list[dict]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=4 * 2**20)
    writer.write(b"".join(lines))
    await writer.drain()
    out = [json.loads(await asyncio.wait_for(reader.readline(), 10)) for _ in range(replies)]
    writer.close()
    return out


async def test_ping_health_info_chat(apollo) -> None:
    replies = await _exchange(
        apollo.ci_port,
        [
            b'{"type":"ping"}\n',
            b'{"type":"health"}\n',
            b'{"type":"info"}\n',
            b'{"content":"hello","request_id":"r7"}\n',
            b'{"type":"whatever","message":"old"}\n',
        ],
        5,
    )
    pong, health, info, chat, legacy = replies
    assert pong["type"] == "pong" and pong["ai_id"] == "apollo-ci" and pong["timestamp"] > 0
    assert health == {
        "type": "health_response",
        "status": "healthy",
        "component": "Apollo",
        "model": "simulated",
        "ai_id": "apollo-ci",
    }
    assert info["type"] == "info_response" and info["port"] == apollo.ci_port
    assert info["model_provider"] == "simulated" and info["component"] == "Apollo"
    assert chat["type"] == "response" and chat["request_id"] == "r7"
    assert chat["model"] == "simulated" and "hello" in chat["content"]
    assert set(chat) >= {"ai_id", "content", "model", "usage", "latency"}
    assert legacy["type"] == "response" and '"old"' in legacy["content"]


async def test_streaming_reply(apollo) -> None:
    events = await streamed(apollo.ci_port, "stream it", request_id="s1")
    async with SocketClient("127.0.0.1", apollo.ci_port) as client:
        whole = await client.request({"content": "stream it"})
    assert events[0]["type"] == "stream_start" and events[-1]["type"] == "stream_end"
    chunks = events[1:-1]
    assert [c["chunk_index"] for c in chunks] == list(range(len(chunks)))
    assert all(e["request_id"] == "s1" for e in events)
    assert "".join(c["content"] for c in chunks) == whole["content"]
    assert events[-1]["usage"]["output_tokens"] > 0 and events[-1]["chunks"] == len(chunks)


async def test_malformed_lines_get_errors_and_connection_survives(apollo) -> None:
    replies = await _exchange(
        apollo.ci_port,
        [
            b"not json\n",
            b"[1,2]\n",
            b'{"content": 42}\n',
            b"\xff\xfe\xfd\n",
            b'{"history": "nope", "content": "x", "request_id": "bad"}\n',
            b'{"type":"ping"}\n',
        ],
        6,
    )
    assert [r["type"] for r in replies] == ["error"] * 5 + ["pong"]
    assert "invalid JSON" in replies[0]["error"] and "JSON object" in replies[1]["error"]
    assert "content" in replies[2]["error"] and replies[4]["request_id"] == "bad"
    assert all(r["ai_id"] == "apollo-ci" for r in replies[:5])


async def test_oversized_line_is_refused_and_skipped(apollo) -> None:
    huge = b'{"content":"' + b"a" * (1024 * 1024 + 10) + b'"}\n'
    replies = await _exchange(apollo.ci_port, [huge, b'{"type":"ping"}\n'], 2)
    assert replies[0]["type"] == "error" and "exceeds" in replies[0]["error"]
    assert replies[1]["type"] == "pong"


async def test_line_just_under_limit_is_served(apollo) -> None:
    text = "b" * (1024 * 1024 - 100)
    [reply] = await _exchange(apollo.ci_port, [json.dumps({"content": text}).encode() + b"\n"], 1)
    assert reply["type"] == "response"


async def test_pipelined_replies_come_back_in_order(apollo) -> None:
    lines = [
        json.dumps({"content": f"q{i}", "request_id": str(i)}).encode() + b"\n" for i in range(100)
    ]
    replies = await _exchange(apollo.ci_port, lines, 100)
    assert [r["request_id"] for r in replies] == [str(i) for i in range(100)]


async def test_abrupt_disconnects_do_not_hurt_the_service(apollo) -> None:
    for _ in range(20):
        s = socket.create_connection(("127.0.0.1", apollo.ci_port))
        s.sendall(b'{"content":"half')  # no newline, then vanish
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        s.close()  # RST
        s = socket.create_connection(("127.0.0.1", apollo.ci_port))
        s.sendall(b'{"content":"then leave"}\n')
        s.close()
    assert await ai_send("apollo", "still there?", port=apollo.ci_port)
    assert apollo.proc.poll() is None


async def test_200_concurrent_connections(apollo) -> None:
    async def one(i: int) -> dict:
        async with SocketClient("127.0.0.1", apollo.ci_port, timeout=20) as client:
            return await client.request({"content": f"conn {i}", "request_id": f"c{i}"})

    replies = await asyncio.gather(*(one(i) for i in range(200)))
    assert [r["request_id"] for r in replies] == [f"c{i}" for i in range(200)]
    assert all(f"conn {i}" in r["content"] for i, r in enumerate(replies))


async def test_ai_send_accepts_every_alias(apollo) -> None:
    for name in ("apollo-ci", "apollo-ai", "apollo"):
        assert "simulated" in await ai_send(name, "hi", "127.0.0.1", apollo.ci_port)
    with pytest.raises(UnknownCIError):
        await ai_send("zeus", "hi", "127.0.0.1", apollo.ci_port)


def test_ai_send_sync(apollo) -> None:
    assert "apollo-ci" in ai_send_sync("apollo-ai", "sync hello", "127.0.0.1", apollo.ci_port)


async def test_client_raises_on_error_reply(apollo) -> None:
    async with SocketClient("127.0.0.1", apollo.ci_port) as client:
        with pytest.raises(RemoteError, match="invalid chat request"):
            await client.request({"content": ["not", "text"]})


async def test_client_raises_when_nothing_listens() -> None:
    with pytest.raises(TransportError, match="no CI listening"):
        await ai_send("apollo", "hi", "127.0.0.1", free_port())


async def test_client_times_out_on_a_silent_server() -> None:
    async def silent(reader, writer):
        await reader.read()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        with pytest.raises(RequestTimeoutError):
            await ai_send("apollo", "hi", "127.0.0.1", port, timeout=0.3)
    finally:
        server.close()


async def test_shared_socket_token_is_required_when_set(env, start_ci) -> None:
    env.extra["TEKTON_SOCKET_TOKEN"] = "sock-token-123"
    athena = start_ci("athena")
    lines = [b'{"type":"ping","token":"wrong"}\n', b'{"content":"hi"}\n']
    without = await _exchange(athena.ci_port, lines, 2)
    assert all(r["type"] == "error" and "socket token" in r["error"] for r in without)
    assert all("sock-token-123" not in json.dumps(r) for r in without)
    # the client helpers send the token from TEKTON_SOCKET_TOKEN (given here explicitly)
    async with SocketClient("127.0.0.1", athena.ci_port, token="sock-token-123") as client:
        assert (await client.request({"type": "ping"}))["type"] == "pong"
    with pytest.raises(RemoteError, match="socket token"):
        async with SocketClient("127.0.0.1", athena.ci_port, token="nope") as client:
            await client.request({"content": "hello"})


def test_every_listener_binds_loopback_by_default(apollo) -> None:
    listening = [
        c.laddr
        for c in psutil.Process(apollo.proc.pid).net_connections(kind="tcp")
        if c.status == psutil.CONN_LISTEN
    ]
    assert {a.port for a in listening} >= {apollo.ci_port, apollo.http_port}
    assert {a.ip for a in listening} == {"127.0.0.1"}
