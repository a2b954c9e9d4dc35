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
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import msgspec
from nats.aio.client import Client

from tekton_common import bus, metrics, spans
from tekton_common.artifact_files import artifact_name, run_folder, write_artifact
from tekton_common.bus_service import Spawn
from tekton_common.contract.codec import convert
from tekton_common.contract.debates import DebateResult
from tekton_common.contract.events import (
    TERMINAL,
    ArtifactCreated,
    RunFailed,
    RunFinished,
    RunResumed,
    RunStarted,
    StageBlocked,
    StageFinished,
    StageProgress,
    StageStarted,
    read_run_event,
)
from tekton_common.contract.ids import check_run_id
from tekton_common.contract.runs import (
    Lesson,
    Recall,
    RunAccepted,
    RunRequest,
    StageOutcome,
    StageRequest,
)
from tekton_common.contract.schemas import JsonObject
from tekton_common.errors import NotFoundError, ProtocolError, TektonError
from tekton_common.runlog import RUNS_STREAM, EventLog, read_events, run_ids, run_subject
from tekton_common.settings import Settings
from tekton_common.stages import select
from tekton_stages.asking import StageCaller
from tekton_stages.memory import Memory, MemoryUnavailableError
from tekton_stages.repo import check_repo, chunk_repo, repo_roots
from tekton_stages.stage import recall

logger = logging.getLogger(__name__)
ACTIVE_RUNS = metrics.up_down_counter(
    "tekton.runs.active", "Runs being carried through their stages"
)


def artifacts_root(settings: Settings) -> Path:
    """Where this service keeps every run's artifacts: ``$TEKTON_HOME/artifacts``."""
    return settings.home_path / "artifacts"


def _current_request(stored: JsonObject) -> RunRequest:
    """A run request as RunStarted stored it, without the fields older versions had."""
    return convert({k: v for k, v in stored.items() if k != "output"}, RunRequest)


@dataclass
class Totals:
    """What a run has spent so far."""

    tokens: int = 0
    cost_usd: float = 0.0

    def add(self, outcome: StageOutcome) -> None:
        """Count one stage's debate."""
        if outcome.debate is not None:
            self.tokens += outcome.debate.total_tokens
            self.cost_usd += outcome.debate.cost_usd


