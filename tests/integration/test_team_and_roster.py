"""Moderated team chat and the roster through Rhetor."""

from __future__ import annotations

import json
import time

import msgspec
import nats
import pytest

from tekton_common.gather import gather


@pytest.fixture
async def nc(nats_server):
    conn = await nats.connect(nats_server.url)
    yield conn
    await conn.close()


async def team(nc, deadline: float = 2.0, **request) -> tuple[list[dict], dict, list[float]]:
    request = {"deadline": deadline, **request}
    replies, arrivals, started = [], [], time.monotonic()
    async for msg in gather(
        nc, "tekton.rhetor.team", msgspec.json.encode(request), deadline=deadline + 20
    ):
        assert "Nats-Service-Error" not in (msg.headers or {}), msg.headers
        event = json.loads(msg.data)
        if event["type"] == "team.result":
            return replies, event, arrivals
        arrivals.append(time.monotonic() - started)
        replies.append(event)
    raise AssertionError("no team.result")


async def test_pass_through_broadcast_reaches_everyone(start_many, nc) -> None:
    start_many({"rhetor": {}, "apollo": {}, "athena": {}, "sophia": {}})
    replies, result, _ = await team(nc, message="status?", mode="pass_through")
    assert sorted(r["ai_id"] for r in replies) == [
        "apollo-ci",
        "athena-ci",
        "rhetor-ci",
        "sophia-ci",
    ]
    assert result["answered"] == sorted(r["ai_id"] for r in replies)


async def test_directed_only_reaches_the_named(start_many, nc) -> None:
    start_many({"rhetor": {}, "apollo": {}, "athena": {}, "sophia": {}})
    replies, result, _ = await team(
        nc, message="you two", mode="directed", cis=["athena-ai", "sophia"]
    )
    assert sorted(r["ai_id"] for r in replies) == ["athena-ci", "sophia-ci"]
    assert result["mode"] == "directed"


async def test_deadline_leaves_slow_cis_out_and_replies_stream_as_they_come(start_many, nc) -> None:
    start_many(
        {
            "rhetor": {},
            "apollo": {},
            "athena": {"TEKTON_SIMULATED_LATENCY_MS": "600"},
            "sophia": {"TEKTON_SIMULATED_LATENCY_MS": "6000"},
        }
    )
    replies, result, arrivals = await team(
        nc, deadline=1.5, message="quick", cis=["apollo", "athena", "sophia"]
    )
    assert [(r["type"], r["ai_id"]) for r in replies] == [  # in arrival order
        ("team.reply", "apollo-ci"),
        ("team.reply", "athena-ci"),
        ("team.error", "sophia-ci"),
    ]
    assert "timed out" in replies[2]["error"]
    assert arrivals[0] < 0.5 <= arrivals[1]  # the fast reply did not wait for the slow one
    assert result["answered"] == ["apollo-ci", "athena-ci"]


async def test_synthesis(start_many, nc) -> None:
    start_many({"rhetor": {}, "apollo": {}, "athena": {}})
    replies, result, _ = await team(
        nc, message="what next?", mode="synthesis", cis=["athena"], mediator="apollo"
    )
    assert [r["ai_id"] for r in replies] == ["athena-ci"]
    assert result["mediator"] == "apollo-ci" and "athena-ci" in result["synthesis"]


async def test_consensus_tally(start_many, nc) -> None:
    # every simulated CI votes accept; mixed votes are counted in tests/unit/test_team_ballot.py
    start_many({"rhetor": {}, "apollo": {}, "athena": {}, "sophia": {}})
    replies, result, _ = await team(
        nc, message="ship on friday?", mode="consensus", cis=["apollo", "athena", "sophia"]
    )
    assert sorted(r["ai_id"] for r in replies) == ["apollo-ci", "athena-ci", "sophia-ci"]
    votes = result["votes"]
    assert {ci: v["vote"] for ci, v in votes.items()} == dict.fromkeys(votes, "accept")
    assert all(0 < v["confidence"] <= 1 for v in votes.values())
    assert result["accept_share"] == 1.0 and result["decision"] == "accept"


async def test_bad_mode_is_a_clear_error(start_many, nc) -> None:
    start_many({"rhetor": {}})
    msg = await nc.request("tekton.rhetor.team", b'{"message": "x", "mode": "shout"}', timeout=5)
    assert msg.headers["Nats-Service-Error-Code"] == "400"
    assert (
        "shout" in msg.headers["Nats-Service-Error"]
        and "$.mode" in msg.headers["Nats-Service-Error"]
    )
    msg = await nc.request("tekton.rhetor.team", b'{"message": "x", "mode": "directed"}', timeout=5)
    assert "needs the CIs" in msg.headers["Nats-Service-Error"]


async def test_roster_health_and_counters(start_many, nc) -> None:
    procs = start_many({"rhetor": {}, "apollo": {}, "athena": {}})
    await team(nc, message="count me", cis=["athena"])
    procs["apollo"].kill()  # gone: not healthy (its stale record stays in the registry)
    reply = await nc.request("tekton.rhetor.roster", b"", timeout=10)
    entries = {e["ci"]: e for e in json.loads(reply.data)["cis"]}
    assert entries["athena-ci"]["healthy"] and entries["athena-ci"]["turns"] == 1
    assert entries["athena-ci"]["tokens"] > 0 and entries["athena-ci"]["ping_ms"] < 2000
    assert not entries["apollo-ci"]["healthy"] and entries["apollo-ci"]["ping_ms"] is None
    assert entries["rhetor-ci"]["healthy"]
