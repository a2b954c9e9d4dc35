"""The run coordinator: carries a goal through the stages, one event at a time.

``tekton.runs.start`` answers at once with the run id and the stage plan; the run goes
on in this service, so it survives the command line that started it. Its state is its
event log: ``tekton.runs.resume`` reads the log and continues after the last finished
stage, reusing the artifacts already made; ``tekton.runs.retry`` does so for a failed
run, its blocked stage told why and perhaps on another model; ``tekton.runs.fork``
starts a new run that reuses another's artifacts up to a stage (`reruns`). Every
stage's outcome (what was made, or what blocked it) is stored as a lesson in Milvus for
later runs. With a repository (a workspace, or a remote URL) the run is proved by
execution (`evidence`): the workspace is indexed, the code stage's change applied and
checked in the sandbox and repaired while it breaks a check, and a finished run leaves
its branch in the workspaces bucket.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import msgspec
import nats.js.errors
from nats.aio.client import Client

from tekton_common import bus, metrics, spans
from tekton_common.artifact_files import artifact_name, run_folder, write_artifact
from tekton_common.artifacts import artifact_model
from tekton_common.bus_service import Spawn
from tekton_common.contract.debates import DebateResult
from tekton_common.contract.events import (
    TERMINAL,
    AnyRunEvent,
    ArtifactCreated,
    DecisionRecorded,
    RepairRequested,
    RunFailed,
    RunFinished,
    RunResumed,
    RunStarted,
    StageAwaitingApproval,
    StageBlocked,
    StageFinished,
    StageProgress,
    StageStarted,
    read_run_event,
)
from tekton_common.contract.ids import check_run_id
from tekton_common.contract.runs import (
    DecisionMade,
    DecisionRequest,
    ForkRequest,
    Lesson,
    Recall,
    RetryRequest,
    RunAccepted,
    RunRequest,
    StageOutcome,
    StageRequest,
)
from tekton_common.contract.schemas import JsonObject
from tekton_common.contract.seats import overlay, seats_for
from tekton_common.contract.workspaces import WorkspaceRef
from tekton_common.errors import ConflictError, NotFoundError, ProtocolError, TektonError
from tekton_common.runlog import RUNS_STREAM, EventLog, read_events, run_ids, run_subject
from tekton_common.settings import Settings
from tekton_common.stages import select
from tekton_common.workspace import copy_object, require_object
from tekton_stages import gates, reruns
from tekton_stages.asking import StageCaller
from tekton_stages.evidence import RunEvidence, measured
from tekton_stages.memory import Memory, MemoryUnavailableError
from tekton_stages.repo import chunk_repo
from tekton_stages.stage import recall
from tekton_stages.worktrees import Worktrees, result_branch

logger = logging.getLogger(__name__)
#: what a stage is told of the measurements, at most (StageRequest.evidence allows 64k)
EVIDENCE_CHARS = 60_000
ACTIVE_RUNS = metrics.up_down_counter(
    "tekton.runs.active", "Runs being carried through their stages"
)


def artifacts_root(settings: Settings) -> Path:
    """Where this service keeps every run's artifacts: ``$TEKTON_HOME/artifacts``."""
    return settings.home_path / "artifacts"


def _goal(events: list[AnyRunEvent]) -> str:
    """The goal of the run whose log is `events`."""
    return reruns.started_of(events).goal


def _finished(stage: str, done: DebateResult | StageAwaitingApproval) -> StageFinished:
    """A stage's StageFinished, with its debate's figures (or the gate's, which holds them)."""
    if isinstance(done, DebateResult):
        figures = (done.total_tokens, done.cost_usd, done.duration_s, done.confidence)
    else:
        figures = (done.tokens, done.cost_usd, done.duration_s, done.confidence)
    tokens, cost, duration, confidence = figures
    return StageFinished(
        stage=stage,
        status="approved",
        tokens=tokens,
        cost_usd=cost,
        duration_s=duration,
        confidence=confidence,
    )


