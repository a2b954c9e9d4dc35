"""Run events against a real JetStream: none lost when their publisher is cancelled."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import msgspec
import nats

from tekton_common.settings import Settings
from tekton_stages.coordinator import Coordinator
from tekton_stages.events import EventLog, ensure_runs_stream, read_events
from tekton_stages.memory import Memory
from tekton_stages.pipeline import RunRequest


class SlowAcks:
    """The real JetStream context, with each acknowledgement handed back late."""

    def __init__(self, js: Any, delay: float) -> None:
        self.js = js
        self.delay = delay

    async def publish(self, *args: Any, **kwargs: Any) -> Any:
        ack = await self.js.publish(*args, **kwargs)
        await asyncio.sleep(self.delay)
        return ack


async def test_an_event_whose_publisher_is_cancelled_still_counts(nats_server) -> None:
    nc = await nats.connect(nats_server.url)
    try:
        await ensure_runs_stream(nc)
        run_id = uuid.uuid4().hex[:12]
        log = EventLog(SlowAcks(nc.jetstream(), 0.3), run_id)  # type: ignore[arg-type]
        first = asyncio.create_task(log.emit("StageProgress", step="git apply --check"))
        await asyncio.sleep(0.1)  # stored, not yet acknowledged
        first.cancel()
        await log.emit("StageBlocked", reason="the diff does not apply")
        events = await read_events(nc.jetstream(), run_id)
    finally:
        await nc.close()
    # before the fix, StageBlocked reused seq 1 and JetStream dropped it as a duplicate
    assert [(e["seq"], e["type"]) for e in events] == [
        (1, "StageProgress.v1"),
        (2, "StageBlocked.v1"),
    ]


async def test_a_stages_last_events_are_kept_when_its_reply_comes_first(nats_server) -> None:
    nc = await nats.connect(nats_server.url)

    async def stage(msg) -> None:  # two last events, then the reply at once
        ask = msgspec.json.decode(msg.data)
        subject = f"tekton.debates.{ask['debate_id']}.events"
        await nc.publish(subject, b'{"type": "debate.finished"}')
        for ok in (True, False):
            check = {"type": "stage.checked", "check": "git apply --check", "ok": ok}
            await nc.publish(subject, msgspec.json.encode({**check, "output": "-"}))
        await msg.respond(b'{"status": "approved", "debate": {}}')

    try:
        await ensure_runs_stream(nc)
        await nc.subscribe("tekton.stage.plan.run", cb=stage)
        coordinator = Coordinator(nc, Settings(), spawn=None, memory=Memory("http://x", "hashing"))
        request = RunRequest(goal="x")
        log = EventLog(SlowAcks(nc.jetstream(), 0.2), request.run_id)  # type: ignore[arg-type]
        outcome = await coordinator._stage(request, "plan", log, {})
        events = await read_events(nc.jetstream(), request.run_id)
    finally:
        await nc.close()
    assert outcome["status"] == "approved"
    checks = [e["ok"] for e in events if e.get("step") == "git apply --check"]
    assert checks == [True, False]
    assert [e["seq"] for e in events] == [1, 2, 3]
