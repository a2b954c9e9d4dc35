"""The run coordinator: carries a goal through the stages, one event at a time.

``tekton.runs.start`` answers at once with the run id and the stage plan; the run goes
on in this service, so it survives the command line that started it. Its state is its
event log: ``tekton.runs.resume`` reads the log and continues after the last finished
stage, reusing the artifacts already made. Every stage's outcome (what was made, or what
blocked it) is stored as a lesson in Milvus for later runs; with ``--repo`` the
repository is indexed there first.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import time
from pathlib import Path
from typing import Any

import msgspec
import nats.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from tekton_common import bus, metrics, spans
from tekton_common.artifact_files import artifact_name, run_folder, write_artifact
from tekton_common.contract.codec import convert, encode
from tekton_common.contract.ids import check_run_id
from tekton_common.contract.runs import (
    Lesson,
    Recall,
    RunAccepted,
    RunRequest,
    StageOutcome,
    StageRequest,
)
from tekton_common.errors import NotFoundError, ProtocolError, TektonError
from tekton_common.settings import Settings
from tekton_stages.events import RUNS_STREAM, RUNS_SUBJECTS, TERMINAL, EventLog, read_events
from tekton_stages.memory import Memory, MemoryUnavailableError
from tekton_stages.pipeline import DIAMOND, select
from tekton_stages.repo import check_repo, chunk_repo, repo_roots
from tekton_stages.stage import recall

logger = logging.getLogger(__name__)
ACTIVE_RUNS = metrics.up_down_counter(
    "tekton.runs.active", "Runs being carried through their stages"
)


def artifacts_root(settings: Settings) -> Path:
    """Where this service keeps every run's artifacts: ``$TEKTON_HOME/artifacts``."""
    return settings.home_path / "artifacts"


def recalled_line(event: dict[str, Any]) -> str:
    """What a stage recalled, in a few words."""
    if event["note"] != "ok":
        return str(event["note"])
    runs = sorted({x["run_id"] for x in event["lessons"]})
    said = f"{len(event['lessons'])} lessons" + (f" from runs {', '.join(runs)}" if runs else "")
    return said + (f", {len(event['chunks'])} repository chunks" if event["chunks"] else "")


_DRAINING: set[asyncio.Task[None]] = set()


async def _close(sub: Subscription) -> None:
    """End a debate's event subscription once the events already received are handled
    (the stage's last ones arrive with its reply). Waits up to 5 s; past that (NATS
    restarting) the drain goes on in the background."""
    drain = asyncio.ensure_future(sub.drain())  # type: ignore[no-untyped-call]
    _DRAINING.add(drain)
    drain.add_done_callback(_drained)
    with contextlib.suppress(TimeoutError, nats.errors.Error):
        await asyncio.wait_for(asyncio.shield(drain), 5.0)


def _drained(task: asyncio.Task[None]) -> None:
    _DRAINING.discard(task)
    if not task.cancelled() and task.exception() is not None:  # closed already: nothing left
        logger.debug("debate events subscription: %r", task.exception())


def _current_request(stored: dict[str, Any]) -> dict[str, Any]:
    """A run request as stored by RunStarted, without the fields older versions had."""
    return {k: v for k, v in stored.items() if k != "output"}