async def _blocked(
    log: EventLog, stage: str, reason: str | None, totals: Totals, took: float
) -> None:
    await log.emit(StageBlocked(stage=stage, reason=reason))
    await log.emit(
        RunFailed(
            reason=f"{stage} blocked: {reason}",
            duration_s=took,
            tokens=totals.tokens,
            cost_usd=totals.cost_usd,
        )
    )


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
        self.trees = Worktrees(self.js, settings.home_path / "workspaces")
        self.active: set[str] = set()

    async def start(self, request: RunRequest) -> RunAccepted:
        """Validate, emit RunStarted, and drive the run in the background."""
        stages = select(request.from_stage, request.to_stage)
        if request.workspace is not None:
            request = msgspec.structs.replace(
                request, workspace=await self._own_workspace(request.run_id, request.workspace)
            )
        return await self._begin(request, stages)

    async def fork(self, ask: ForkRequest) -> RunAccepted:
        """A new run of another's goal, repository and settings that takes its artifacts
        of the stages before `ask.from_stage` as they are and runs the rest. Its
        repository is the source run's own copy (not cloned again), so both changed
        the same tree."""
        source = await read_events(self.js, ask.fork_of)
        if not source:
            raise NotFoundError(f"no run {ask.fork_of}")
        request, stages, reused = reruns.forked(source, ask)
        if request.workspace is not None or request.repo_url is not None:
            ref = request.workspace or WorkspaceRef(
                name=f"{ask.fork_of}/source", kind="git", size=0
            )
            info = await copy_object(self.js, f"{ask.fork_of}/source", f"{ask.run_id}/source")
            ref = msgspec.structs.replace(
                ref, name=info.name, size=info.size or 0, digest=info.digest or ""
            )
            request = msgspec.structs.replace(request, workspace=ref, repo_url=None)
        return await self._begin(request, stages, ask.fork_of, reused)

    async def _begin(
        self,
        request: RunRequest,
        stages: list[str],
        fork_of: str | None = None,
        reused: dict[str, JsonObject] | None = None,
    ) -> RunAccepted:
        """RunStarted (and a fork's reused artifacts), then the run in the background."""
        if await read_events(self.js, request.run_id):
            raise ProtocolError(f"run {request.run_id} already exists; use resume")
        log = EventLog(self.js, request.run_id, nc=self.nc)
        output = str(run_folder(artifacts_root(self.settings), request.run_id))
        earlier = dict(reused or {})
        await log.emit(
            RunStarted(
                goal=request.goal,
                stages=stages,
                output=output,
                request=msgspec.to_builtins(request),
                fork_of=fork_of,
                reused=list(earlier),
            )
        )
        for stage, artifact in earlier.items():
            await self._keep(stage, artifact, None, log, output, reused_from=fork_of)
        self.spawn(self._drive(request, stages, log, output, earlier))
        return RunAccepted(run_id=request.run_id, stages=stages, skipped=list(earlier))

    async def _own_workspace(self, run_id: str, ref: WorkspaceRef) -> WorkspaceRef:
        """The run's own source object, with the store's digest (never the sender's,
        which keys the repository's chunks in memory)."""
        if ref.name != f"{run_id}/source":
            raise ProtocolError(f"workspace {ref.name}: a run takes its own, {run_id}/source")
        info = await require_object(self.js, ref.name)
        return msgspec.structs.replace(ref, digest=info.digest or "", size=info.size or 0)

    async def resume(self, run_id: str, retry: RetryRequest | None = None) -> RunAccepted:
        """Continue a run after its last finished stage; with `retry`, a failed run's
        blocked stage is run again (told why it was blocked), as the retry tunes it."""
        events = await read_events(self.js, check_run_id(run_id))
        if not events:
            raise NotFoundError(f"no run {run_id}")
        if run_id in self.active:
            raise ProtocolError(f"run {run_id} is running")
        if isinstance(events[-1], RunFinished):
            raise ProtocolError(f"run {run_id} has finished; nothing to resume")
        started = reruns.started_of(events)
        if (gate := gates.awaiting(events)) is not None:
            raise ProtocolError(
                f"run {run_id} awaits a decision on {gate.stage}: tekton runs approve, "
                "reject or edit"
            )
        request = reruns.request_of(events)
        finished = {e.stage: e.artifact for e in events if isinstance(e, ArtifactCreated)}
        remaining = [s for s in started.stages if s not in finished]
        again: str | None = None
        feedback: dict[str, str] = {}
        if retry is not None:
            again, request, why = reruns.retried(events, retry, remaining)
            feedback = {again: why} if why else {}
        log = EventLog(self.js, run_id, seq=events[-1].seq, nc=self.nc)
        # its own folder under this service's root, not the one its log names (a run
        # imported from elsewhere names another machine's folder)
        output = str(run_folder(artifacts_root(self.settings), run_id))
        await self._decided(events, finished, log, output)
        remaining = [s for s in started.stages if s not in finished]
        changed = msgspec.to_builtins(request) if retry is not None else None
        await log.emit(
            RunResumed(done=list(finished), remaining=remaining, retry=again, request=changed)
        )
        tokens, cost, _ = reruns.spent(events)
        totals = Totals(tokens, cost)
        self.spawn(self._drive(request, remaining, log, output, finished, totals, feedback))
        return RunAccepted(run_id=run_id, stages=remaining, skipped=list(finished))

    async def _decided(
        self, events: list[AnyRunEvent], finished: dict[str, JsonObject], log: EventLog, output: str
    ) -> None:
        """Gates approved or edited whose artifact was not yet kept (the decision was
        recorded, then the process stopped): kept now, so no gated stage runs again; a
        rejection not yet ended ends the run."""
        asked = {e.stage: e for e in events if isinstance(e, StageAwaitingApproval)}
        for stage, decision in gates.decisions(gates.since_last_went_on(events)).items():
            if stage in finished or stage not in asked:
                continue
            if decision.decision == "reject":
                if not isinstance(events[-1], TERMINAL):
                    await self._reject(log, decision, events)
                    raise ProtocolError(f"run {log.run_id}: {stage} was rejected")
                continue
            gate = asked[stage]
            artifact = gates.kept_artifact(gate, decision)
            await self._keep(stage, artifact, _finished(stage, gate), log, output)
            finished[stage] = artifact
            made = json.dumps(artifact, ensure_ascii=False)[:1500]
            said = f"{decision.decision} by {decision.by}: {made}"
            await self._remember(Lesson(log.run_id, stage, "approved", _goal(events), said), log)

    async def _reject(
        self, log: EventLog, decision: DecisionRecorded, events: list[AnyRunEvent]
    ) -> None:
        reason = f"rejected by {decision.by}: {decision.comment}"
        said = f"blocked: {reason}"
        await self._remember(
            Lesson(log.run_id, decision.stage, "blocked", _goal(events), said), log
        )
        tokens, cost, took = reruns.spent(events)
        await log.emit(StageBlocked(stage=decision.stage, reason=reason))
        await log.emit(
            RunFailed(
                reason=f"{decision.stage} {reason}", duration_s=took, tokens=tokens, cost_usd=cost
            )
        )

    async def decide(self, ask: DecisionRequest) -> DecisionMade:
        """Record a person's decision on the gate a paused run waits at, and carry the run
        on (approve, edit) or end it (reject). The same decision sent twice is one; a
        second, different one is refused, even when both arrive at once."""
        # the log's last message first: a decision stored while the log is read makes
        # this one's publish fail (or this reading see it)
        try:
            last = await bus.patiently(
                lambda: self.js.get_last_msg(RUNS_STREAM, run_subject(ask.run_id)),
                f"run {ask.run_id}",
            )
        except nats.js.errors.NotFoundError:
            raise NotFoundError(f"no run {ask.run_id}") from None
        events = await read_events(self.js, ask.run_id)
        if not events:
            raise NotFoundError(f"no run {ask.run_id}")
        if (done := gates.recorded(events, ask)) is not None:
            if events[-1].seq == done.seq and ask.run_id not in self.active:
                await self._carry_on(events, done)  # recorded, then the service stopped
            return gates.made(done, repeated=True)
        gate = gates.check(events, ask)
        artifact = None
        if ask.decision == "edit":
            artifact = gates.edited(gate.stage, ask.artifact or {})
        log = EventLog(self.js, ask.run_id, seq=events[-1].seq, nc=self.nc)
        decision = await log.emit_after(
            DecisionRecorded(
                stage=gate.stage,
                decision=ask.decision,
                decision_id=ask.decision_id,
                by=ask.by,
                comment=ask.comment,
                artifact=artifact,
            ),
            last.seq or 0,
            ask.decision_id,
        )
        await self._carry_on([*events, decision], decision)
        return gates.made(decision)

    async def _carry_on(self, events: list[AnyRunEvent], decision: DecisionRecorded) -> None:
        """After a decision: the run goes on, or ends rejected."""
        if decision.decision == "reject":
            log = EventLog(self.js, decision.run_id, seq=events[-1].seq, nc=self.nc)
            await self._reject(log, decision, events)
        else:
            await self.resume(decision.run_id)

    def arm(self, gate: StageAwaitingApproval) -> None:
        """Block the run at `gate` when its deadline passes undecided (a timer; the
        deadline is in the log, so a restarted service arms it again)."""
        if gate.deadline is None:
            return
        delay = max(0.0, gate.deadline - time.time())
        asyncio.get_running_loop().call_later(delay, lambda: self.spawn(self._expire(gate)))

    async def _expire(self, gate: StageAwaitingApproval) -> None:
        """The run is blocked if it still waits at `gate`: the block is stored only
        while the gate is the log's last message, so a decision that came first wins."""
        try:
            last = await self.js.get_last_msg(RUNS_STREAM, run_subject(gate.run_id))
        except nats.js.errors.NotFoundError:
            return  # the run is gone (pruned)
        now = read_run_event(last.data or b"{}")
        if not isinstance(now, StageAwaitingApproval) or now.seq != gate.seq:
            return  # decided meanwhile
        events = await read_events(self.js, gate.run_id)
        log = EventLog(self.js, gate.run_id, seq=events[-1].seq, nc=self.nc)
        try:
            blocked = await log.emit_after(gates.expired(gate), last.seq or 0, f"t{gate.seq}")
        except ConflictError:
            return  # a decision came first
        said = f"blocked: {blocked.reason}"
        await self._remember(Lesson(gate.run_id, gate.stage, "blocked", _goal(events), said), log)
        tokens, cost, took = reruns.spent(events)
        await log.emit(
            RunFailed(
                reason=f"{gate.stage} blocked: {blocked.reason}",
                duration_s=took,
                tokens=tokens,
                cost_usd=cost,
            )
        )
        logger.info("run %s: no decision on %s in time; blocked", gate.run_id, gate.stage)

    async def resume_interrupted(self) -> list[str]:
        """Resume every run whose log ends without RunFinished or RunFailed: the process
        that drove it died (or was stopped) mid-run. Returns their ids."""

        async def ended(run_id: str) -> bool:
            last = await self.js.get_last_msg(RUNS_STREAM, run_subject(run_id))
            event = read_run_event(last.data or b"{}")
            # a run paused at a gate waits for its decision (or its timeout), not a resume
            if isinstance(event, StageAwaitingApproval):
                self.arm(event)
            return isinstance(event, (*TERMINAL, StageAwaitingApproval))

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
        totals: Totals | None = None,
        feedback: dict[str, str] | None = None,
    ) -> None:
        totals = totals or Totals()
        with spans.workflow("run", request.run_id, **{"tekton.stages": len(stages)}) as current:
            ACTIVE_RUNS.add(1)
            try:
                finished = await self._run(request, stages, log, output, earlier, totals, feedback)
            finally:
                ACTIVE_RUNS.add(-1)
            current.set_attributes(
                {"tekton.tokens": totals.tokens, "tekton.cost_usd": totals.cost_usd}
            )
            status = {True: "finished", False: "failed", None: "awaiting approval"}[finished]
            current.set_attribute("tekton.status", status)
            if finished is False:
                spans.fail(current, "run failed")

    async def _run(
        self,
        request: RunRequest,
        stages: list[str],
        log: EventLog,
        output: str,
        earlier: dict[str, JsonObject],
        totals: Totals,
        feedback: dict[str, str] | None = None,
    ) -> bool | None:
        """The stages in order, their cost added to `totals` (what the run spent before,
        when it goes on); whether the run finished (None: it paused at a gate).
        `feedback`: why a retried stage was blocked before, for its debate."""
        self.active.add(request.run_id)
        started = time.perf_counter()
        lessons: list[asyncio.Task[None]] = []  # kept while the next stage runs
        recalls: dict[str, asyncio.Task[Recall]] = {}

        def took() -> float:
            return round(time.perf_counter() - started, 3)

        repo_key: str | None = None
        evidence: RunEvidence | None = None
        pause: StageAwaitingApproval | None = None

        def fetch(stage: str) -> None:
            if stage not in recalls:
                recalls[stage] = asyncio.create_task(
                    recall(self.memory, request.goal, stage, request.run_id, repo_key)
                )

        try:
            evidence = await self._repository(request, stages, log, earlier)
            repo_key = (evidence.ref.digest or evidence.ref.name) if evidence else None
            for number, stage in enumerate(stages):
                # the next stage's memory is fetched while this one debates (recall does not
                # depend on this run's earlier stages); one ahead, so bursts of runs stay light
                fetch(stage)
                if number + 1 < len(stages):
                    fetch(stages[number + 1])
                found = await recalls[stage]
                said = evidence.report()[-EVIDENCE_CHARS:] if evidence else None
                told = (feedback or {}).get(stage)
                outcome = await self._stage(
                    request, stage, log, earlier, found, repo_key, said, told
                )
                if evidence and stage == "code" and outcome.status == "approved":
                    outcome = await self._prove(
                        request, outcome, log, earlier, found, evidence, totals
                    )
                lessons.append(asyncio.create_task(self._learn(request, stage, outcome, log)))
                totals.add(outcome)
                if (
                    outcome.status != "approved"
                    or outcome.artifact is None
                    or outcome.debate is None
                ):
                    await asyncio.gather(*lessons)
                    await _blocked(log, stage, outcome.reason, totals, took())
                    return False
                artifact = artifact_model(stage).model_validate(
                    measured(stage, outcome.artifact, evidence)
                )
                made = artifact.model_dump(mode="json")
                if stage in gates.gated(request, self.settings):
                    await asyncio.gather(*lessons)
                    # said once the run has let go of everything (below), so a decision
                    # that comes at once finds it free to go on
                    pause = gates.pause(stage, made, outcome.debate, request.approval_timeout)
                    return None
                await self._keep(stage, made, _finished(stage, outcome.debate), log, output)
                earlier[stage] = made
            await asyncio.gather(*lessons)  # a run's lessons are kept before it ends
            branch, result = await self._result(request, evidence, earlier)
            await log.emit(
                RunFinished(
                    artifacts=list(earlier),
                    output=output,
                    duration_s=took(),
                    tokens=totals.tokens,
                    cost_usd=totals.cost_usd,
                    branch=branch,
                    result=result,
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
            return False
        finally:
            for fetching in recalls.values():  # a run that stopped early needs no more
                fetching.cancel()
            if evidence is not None:
                await self.trees.discard(evidence.ref, request.run_id)
            self.active.discard(request.run_id)
            if pause is not None:
                self.arm(await log.emit(pause))
        return True

    async def _repository(
        self, request: RunRequest, stages: list[str], log: EventLog, earlier: dict[str, JsonObject]
    ) -> RunEvidence | None:
        """The run's repository, when it has one and something is left to do with it
        (also only the result, after a gate on the last stage was approved)."""
        if not (request.workspace or request.repo_url) or not (stages or "code" in earlier):
            return None
        first = stages[0] if stages else list(earlier)[-1]
        return await self._workspace(request, first, log, earlier)

    async def _workspace(
        self, request: RunRequest, stage: str, log: EventLog, earlier: dict[str, JsonObject]
    ) -> RunEvidence:
        """The run's repository made real here: cloned (a URL) or fetched (a workspace),
        its checks found, indexed in memory; a resumed run's change applied again."""
        ref = request.workspace
        if ref is None:
            url = str(request.repo_url)
            await log.emit(StageProgress(stage=stage, step="cloning repository", detail=url))
            limit = int(self.settings.workspace_limit_mb * 2**20)
            ref = await self.trees.clone(url, request.run_id, limit)
        evidence = RunEvidence(self.trees, ref, request, self.settings)
        base = await evidence.prepare(stage, log)
        await self._index(str(base), ref.digest or ref.name, stage, log)
        if "code" in earlier:  # resumed after the code stage: its change is checked again
            failure = await evidence.try_change("code", 1, earlier["code"], log)
            if failure is not None:
                raise ProtocolError(f"the change made before the resume no longer holds: {failure}")
        return evidence

    async def _prove(
        self,
        request: RunRequest,
        outcome: StageOutcome,
        log: EventLog,
        earlier: dict[str, JsonObject],
        found: Recall,
        evidence: RunEvidence,
        totals: Totals,
    ) -> StageOutcome:
        """Apply and check the code stage's change; while it does not hold, the stage
        runs again with what failed, up to the repair attempts; then it is blocked with
        the real failure."""
        attempts = request.repair_attempts
        if attempts is None:
            attempts = self.settings.repair_attempts
        attempt = 1
        while True:
            assert outcome.artifact is not None
            failure = await evidence.try_change("code", attempt, outcome.artifact, log)
            if failure is None:
                return outcome
            if attempt > attempts:
                reason = f"the change did not hold after {attempt} attempts: {failure}"
                return StageOutcome("code", "blocked", reason[:8000], None, outcome.debate)
            totals.add(outcome)  # the attempt spent; the last one is counted by the run
            attempt += 1
            await log.emit(RepairRequested(stage="code", attempt=attempt, reason=failure[:8000]))
            said = f"{evidence.report()}\n\nYour previous change did not hold; fix it:\n{failure}"
            said = said[-EVIDENCE_CHARS:]  # within StageRequest.evidence, the failure kept
            key = evidence.ref.digest or evidence.ref.name
            outcome = await self._stage(request, "code", log, earlier, found, key, said)
            if outcome.status != "approved" or outcome.artifact is None:
                return outcome

    async def _result(
        self, request: RunRequest, evidence: RunEvidence | None, earlier: dict[str, JsonObject]
    ) -> tuple[str | None, WorkspaceRef | None]:
        """A finished run's branch, one commit on the workspace, kept in the bucket."""
        if evidence is None or evidence.commit is None:
            return None, None
        release = earlier.get("release") or {}
        code = earlier.get("code") or {}
        title = str(release.get("summary") or code.get("summary") or request.goal)
        body = "\n".join(f"- {c}" for c in release.get("changes") or [])
        message = f"{title[:200]}\n\n{body}\n\nTekton run {request.run_id}".strip()
        ref = await self.trees.keep_result(evidence.ref, request.run_id, evidence.commit, message)
        return result_branch(request.run_id), ref

    async def _keep(
        self,
        stage: str,
        artifact: JsonObject,
        finished: StageFinished | None,
        log: EventLog,
        output: str,
        reused_from: str | None = None,
    ) -> None:
        """Write an approved (or a fork's reused) stage's artifact and say so."""
        files = await asyncio.to_thread(write_artifact, Path(output), stage, artifact)
        name = artifact_name(stage)
        await log.emit(
            ArtifactCreated(
                stage=stage, name=name, files=files, artifact=artifact, reused_from=reused_from
            )
        )
        if finished is not None:
            await log.emit(finished)

    async def _stage(
        self,
        request: RunRequest,
        stage: str,
        log: EventLog,
        earlier: dict[str, JsonObject],
        found: Recall | None,
        repo_key: str | None = None,
        evidence: str | None = None,
        feedback: str | None = None,
    ) -> StageOutcome:
        debate_id = f"{request.run_id}-{stage}-{log.seq}"
        await log.emit(StageStarted(stage=stage, debate_id=debate_id))
        roles, models = seats_for(overlay(self.settings.seats, request.seats), stage)
        ask = StageRequest(
            run_id=request.run_id,
            stage=stage,  # type: ignore[arg-type]
            goal=request.goal,
            debate_id=debate_id,
            earlier=earlier,
            consensus_free=stage in request.consensus_free,
            model=request.model,
            roles=roles,  # type: ignore[arg-type]
            models=models,  # type: ignore[arg-type]
            max_rounds=request.max_rounds,
            threshold=request.threshold,
            repo_key=repo_key,
            evidence=evidence,
            recall=found,
            feedback=feedback[-8000:] if feedback else None,
        )
        return await self.stages.ask(ask, log)

    async def _index(self, folder: str, key: str, stage: str, log: EventLog) -> None:
        await log.emit(StageProgress(stage=stage, step="indexing repository"))
        chunks, files = await asyncio.to_thread(chunk_repo, folder)
        try:
            with spans.span("index repository", {"db.system.name": "milvus"}):
                stored = await self.memory.index_repo(key, chunks)
        except MemoryUnavailableError as exc:
            detail = f"memory unavailable, going on without repository chunks: {exc}"
            await log.emit(StageProgress(stage=stage, step="repository not indexed", detail=detail))
            return
        detail = f"{stored} chunks from {files} files"
        await log.emit(StageProgress(stage=stage, step="indexed repository", detail=detail))

    async def _learn(
        self, request: RunRequest, stage: str, outcome: StageOutcome, log: EventLog
    ) -> None:
        """Keep the stage's outcome as a lesson for later runs (a gate's once a person
        decided it: what the person decided is the lesson)."""
        if outcome.status == "approved" and stage in gates.gated(request, self.settings):
            return
        if outcome.status == "approved":
            made = json.dumps(outcome.artifact, ensure_ascii=False)[:1500]
            confidence = outcome.debate.confidence if outcome.debate else 0.0
            text = f"approved with confidence {confidence:.2f}: {made}"
        else:
            text = f"blocked: {outcome.reason}"
        await self._remember(Lesson(request.run_id, stage, outcome.status, request.goal, text), log)

    async def _remember(self, lesson: Lesson, log: EventLog) -> None:
        """Keep a lesson in memory, saying so in the run's log (or that it could not)."""
        stage = lesson.stage
        try:
            with spans.span("remember lesson", {"db.system.name": "milvus"}):
                await self.memory.remember(lesson)
        except MemoryUnavailableError as exc:
            detail = f"memory unavailable, lesson not kept: {exc}"
            await log.emit(StageProgress(stage=stage, step="lesson not kept", detail=detail))
            return
        await log.emit(StageProgress(stage=stage, step="lesson kept", detail=lesson.status))
