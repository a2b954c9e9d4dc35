"""A stage request lost with a NATS server is asked again once the stage falls silent."""

from __future__ import annotations

import asyncio
import time

import nats

from tekton_common.contract.runs import StageRequest
from tekton_stages.asking import StageCaller

REQUEST = StageRequest(run_id="r1", stage="plan", goal="g", debate_id="d1")


async def test_a_silent_stage_is_asked_again(nats_server) -> None:
    nc = await nats.connect(nats_server.url)
    asked: list[float] = []

    async def stage(msg) -> None:  # the first request is "lost": never answered
        asked.append(time.monotonic())
        if len(asked) > 1:
            await msg.respond(b'{"status": "approved"}')

    await nc.subscribe("tekton.stage.plan.run", cb=stage)
    caller = StageCaller(nc, timeout=60, silence=1.0)
    try:
        reply = await caller._ask_patiently(REQUEST, [time.monotonic()])
    finally:
        await nc.close()
    assert reply.data == b'{"status": "approved"}'
    assert len(asked) == 2 and asked[1] - asked[0] >= 1.0


async def test_a_stage_that_keeps_talking_is_not_asked_again(nats_server) -> None:
    nc = await nats.connect(nats_server.url)
    asked: list[float] = []
    heard = [time.monotonic()]

    async def stage(msg) -> None:
        asked.append(time.monotonic())
        for _ in range(6):  # a slow stage that reports progress
            heard[0] = time.monotonic()
            await asyncio.sleep(0.4)
        await msg.respond(b"done")

    await nc.subscribe("tekton.stage.plan.run", cb=stage)
    caller = StageCaller(nc, timeout=60, silence=1.0)
    try:
        reply = await caller._ask_patiently(REQUEST, heard)
    finally:
        await nc.close()
    assert reply.data == b"done" and len(asked) == 1