class Coordinator:
    """Starts, drives and resumes runs."""

    def __init__(self, nc: Client, settings: Settings, spawn: Any, memory: Memory) -> None:
        self.nc = nc
        self.memory = memory
        self.js = nc.jetstream(timeout=10)
        self.settings = settings
        self.spawn = spawn
        self.active: set[str] = set()

    async def start(self, request: RunRequest) -> RunAccepted:
        """Validate, emit RunStarted, and drive the run in the background."""
        stages = select(DIAMOND, request.from_stage, request.to_stage)
        if request.repo:
            checked = check_repo(request.repo, repo_roots(self.settings.repo_roots))
            request = msgspec.structs.replace(request, repo=checked)
        if await read_events(self.js, request.run_id):
            raise ProtocolError(f"run {request.run_id} already exists; use resume")
        log = EventLog(self.js, request.run_id, nc=self.nc)
        output = str(run_folder(artifacts_root(self.settings), request.run_id))
        await log.emit(
            "RunStarted",
            goal=request.goal,
            stages=stages,
            output=output,
            request=msgspec.to_builtins(request),
        )
        self.spawn(self._drive(request, stages, log, output, {}))
        return RunAccepted(run_id=request.run_id, stages=stages)

    async def resume(self, run_id: str) -> RunAccepted:
        """Continue a run after its last finished stage."""
        events = await read_events(self.js, check_run_id(run_id))
        if not events:
            raise NotFoundError(f"no run {run_id}")
        if run_id in self.active:
            raise ProtocolError(f"run {run_id} is running")
        if events[-1]["type"] == "RunFinished.v1":
            raise ProtocolError(f"run {run_id} has finished; nothing to resume")
        started = events[0]
        request = convert(_current_request(started["request"]), RunRequest)
        finished = {e["stage"]: e["artifact"] for e in events if e["type"] == "ArtifactCreated.v1"}
        remaining = [s for s in started["stages"] if s not in finished]
        log = EventLog(self.js, run_id, seq=events[-1]["seq"], nc=self.nc)
        await log.emit("RunResumed", done=list(finished), remaining=remaining)
        self.spawn(self._drive(request, remaining, log, started["output"], finished))
        return RunAccepted(run_id=run_id, stages=remaining, skipped=list(finished))

    async def resume_interrupted(self) -> list[str]:
        """Resume every run whose log ends without RunFinished or RunFailed: the process
        that drove it died (or was stopped) mid-run. Returns their ids."""

        async def subjects() -> dict[str, int]:
            info = await self.js.stream_info(RUNS_STREAM, subjects_filter=RUNS_SUBJECTS)
            return info.state.subjects or {}

        async def last_type(subject: str) -> str:
            last = await self.js.get_last_msg(RUNS_STREAM, subject)
            return str(msgspec.json.decode(last.data or b"{}").get("type"))

        resumed: list[str] = []
        for subject in sorted(await bus.patiently(subjects, "listing runs")):
            run_id = subject.split(".")[2]
            kind = await bus.patiently(functools.partial(last_type, subject), f"run {run_id}")
            if run_id in self.active or kind in TERMINAL:
                continue
            try:
                await self.resume(run_id)
            except TektonError as exc:
                logger.warning("run %s not resumed: %s", run_id, exc)
                continue
            logger.info("run %s was interrupted; resumed after its last finished stage", run_id)
            resumed.append(run_id)
        return resumed

    async def _drive(
        self,
        request: RunRequest,
        stages: list[str],
        log: EventLog,
        output: str,
        earlier: dict[str, Any],
    ) -> None:
        with spans.workflow("run", request.run_id, **{"tekton.stages": len(stages)}) as current:
            ACTIVE_RUNS.add(1)
            try:
                totals = await self._run(request, stages, log, output, earlier)
            finally:
                ACTIVE_RUNS.add(-1)
            current.set_attributes({f"tekton.{k}": v for k, v in totals.items()})
            if totals["status"] != "finished":
                spans.fail(current, "run failed")

    async def _run(
        self,
        request: RunRequest,
        stages: list[str],
        log: EventLog,
        output: str,
        earlier: dict[str, Any],
    ) -> dict[str, Any]:
        self.active.add(request.run_id)
        started = time.perf_counter()
        totals: dict[str, Any] = {"tokens": 0, "cost_usd": 0.0}
        lessons: list[asyncio.Task[None]] = []  # kept while the next stage runs
        recalls: dict[str, asyncio.Task[Recall]] = {}
        try:
            if request.repo and stages:
                await self._index(request.repo, stages[0], log)

            def fetch(stage: str) -> None:
                if stage not in recalls:
                    recalls[stage] = asyncio.create_task(
                        recall(self.memory, request.goal, stage, request.run_id, request.repo)
                    )

            for number, stage in enumerate(stages):
                # the next stage's memory is fetched while this one debates (recall does not
                # depend on this run's earlier stages); one ahead, so bursts of runs stay light
                fetch(stage)
                if number + 1 < len(stages):
                    fetch(stages[number + 1])
                found = await recalls[stage]
                outcome = await self._stage(request, stage, log, earlier, found)
                lessons.append(asyncio.create_task(self._learn(request, stage, outcome, log)))
                totals["tokens"] += outcome.debate.get("total_tokens", 0)
                totals["cost_usd"] += outcome.debate.get("cost_usd", 0.0)
                if outcome.status != "approved" or outcome.artifact is None:
                    await log.emit("StageBlocked", stage=stage, reason=outcome.reason)
                    await asyncio.gather(*lessons)
                    await log.emit(
                        "RunFailed",
                        reason=f"{stage} blocked: {outcome.reason}",
                        duration_s=round(time.perf_counter() - started, 3),
                        **totals,
                    )
                    return {**totals, "status": "failed"}
                files = await asyncio.to_thread(
                    write_artifact, Path(output), stage, outcome.artifact
                )
                earlier[stage] = outcome.artifact
                await log.emit(
                    "ArtifactCreated",
                    stage=stage,
                    name=artifact_name(stage),
                    files=files,
                    artifact=outcome.artifact,
                )
                await log.emit(
                    "StageFinished",
                    stage=stage,
                    status="approved",
                    tokens=outcome.debate["total_tokens"],
                    cost_usd=outcome.debate["cost_usd"],
                    duration_s=outcome.debate["duration_s"],
                    confidence=outcome.debate["confidence"],
                )
            await asyncio.gather(*lessons)  # a run's lessons are kept before it ends
            await log.emit(
                "RunFinished",
                artifacts=list(earlier),
                output=output,
                duration_s=round(time.perf_counter() - started, 3),
                **totals,
            )
        except Exception as exc:  # the run must end with an event, whatever failed
            await asyncio.gather(*lessons, return_exceptions=True)
            await log.emit(
                "RunFailed",
                reason=f"{type(exc).__name__}: {exc}",
                duration_s=round(time.perf_counter() - started, 3),
                **totals,
            )
            return {**totals, "status": "failed"}
        finally:
            for fetching in recalls.values():  # a run that stopped early needs no more
                fetching.cancel()
            self.active.discard(request.run_id)
        return {**totals, "status": "finished"}

    async def _index(self, repo: str, stage: str, log: EventLog) -> None:
        await log.emit("StageProgress", stage=stage, step="indexing repository", detail=repo)
        chunks, files = await asyncio.to_thread(chunk_repo, repo)
        try:
            with spans.span("index repository", {"db.system.name": "milvus"}):
                stored = await self.memory.index_repo(repo, chunks)
        except MemoryUnavailableError as exc:
            detail = f"memory unavailable, going on without repository chunks: {exc}"
            await log.emit(
                "StageProgress", stage=stage, step="repository not indexed", detail=detail
            )
            return
        detail = f"{stored} chunks from {files} files"
        await log.emit("StageProgress", stage=stage, step="indexed repository", detail=detail)

    async def _learn(
        self, request: RunRequest, stage: str, outcome: StageOutcome, log: EventLog
    ) -> None:
        """Keep the stage's outcome as a lesson for later runs."""
        debate = outcome.debate
        if outcome.status == "approved":
            made = json.dumps(outcome.artifact, ensure_ascii=False)[:1500]
            text = f"approved with confidence {debate.get('confidence', 0):.2f}: {made}"
        else:
            text = f"blocked: {outcome.reason}"
        lesson = Lesson(request.run_id, stage, outcome.status, request.goal, text)
        try:
            with spans.span("remember lesson", {"db.system.name": "milvus"}):
                await self.memory.remember(lesson)
        except MemoryUnavailableError as exc:
            detail = f"memory unavailable, lesson not kept: {exc}"
            await log.emit("StageProgress", stage=stage, step="lesson not kept", detail=detail)
            return
        await log.emit("StageProgress", stage=stage, step="lesson kept", detail=outcome.status)

    async def _request(self, subject: str, data: bytes) -> Msg:
        """The stage request; asked again for up to 30 s while the stage has no responder
        (its endpoints are being registered, or their process is starting again)."""
        started = time.monotonic()
        attempt = 0
        while True:
            try:
                return await self.nc.request(subject, data, timeout=self.settings.stage_timeout)
            except nats.errors.NoRespondersError:
                if time.monotonic() - started > 30:
                    raise
            await asyncio.sleep(bus.backoff_delay(attempt))
            attempt += 1

    async def _ask_stage(self, stage: str, data: bytes, heard: list[float]) -> Msg:
        """The stage request, sent again (at most twice) when the stage falls silent for
        `stage_silence` seconds: its request or reply died with a NATS server."""
        subject = f"tekton.stage.{stage}.run"
        for resends_left in (2, 1, 0):
            heard[0] = time.monotonic()
            ask = asyncio.ensure_future(self._request(subject, data))
            while not ask.done():
                await asyncio.wait({ask}, timeout=1.0)
                silent = time.monotonic() - heard[0] > self.settings.stage_silence
                if silent and resends_left and not ask.done():
                    ask.cancel()
                    logger.warning("stage %s silent; asking again", stage)
                    break
            else:
                return ask.result()
        raise AssertionError("the last attempt is never cancelled")

    async def _stage(
        self,
        request: RunRequest,
        stage: str,
        log: EventLog,
        earlier: dict[str, Any],
        found: Recall | None = None,
    ) -> StageOutcome:
        debate_id = f"{request.run_id}-{stage}-{log.seq}"
        await log.emit("StageStarted", stage=stage, debate_id=debate_id)

        finished = asyncio.Event()
        heard = [time.monotonic()]  # when the stage last showed it is alive

        async def forward(msg: Msg) -> None:
            heard[0] = time.monotonic()
            event = msgspec.json.decode(msg.data)
            if event["type"] == "debate.finished":
                finished.set()
            elif event["type"] == "stage.recalled":
                await log.emit(
                    "StageProgress",
                    stage=stage,
                    step="recalled",
                    detail=recalled_line(event),
                    lessons=event["lessons"],
                    chunks=event["chunks"],
                )
            elif event["type"] == "stage.checked":
                await log.emit(
                    "StageProgress",
                    stage=stage,
                    step=event["check"],
                    detail="passed" if event["ok"] else f"failed: {event['output']}",
                    ok=event["ok"],
                )
            elif event["type"] == "debate.turn":
                turn = event["turn"]
                await log.emit("DebateTurn", stage=stage, debate_id=debate_id, turn=turn)
            elif event["type"] == "debate.round":
                await log.emit(
                    "StageProgress",
                    stage=stage,
                    step=f"round {event['round']}",
                    accept_share=event["accept_share"],
                )

        sub = await self.nc.subscribe(f"tekton.debates.{debate_id}.events", cb=forward)
        try:
            ask = StageRequest(
                run_id=request.run_id,
                stage=stage,  # type: ignore[arg-type]
                goal=request.goal,
                debate_id=debate_id,
                earlier=earlier,
                consensus_free=stage in request.consensus_free,
                model=request.model,
                max_rounds=request.max_rounds,
                threshold=request.threshold,
                repo=request.repo,
                recall=found,
            )
            reply = await self._ask_stage(stage, encode(ask), heard)
            headers = reply.headers or {}
            if "Nats-Service-Error-Code" in headers:
                return StageOutcome(stage, "blocked", headers.get("Nats-Service-Error"), None, {})
            outcome = msgspec.json.decode(reply.data, type=StageOutcome)
            # the debate's last events may still be in flight: forward them first
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(finished.wait(), 2.0)
            return outcome
        finally:
            await _close(sub)
