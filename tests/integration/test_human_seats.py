"""A person's seat on real NATS: Rhetor asks the person, says it is alive while the
seat waits, holds the answer to the seat's schema (a wrong one refused with what is
wrong, the seat waiting on), takes only answers for a seat that waits, and a seat with
no answer in time abstains; a whole debate with a person as skeptic and as mediator."""

from __future__ import annotations

import asyncio
import json

import nats
import pytest

from tekton_common.client import Tekton
from tekton_common.contract.debates import SeatAnswer
from tekton_common.contract.events import DebateEvent, SeatAwaited, SeatWaiting
from tekton_common.errors import NotFoundError, RemoteError
from tekton_rhetor.debate import position_errors
from tekton_rhetor.humans import HumanSeats
from tests.integration.test_debates import cast, debate

POSITION = {
    "position": "Keep run events in JetStream and project them into PostgreSQL.",
    "scores": {
        "correctness": 0.8,
        "stack_fit": 0.9,
        "ops_risk": 0.3,
        "reversibility": 0.7,
        "recency": 0.6,
    },
    "risks": ["a stream without replicas"],
    "checks": ["kill the server mid-run"],
    "self_confidence": 0.9,
    "vote": "accept",
}


@pytest.fixture
async def nc(nats_server):
    conn = await nats.connect(nats_server.url)
    yield conn
    await conn.close()


async def test_a_seat_waits_alive_and_takes_only_an_answer_that_holds(nc) -> None:
    seats = HumanSeats(nc, "d-human-1", timeout=30, keepalive=0.2)
    emitted: list[DebateEvent] = []

    async def emit(event: DebateEvent) -> None:
        emitted.append(event)

    await seats.open()
    try:
        asking = asyncio.create_task(
            seats.ask("skeptic", 1, "Stage: plan\nQuestion: q", "position", position_errors, emit)
        )
        await asyncio.sleep(0.7)
        awaited = emitted[0]
        assert isinstance(awaited, SeatAwaited) and awaited.kind == "position"
        assert awaited.role == "skeptic" and awaited.round == 1 and "Question: q" in awaited.ask
        assert sum(isinstance(e, SeatWaiting) for e in emitted) >= 2  # alive while it waits
        tekton = Tekton(nc)
        wrong = {**POSITION, "vote": "perhaps"}
        with pytest.raises(RemoteError, match="the skeptic's answer does not hold") as refused:
            await tekton.answer("d-human-1", SeatAnswer(role="skeptic", answer=wrong, by="al"))
        assert refused.value.code == 400 and not asking.done()
        with pytest.raises(RemoteError, match="waits for no answer from the mediator") as other:
            await tekton.answer("d-human-1", SeatAnswer(role="mediator", answer={}, by="al"))
        assert other.value.code == 409 and "it waits for: skeptic" in str(other.value)
        late_round = SeatAnswer(role="skeptic", answer=POSITION, by="al", round=2)
        with pytest.raises(RemoteError, match="waits for round 1's answer, not round 2's"):
            await tekton.answer("d-human-1", late_round)
        with pytest.raises(NotFoundError, match="no debate d-nobody waits"):
            await tekton.answer("d-nobody", SeatAnswer(role="skeptic", answer=POSITION, by="al"))
        taken = await tekton.answer(
            "d-human-1", SeatAnswer(role="skeptic", answer=POSITION, by="alice")
        )
        assert (taken.role, taken.round, taken.by) == ("skeptic", 1, "alice")
        attempt = await asyncio.wait_for(asking, 5)
        assert attempt.reply is not None and json.loads(attempt.reply.content) == POSITION
        assert attempt.reply.model == "human:alice" and attempt.reply.usage.input_tokens == 0
        late = SeatAnswer(role="skeptic", answer=POSITION, by="alice")
        with pytest.raises(RemoteError, match="waits for no answer from the skeptic"):
            await tekton.answer("d-human-1", late)  # answered already
    finally:
        await seats.close()


async def test_a_seat_with_no_answer_in_time_abstains(nc) -> None:
    seats = HumanSeats(nc, "d-human-2", timeout=0.5, keepalive=0.2)

    async def emit(_event: DebateEvent) -> None:
        return None

    await seats.open()
    try:
        attempt = await seats.ask("pragmatist", 2, "q", "position", position_errors, emit)
    finally:
        await seats.close()
    assert attempt.reply is None and attempt.timed_out
    assert attempt.error == "no answer from the person in the pragmatist seat in 0.5s"


async def test_a_debate_with_a_person_as_skeptic_and_as_mediator(start_many, nc) -> None:
    start_many(cast())
    events: list[dict] = []
    debate_id = "d-human-3"
    held = asyncio.create_task(
        debate(
            nc,
            events,
            timeout=60,
            debate_id=debate_id,
            max_rounds=1,
            roles={"skeptic": "human", "mediator": "human"},
        )
    )

    async def awaited(role: str) -> dict:
        for _ in range(300):
            found = [e for e in events if e["type"] == "debate.awaiting.v1" and e["role"] == role]
            if found:
                return found[-1]
            await asyncio.sleep(0.1)
        raise AssertionError(f"the {role} seat was never asked: {events}")

    tekton = Tekton(nc)
    asked = await awaited("skeptic")
    assert asked["kind"] == "position" and "JetStream" in asked["ask"]
    await tekton.answer(debate_id, SeatAnswer(role="skeptic", answer=POSITION, by="alice"))
    asked = await awaited("mediator")
    assert asked["kind"] == "outcome" and "Round 1 positions" in asked["ask"]
    assert "alice" not in asked["ask"] and '"role":"skeptic"' in asked["ask"]
    outcome = {
        "artifact": {
            "summary": "run events in JetStream",
            "decision": "adopt JetStream",
            "rationale": "durable, replayable",
            "actions": ["add the stream"],
            "confidence": 0.85,
        },
        "status": "approved",
        "rationale": "all three accept",
        "confidence": 0.85,
    }
    bad = {**outcome, "artifact": {"decision": 7}}
    with pytest.raises(RemoteError, match=r"the mediator's answer does not hold: artifact\."):
        await tekton.answer(debate_id, SeatAnswer(role="mediator", answer=bad, by="bob"))
    await tekton.answer(debate_id, SeatAnswer(role="mediator", answer=outcome, by="bob"))
    result = await asyncio.wait_for(held, 30)
    assert result["status"] == "approved", result["reason"]
    assert result["artifact"] == outcome["artifact"]
    assert result["roles"]["skeptic"] == "human" and result["roles"]["mediator"] == "human"
    turns = {t["role"]: t for t in result["transcript"]}
    assert turns["skeptic"]["model"] == "human:alice" and turns["mediator"]["model"] == "human:bob"
    assert turns["skeptic"]["position"]["position"] == POSITION["position"]
    assert turns["proponent"]["model"] != "human:alice"  # the CIs answered their seats
