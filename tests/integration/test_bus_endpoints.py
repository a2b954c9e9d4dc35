"""CI endpoints on NATS: chat, stream, info, team chat, errors, replicas, $SRV schemas."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import jsonschema
import msgspec
import nats
import pytest

from tekton_common.client import BusClient
from tekton_common.errors import RemoteError, TransportError
from tekton_common.gather import gather_all
from tekton_common.wire import StreamChunk, StreamEnd, StreamStart

SCHEMAS = Path(__file__).parent.parent / "schemas"


def schema(name: str) -> dict:
    return json.loads((SCHEMAS / f"micro_v1_{name}.json").read_text())


@pytest.fixture
async def nc(nats_server):
    conn = await nats.connect(nats_server.url)
    yield conn
    await conn.close()


async def test_chat_plain_text_and_json(start_ci, nc) -> None:
    start_ci("athena")
    plain = await nc.request("tekton.ci.athena.chat", b"hello", timeout=5)
    body = json.loads(plain.data)
    assert body["type"] == "response" and body["ai_id"] == "athena-ci"
    assert body["model"] == "simulated" and '"hello"' in body["content"]
    reply = await BusClient(nc, 5).chat("athena-ai", "structured", max_tokens=10)
    assert reply.ai_id == "athena-ci" and "structured" in reply.content


async def test_bad_requests_get_micro_error_headers_and_service_lives(start_ci, nc) -> None:
    start_ci("athena")
    for payload in (b'{"content": 1}', b"{broken", b"\xff\xfe", b""):
        msg = await nc.request("tekton.ci.athena.chat", payload, timeout=5)
        assert msg.headers["Nats-Service-Error-Code"] == "400", payload
        assert msg.headers["Nats-Service-Error"]
    with pytest.raises(RemoteError, match="athena-ci") as info:
        await BusClient(nc, 5).chat("athena", "x", history="wrong")
    assert info.value.code == 400
    ok = await nc.request("tekton.ci.athena.chat", b"still fine", timeout=5)
    assert json.loads(ok.data)["type"] == "response"
    stats = json.loads((await nc.request("$SRV.STATS.athena-ci", b"", timeout=5)).data)
    chat = next(e for e in stats["endpoints"] if e["name"] == "chat")
    assert chat["num_errors"] == 5 and chat["num_requests"] == 6 and chat["last_error"]


async def test_stream_over_nats(start_ci, nc) -> None:
    start_ci("nous")
    events = [e async for e in BusClient(nc, 5).stream("noesis", "tell me more")]
    assert isinstance(events[0], StreamStart) and isinstance(events[-1], StreamEnd)
    text = "".join(e.content for e in events if isinstance(e, StreamChunk))
    whole = await BusClient(nc, 5).chat("nous", "tell me more")
    assert text == whole.content


async def test_info_endpoint(start_ci, nc) -> None:
    proc = start_ci("metis")
    info = json.loads((await nc.request("tekton.ci.metis.info", b"", timeout=5)).data)
    assert info["type"] == "info_response" and info["port"] == proc.ci_port
    assert info["component_port"] == proc.http_port and info["role"] == "task breakdown"


async def test_unknown_or_stopped_ci_is_a_clear_error(nc) -> None:
    with pytest.raises(TransportError, match="hermes-ci is not running"):
        await BusClient(nc, 2).chat("hermes", "anyone?")


async def test_micro_control_replies_follow_v1_schemas(start_ci, nc) -> None:
    start_ci("apollo")
    start_ci("rhetor", module="tekton_rhetor")
    for verb in ("ping", "info", "stats"):
        replies = [
            json.loads(m.data) for m in await gather_all(nc, f"$SRV.{verb.upper()}", deadline=0.5)
        ]
        names = sorted(r["name"] for r in replies)
        assert names == ["apollo-ci", "rhetor-ci"], verb
        for reply in replies:
            jsonschema.validate(reply, schema(verb))
    info = json.loads((await nc.request("$SRV.INFO.rhetor-ci", b"", timeout=5)).data)
    assert info["metadata"] == {
        "component": "Rhetor",
        "ci_port": info["metadata"]["ci_port"],
        "component_port": info["metadata"]["component_port"],
        "model": "simulated",
        "provider": "simulated",
        "role": "orchestrator of all CIs, prompts, models, debates",
        "instance": info["metadata"]["instance"],
    }
    subjects = {e["name"]: (e["subject"], e["queue_group"]) for e in info["endpoints"]}
    assert subjects["chat"][0] == "tekton.ci.rhetor.chat"
    assert subjects["stream"][0] == "tekton.ci.rhetor.stream"
    assert subjects["info"][0] == "tekton.ci.rhetor.info"
    assert subjects["team"] == ("tekton.team.chat", "rhetor-ci")


async def test_replicas_share_work_and_team_chat_gets_one_reply_per_ci(start_ci, nc) -> None:
    first, second = start_ci("apollo"), start_ci("apollo")
    start_ci("athena")
    assert first.ci_port == second.ci_port  # SO_REUSEPORT: same port, two processes
    # the replicas share their HTTP port too, so either may have answered the second's
    # /readyz: wait until both are on the bus
    for _ in range(100):
        pings = await gather_all(nc, "$SRV.PING.apollo-ci", deadline=0.5, expected=2)
        if len({json.loads(m.data)["id"] for m in pings}) == 2:
            break
    client = BusClient(nc, 5)
    for i in range(40):
        await client.chat("apollo", f"q{i}")
    # both replicas answer; the deadline is only for a loaded machine
    replies = await gather_all(nc, "$SRV.STATS.apollo-ci", deadline=10, expected=2)
    stats = [json.loads(m.data) for m in replies]
    per_replica = [
        next(e["num_requests"] for e in s["endpoints"] if e["name"] == "chat") for s in stats
    ]
    assert len(per_replica) == 2 and sum(per_replica) == 40 and min(per_replica) > 0
    replies = [r async for r in client.team("roll call", deadline=1.5)]
    assert sorted(r.ai_id for r in replies) == ["apollo-ci", "athena-ci"]
    assert all("roll call" in r.content for r in replies)


async def test_sigterm_is_graceful(start_ci, nc) -> None:
    proc = start_ci("budget")
    kv = await nc.jetstream().key_value("tekton-registry")
    assert any(k.startswith("budget-ci.") for k in await kv.keys())
    assert proc.terminate() == 0
    try:
        keys = await kv.keys()
    except nats.js.errors.NoKeysError:
        keys = []
    assert not [k for k in keys if k.startswith("budget-ci.")]
    with pytest.raises(nats.errors.NoRespondersError):
        await nc.request("tekton.ci.budget.chat", b"gone?", timeout=2)
    assert b"budget-ci stopped" in proc.log.read_bytes()


async def test_numa_status_reports_the_platform(start_ci, nc) -> None:
    start_ci("apollo")
    start_ci("numa", module="tekton_numa", extra_args=["--components", "apollo,athena,numa"])

    async def current() -> dict:
        return msgspec.json.decode((await nc.request("tekton.numa.status", b"", timeout=5)).data)

    status = await current()
    for _ in range(40):  # a heartbeat late under load: the status follows within seconds
        apollo = next(c for c in status["cis"] if c["ci"] == "apollo-ci")
        if apollo["responding"] == 1 and apollo["active"] == 1:
            break
        await asyncio.sleep(0.25)
        status = await current()
    assert status["type"] == "platform_status.v1"
    assert status["expected"] == ["apollo-ci", "athena-ci", "numa-ci"]
    assert status["missing"] == ["athena-ci"] and status["healthy"] is False
    by_ci = {c["ci"]: c for c in status["cis"]}
    assert by_ci["apollo-ci"]["responding"] == 1 and by_ci["apollo-ci"]["active"] == 1
    assert by_ci["numa-ci"]["responding"] == 1 and by_ci["athena-ci"]["instances"] == 0
