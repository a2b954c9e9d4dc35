"""Run events against a real JetStream: none lost when their publisher is cancelled."""

from __future__ import annotations

import asyncio
import os
import uuid
from pathlib import Path
from typing import Any

import msgspec
import nats
import pytest

from tekton_common import bus
from tekton_common.contract.debates import DebateResult
from tekton_common.contract.events import (
    DebateFinished,
    RunStarted,
    StageBlocked,
    StageProgress,
    StageRecalled,
)
from tekton_common.contract.runs import StageOutcome, StageRequest
from tekton_common.errors import PermissionDeniedError, TransportError
from tekton_common.runlog import EventLog, ensure_runs_stream, read_events
from tekton_common.settings import Settings
from tekton_stages.asking import StageCaller
from tests.helpers import NatsServer

RESULT = DebateResult(
    debate_id="d-last",
    stage="plan",
    status="approved",
    reason=None,
    artifact={},
    rationale="-",
    dissent=[],
    risks=[],
    checklist=[],
    confidence=0.9,
    votes={},
    accept_share=1.0,
    loops_run=1,
    repairs=0,
    roles={},
    transcript=[],
    total_tokens=0,
    cost_usd=0.0,
    duration_s=0.0,
)


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
        progress = StageProgress(stage="code", step="git apply --check")
        first = asyncio.create_task(log.emit(progress))
        await asyncio.sleep(0.1)  # stored, not yet acknowledged
        first.cancel()
        await log.emit(StageBlocked(stage="code", reason="the diff does not apply"))
        events = await read_events(nc.jetstream(), run_id)
    finally:
        await nc.close()
    # before the fix, StageBlocked reused seq 1 and JetStream dropped it as a duplicate
    assert [(e.seq, type(e)) for e in events] == [(1, StageProgress), (2, StageBlocked)]


async def test_a_stages_last_events_are_kept_when_its_reply_comes_first(nats_server) -> None:
    nc = await nats.connect(nats_server.url)

    async def stage(msg) -> None:  # two last events, then the reply at once
        ask = msgspec.json.decode(msg.data)
        subject = f"tekton.debates.{ask['debate_id']}.events"
        await nc.publish(subject, msgspec.json.encode(DebateFinished(result=RESULT)))
        for note in ("first", "second"):
            said = StageRecalled(note=note, lessons=[], chunks=[])
            await nc.publish(subject, msgspec.json.encode(said))
        reply = StageOutcome(stage="plan", status="approved", reason=None, artifact={})
        await msg.respond(msgspec.json.encode(reply))

    try:
        await ensure_runs_stream(nc)
        await nc.subscribe("tekton.stage.plan.run", cb=stage)
        request = StageRequest(run_id="r-last", stage="plan", goal="x", debate_id="d-last")
        log = EventLog(SlowAcks(nc.jetstream(), 0.2), request.run_id)  # type: ignore[arg-type]
        outcome = await StageCaller(nc, timeout=30, silence=60).ask(request, log)
        events = await read_events(nc.jetstream(), request.run_id)
    finally:
        await nc.close()
    assert outcome.status == "approved"
    said = [e.detail for e in events if isinstance(e, StageProgress)]
    assert said == ["first", "second"]
    assert [e.seq for e in events] == [1, 2]


async def test_an_event_to_a_subject_no_stream_captures_fails_at_once(nats_server) -> None:
    nc = await nats.connect(nats_server.url)
    try:
        js = nc.jetstream()
        await ensure_runs_stream(nc)
        await js.delete_stream("TEKTON_RUNS")  # gone: no retry brings it back
        log = EventLog(js, uuid.uuid4().hex[:12], patience=60)
        started = asyncio.get_running_loop().time()
        with pytest.raises(TransportError, match="no JetStream stream captures"):
            await log.emit(RunStarted(goal="x", stages=[], output="-", request={}))
        assert asyncio.get_running_loop().time() - started < 10  # not 60 s of retries
    finally:
        await ensure_runs_stream(nc)
        await nc.close()


async def test_a_subject_the_user_may_not_publish_fails_at_once(tmp_path: Path) -> None:
    """A deployment whose permissions refuse the run events: the run fails with the
    server's reason instead of retrying for its whole patience."""
    config = tmp_path / "nats.conf"
    config.write_text(
        "authorization { users = [\n"
        '  {user: admin, password: "pw-admin"}\n'
        '  {user: stages, password: "pw-stages", permissions: {\n'
        '    publish: {allow: ["$JS.API.>", "_INBOX.>"], deny: ["tekton.runs.*.events"]}\n'
        '    subscribe: {allow: ["_INBOX.stages.>"]}}}\n'
        "]}\n"
    )
    server = ConfiguredNats(tmp_path, config).start()
    try:
        admin = await nats.connect(server.url, user="admin", password="pw-admin")
        await ensure_runs_stream(admin)
        await admin.close()
        settings = Settings(nats_url=server.url, nats_user="stages")
        os.environ["TEKTON_NATS_PASSWORD"] = "pw-stages"
        try:
            nc = await bus.connect(settings, "tekton-stages")
        finally:
            del os.environ["TEKTON_NATS_PASSWORD"]
        try:
            log = EventLog(nc.jetstream(), "denied", patience=60, nc=nc)
            started = asyncio.get_running_loop().time()
            with pytest.raises(PermissionDeniedError, match=r"(?i)permissions violation"):
                await log.emit(RunStarted(goal="x", stages=[], output="-", request={}))
            assert asyncio.get_running_loop().time() - started < 15
        finally:
            await nc.close()
    finally:
        server.stop()


class ConfiguredNats(NatsServer):
    """nats-server started from a configuration file."""

    def __init__(self, store: Path, config: Path) -> None:
        super().__init__(store)
        self.config = config

    def command(self) -> list[str]:
        return [*super().command(), "-c", str(self.config)]