class Coordinator:
    """Starts, drives and resumes runs."""

    def __init__(self, nc: Client, settings: Settings, spawn: Spawn, memory: Memory) -> None:
        self.nc = nc
        self.memory = memory
        self.js = nc.jetstream(timeout=10)
        self.settings = settings
        self.spawn = spawn
        self.stages = StageCaller(nc, settings.stage_timeout, settings.stage_silence)
        self.active: set[str] = set()

    async def start(self, request: RunRequest) -> RunAccepted:
        """Validate, emit RunStarted, and drive the run in the background."""
        stages = select(request.from_stage, request.to_stage)
        if request.repo:
            checked = check_repo(request.repo, repo_roots(self.settings.repo_roots))
            request = msgspec.structs.replace(request, repo=checked)
        if await read_events(self.js, request.run_id):
            raise ProtocolError(f"run {request.run_id} already exists; use resume")
        log = EventLog(self.js, request.run_id, nc=self.nc)
        output = str(run_folder(artifacts_root(self.settings), request.run_id))
        await log.emit(
            RunStarted(
                goal=request.goal,
                stages=stages,
                output=output,
                request=msgspec.to_builtins(request),
            )
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
        if isinstance(events[-1], RunFinished):
            raise ProtocolError(f"run {run_id} has finished; nothing to resume")
        started = events[0]
        if not isinstance(started, RunStarted):
            raise ProtocolError(f"run {run_id}: its log does not begin with RunStarted")
        request = _current_request(started.request)
        finished = {e.stage: e.artifact for e in events if isinstance(e, ArtifactCreated)}
        remaining = [s for s in started.stages if s not in finished]
        log = EventLog(self.js, run_id, seq=events[-1].seq, nc=self.nc)
        await log.emit(RunResumed(done=list(finished), remaining=remaining))
        self.spawn(self._drive(request, remaining, log, started.output, finished))
        return RunAccepted(run_id=run_id, stages=remaining, skipped=list(finished))

    async def resume_interrupted(self) -> list[str]:
        """Resume every run whose log ends without RunFinished or RunFailed: the process
        that drove it died (or was stopped) mid-run. Returns their ids."""

        async def ended(run_id: str) -> bool:
            last = await self.js.get_last_msg(RUNS_STREAM, run_subject(run_id))
            return isinstance(read_run_event(last.data or b"{}"), TERMINAL)

        resumed: list[str] = []
        for run_id in await bus.patiently(lambda: run_ids(self.js), "listing runs"):
            if run_id in self.active or await bus.patiently(
                lambda run_id=run_id: ended(run_id),  # type: ignore[misc]
                f"run {run_id}",
            ):
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
        earlier: dict[str, JsonObject],
    ) -> None:
        with spans.workflow("run", request.run_id, **{"tekton.stages": len(stages)}) as current:
            ACTIVE_RUNS.add(1)
            try:
                totals, finished = await self._run(request, stages, log, output, earlier)
            finally:
                ACTIVE_RUNS.add(-1)
            current.set_attributes(
                {"tekton.tokens": totals.tokens, "tekton.cost_usd": totals.cost_usd}
            )
            current.set_attribute("tekton.status", "finished" if finished else "failed")
            if not finished:
                spans.fail(current, "run failed")

    async def _run(
        self,
        request: RunRequest,
        stages: list[str],
        log: EventLog,
        output: str,
        earlier: dict[str, JsonObject],
    ) -> tuple[Totals, bool]:
        """The stages in order; (what they cost, whether the run finished)."""
        self.active.add(request.run_id)
        started = time.perf_counter()
        totals = Totals()
        lessons: list[asyncio.Task[None]] = []  # kept while the next stage runs
        recalls: dict[str, asyncio.Task[Recall]] = {}

        def took() -> float:
            return round(time.perf_counter() - started, 3)

        def fetch(stage: str) -> None:
            if stage not in recalls:
                recalls[stage] = asyncio.create_task(
                    recall(self.memory, request.goal, stage, request.run_id, request.repo)
                )

        try:
            if request.repo and stages:
                await self._index(request.repo, stages[0], log)
            for number, stage in enumerate(stages):
                # the next stage's memory is fetched while this one debates (recall does not
                # depend on this run's earlier stages); one ahead, so bursts of runs stay light
                fetch(stage)
                if number + 1 < len(stages):
                    fetch(stages[number + 1])
                outcome = await self._stage(request, stage, log, earlier, await recalls[stage])
                lessons.append(asyncio.create_task(self._learn(request, stage, outcome, log)))
                totals.add(outcome)
                if (
                    outcome.status != "approved"
                    or outcome.artifact is None
                    or outcome.debate is None
                ):
                    await log.emit(StageBlocked(stage=stage, reason=outcome.reason))
                    await asyncio.gather(*lessons)
                    await log.emit(
                        RunFailed(
                            reason=f"{stage} blocked: {outcome.reason}",
                            duration_s=took(),
                            tokens=totals.tokens,
                            cost_usd=totals.cost_usd,
                        )
                    )
                    return totals, False
                await self._keep(stage, outcome.artifact, outcome.debate, log, output)
                earlier[stage] = outcome.artifact
            await asyncio.gather(*lessons)  # a run's lessons are kept before it ends
            await log.emit(
                RunFinished(
                    artifacts=list(earlier),
                    output=output,
                    duration_s=took(),
                    tokens=totals.tokens,
                    cost_usd=totals.cost_usd,
                )
            )
        except Exception as exc:  # the run must end with an event, whatever failed
            await asyncio.gather(*lessons, return_exceptions=True)
            await log.emit(
                RunFailed(
                    reason=f"{type(exc).__name__}: {exc}",
                    duration_s=took(),
                    tokens=totals.tokens,
                    cost_usd=totals.cost_usd,
                )
            )
            return totals, False
        finally:
            for fetching in recalls.values():  # a run that stopped early needs no more
                fetching.cancel()
            self.active.discard(request.run_id)
        return totals, True

    async def _keep(
        self,
        stage: str,
        artifact: JsonObject,
        debate: DebateResult,
        log: EventLog,
        output: str,
    ) -> None:
        """Write an approved stage's artifact and say so."""
        files = await asyncio.to_thread(write_artifact, Path(output), stage, artifact)
        name = artifact_name(stage)
        await log.emit(ArtifactCreated(stage=stage, name=name, files=files, artifact=artifact))
        await log.emit(
            StageFinished(
                stage=stage,
                status="approved",
                tokens=debate.total_tokens,
                cost_usd=debate.cost_usd,
                duration_s=debate.duration_s,
                confidence=debate.confidence,
            )
        )

    async def _stage(
        self,
        request: RunRequest,
        stage: str,
        log: EventLog,
        earlier: dict[str, JsonObject],
        found: Recall | None,
    ) -> StageOutcome:
        debate_id = f"{request.run_id}-{stage}-{log.seq}"
        await log.emit(StageStarted(stage=stage, debate_id=debate_id))
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
        return await self.stages.ask(ask, log)

    async def _index(self, repo: str, stage: str, log: EventLog) -> None:
        await log.emit(StageProgress(stage=stage, step="indexing repository", detail=repo))
        chunks, files = await asyncio.to_thread(chunk_repo, repo)
        try:
            with spans.span("index repository", {"db.system.name": "milvus"}):
                stored = await self.memory.index_repo(repo, chunks)
        except MemoryUnavailableError as exc:
            detail = f"memory unavailable, going on without repository chunks: {exc}"
            await log.emit(StageProgress(stage=stage, step="repository not indexed", detail=detail))
            return
        detail = f"{stored} chunks from {files} files"
        await log.emit(StageProgress(stage=stage, step="indexed repository", detail=detail))

    async def _learn(
        self, request: RunRequest, stage: str, outcome: StageOutcome, log: EventLog
    ) -> None:
        """Keep the stage's outcome as a lesson for later runs."""
        if outcome.status == "approved":
            made = json.dumps(outcome.artifact, ensure_ascii=False)[:1500]
            confidence = outcome.debate.confidence if outcome.debate else 0.0
            text = f"approved with confidence {confidence:.2f}: {made}"
        else:
            text = f"blocked: {outcome.reason}"
        lesson = Lesson(request.run_id, stage, outcome.status, request.goal, text)
        try:
            with spans.span("remember lesson", {"db.system.name": "milvus"}):
                await self.memory.remember(lesson)
        except MemoryUnavailableError as exc:
            detail = f"memory unavailable, lesson not kept: {exc}"
            await log.emit(StageProgress(stage=stage, step="lesson not kept", detail=detail))
            return
        await log.emit(StageProgress(stage=stage, step="lesson kept", detail=outcome.status))
