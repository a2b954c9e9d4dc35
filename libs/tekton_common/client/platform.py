"""The platform's client: what every front end (the command line, the API, the
benchmarks, the tests) asks of the platform, over NATS, in typed messages.

    async with Tekton.connect(settings) as tekton:
        reply = await tekton.ask("apollo", "What should we build first?")
        accepted = await tekton.start_run(make(RunRequest, goal="Add rate limiting"))
        async for event in tekton.follow(accepted.run_id):
            ...

No front end reads a service's storage layout or imports its internals: the run log,
history, Rhetor and the stages are reached through here.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import msgspec
import nats.errors
from nats.aio.client import Client
from nats.aio.msg import Msg

from tekton_common import bus, workspace
from tekton_common.catalog import CIId
from tekton_common.client.bus import BusClient, StreamEvent, error_of, raise_for_error
from tekton_common.contract.codec import encode, make
from tekton_common.contract.debates import (
    DebateRequest,
    DebateResult,
    SeatAnswer,
    SeatAnswered,
    TeamRequest,
)
from tekton_common.contract.events import (
    TERMINAL,
    AnyDebateEvent,
    AnyRunEvent,
    RunFinished,
    debate_event,
)
from tekton_common.contract.history import (
    ExportReady,
    ExportRequest,
    ImportReport,
    ImportRequest,
    PruneReport,
    PruneRequest,
)
from tekton_common.contract.ids import check_run_id
from tekton_common.contract.platform import (
    MemoryInfo,
    MicroReply,
    Roster,
    RosterEntry,
    TeamEvent,
    TeamResult,
    UsageQuery,
    UsageReport,
)
from tekton_common.contract.runs import (
    DecisionMade,
    DecisionRequest,
    ForkRequest,
    ResumeRequest,
    RetryRequest,
    RunAccepted,
    RunRequest,
    new_run_id,
)
from tekton_common.contract.workspaces import WorkspaceRef
from tekton_common.errors import NotFoundError, RequestTimeoutError, TransportError
from tekton_common.gather import gather, gather_all
from tekton_common.history import RunRow, RunState, StageTotals, all_runs, stage_totals, summarize
from tekton_common.runlog import follow_all, follow_events, read_events
from tekton_common.settings import Settings
from tekton_common.subjects import (
    BUDGET_USAGE,
    MEMORY_INFO,
    RHETOR_DEBATE,
    RHETOR_ROSTER,
    RHETOR_TEAM,
    RUNS_DECIDE,
    RUNS_EXPORT,
    RUNS_FORK,
    RUNS_IMPORT,
    RUNS_PRUNE,
    RUNS_RESUME,
    RUNS_RETRY,
    RUNS_START,
    debate_answers,
    debate_events,
    srv,
)
from tekton_common.usage import read_usage
from tekton_common.wire import Response, TeamReply

STAGES_SERVICE = "tekton-stages"
_team_event = msgspec.json.Decoder(TeamEvent)
RHETOR = "rhetor-ci"


class Tekton:
    """The platform, as one NATS connection sees it. `connect` opens (and closes) a
    connection of its own; `Tekton(nc)` uses one the caller owns (the API's)."""

    def __init__(self, nc: Client, timeout: float = 60.0) -> None:
        self.nc = nc
        self.timeout = timeout

    @classmethod
    @contextlib.asynccontextmanager
    async def connect(cls, settings: Settings, name: str = "tekton-cli") -> AsyncIterator[Tekton]:
        """A client on a connection of its own, closed (drained) on leaving the block;
        TransportError at once when NATS cannot be reached."""
        nc = await bus.connect(settings, name)
        try:
            yield cls(nc)
        finally:
            await bus.close(nc)

    def _bus(self, timeout: float | None = None) -> BusClient:
        return BusClient(self.nc, timeout or self.timeout)

    async def _ask(
        self, subject: str, payload: bytes, who: str, timeout: float | None = None
    ) -> Msg:
        return await self._bus(timeout).request(subject, payload, who)

    # -- CIs --------------------------------------------------------------------------------
    async def ask(self, ci: str, message: str, timeout: float | None = None) -> Response:
        """One CI's reply."""
        return await self._bus(timeout).chat(str(CIId.from_str(ci)), message)

    def stream(
        self, ci: str, message: str, timeout: float | None = None
    ) -> AsyncIterator[StreamEvent]:
        """One CI's reply as it streams: stream_start, stream_chunk… stream_end."""
        return self._bus(timeout).stream(str(CIId.from_str(ci)), message)

    def team(self, message: str, deadline: float) -> AsyncIterator[TeamReply]:
        """Every CI's reply to a broadcast, as each arrives, until the deadline."""
        return self._bus().team(message, deadline=deadline)

    async def probe(self, verb: str, name: str | None, deadline: float = 1.0) -> list[MicroReply]:
        """Answers to ``$SRV.<verb>[.<name>]`` (what `nats micro ls|info|stats` shows)."""
        target = str(CIId.from_str(name)) if name else None
        msgs = await gather_all(self.nc, srv(verb, target), deadline=deadline)
        replies = [msgspec.json.decode(m.data, type=MicroReply) for m in msgs]
        return sorted(replies, key=lambda r: (r.name, r.id))

    # -- Rhetor ------------------------------------------------------------------------------
    async def debate(
        self,
        request: DebateRequest,
        on_event: Callable[[AnyDebateEvent], Awaitable[None]] | None = None,
        timeout: float | None = None,
    ) -> DebateResult:
        """A triad debate through Rhetor; `on_event` sees each turn as it ends."""

        async def forward(msg: Msg) -> None:
            if on_event is not None and (event := debate_event(msg.data)) is not None:
                await on_event(event)

        sub = await self.nc.subscribe(debate_events(request.debate_id), cb=forward)
        try:
            reply = await self._ask(RHETOR_DEBATE, encode(request), RHETOR, timeout)
            await self.nc.flush()
        finally:
            await sub.unsubscribe()
        return msgspec.json.decode(reply.data, type=DebateResult)

    async def answer(self, debate_id: str, said: SeatAnswer) -> SeatAnswered:
        """A person's answer for a debate's human seat (NotFoundError when no debate of
        that id waits for one here)."""
        subject = debate_answers(debate_id)
        try:
            reply = await self._ask(subject, encode(said), f"debate {debate_id}", 30)
        except RequestTimeoutError:
            raise
        except TransportError:  # no responders: no Rhetor holds such a debate
            raise NotFoundError(f"no debate {debate_id} waits for a person's answer") from None
        return msgspec.json.decode(reply.data, type=SeatAnswered)

    async def moderated_team(self, request: TeamRequest) -> AsyncIterator[TeamEvent]:
        """Team chat moderated by Rhetor: each reply as it comes, then the result."""
        async for msg in gather(
            self.nc, RHETOR_TEAM, encode(request), deadline=request.deadline + 60
        ):
            raise_for_error(msg, RHETOR)
            event = _team_event.decode(msg.data)
            yield event
            if isinstance(event, TeamResult):
                return

    async def roster(self) -> list[RosterEntry]:
        """The CIs Rhetor can use, with their health and debate counters."""
        reply = await self._ask(RHETOR_ROSTER, b"", RHETOR, 10)
        return msgspec.json.decode(reply.data, type=Roster).cis

    # -- runs --------------------------------------------------------------------------------
    async def start_run(self, request: RunRequest) -> RunAccepted:
        """Start a run in the stages service (it goes on whoever watches)."""
        reply = await self._ask(RUNS_START, encode(request), STAGES_SERVICE, 30)
        return msgspec.json.decode(reply.data, type=RunAccepted)

    async def resume_run(self, run_id: str) -> RunAccepted:
        """Resume a run after its last finished stage."""
        ask = encode(ResumeRequest(run_id=check_run_id(run_id)))
        reply = await self._ask(RUNS_RESUME, ask, STAGES_SERVICE, 30)
        return msgspec.json.decode(reply.data, type=RunAccepted)

    async def retry_run(self, ask: RetryRequest) -> RunAccepted:
        """Run a failed run's blocked stage again and go on."""
        reply = await self._ask(RUNS_RETRY, encode(ask), STAGES_SERVICE, 30)
        return msgspec.json.decode(reply.data, type=RunAccepted)

    async def fork_run(self, ask: ForkRequest) -> RunAccepted:
        """A new run reusing another's artifacts before a stage; it goes on by itself."""
        reply = await self._ask(RUNS_FORK, encode(ask), STAGES_SERVICE, 60)
        return msgspec.json.decode(reply.data, type=RunAccepted)

    async def decide(self, decision: DecisionRequest) -> DecisionMade:
        """A person's decision on a paused run's gate (approve, reject, edit)."""
        reply = await self._ask(RUNS_DECIDE, encode(decision), STAGES_SERVICE, 30)
        return msgspec.json.decode(reply.data, type=DecisionMade)

    # -- history ----------------------------------------------------------------------------
    async def prune_runs(self, ask: PruneRequest) -> PruneReport:
        """Remove the runs that ended before `ask.older_than` seconds ago, everywhere."""
        reply = await self._ask(RUNS_PRUNE, encode(ask), STAGES_SERVICE, 600)
        return msgspec.json.decode(reply.data, type=PruneReport)

    async def export_run(self, run_id: str, dest: Path) -> ExportReady:
        """One run as an export tar written to `dest` (made by the stages service in
        the workspaces bucket, taken from there and deleted)."""
        ask = encode(ExportRequest(run_id=check_run_id(run_id)))
        ready = msgspec.json.decode(
            (await self._ask(RUNS_EXPORT, ask, STAGES_SERVICE, 600)).data, type=ExportReady
        )
        js = self.nc.jetstream(timeout=30)
        try:
            await workspace.download(js, ready.file, dest)
        finally:
            await workspace.delete_object(js, ready.file)
        return ready

    async def import_run(self, path: Path) -> ImportReport:
        """The run in the export tar at `path`, kept by this installation."""
        js = self.nc.jetstream(timeout=30)
        name = f"{new_run_id()}/import"
        await workspace.put(js, name, path)
        ask = encode(ImportRequest(file=name))
        reply = await self._ask(RUNS_IMPORT, ask, STAGES_SERVICE, 600)
        return msgspec.json.decode(reply.data, type=ImportReport)

    # -- workspaces -----------------------------------------------------------------------
    async def upload_workspace(self, folder: Path, run_id: str, limit: int) -> WorkspaceRef:
        """Pack a repository on this machine (a git bundle of its working tree, or an
        archive of a plain folder) and put it in the workspaces bucket for a run."""
        with tempfile.TemporaryDirectory() as scratch:
            packed = Path(scratch) / "workspace"
            kind = await asyncio.to_thread(workspace.pack, folder, packed, limit)
            return await self.upload_packed(packed, run_id, kind, str(folder))

    async def upload_packed(
        self, packed: Path, run_id: str, kind: workspace.Kind, label: str
    ) -> WorkspaceRef:
        """Put an already packed workspace (a git bundle, or a gzipped tar) in the
        bucket as the source of run `run_id`."""
        js = self.nc.jetstream(timeout=30)
        name = f"{check_run_id(run_id)}/source"
        return await workspace.upload(js, name, packed, kind, label[-200:])

    async def result(self, run_id: str) -> RunFinished:
        """A finished run's last event (NotFoundError when it has not finished)."""
        last = (await self.events(run_id))[-1]
        if not isinstance(last, RunFinished):
            raise NotFoundError(f"run {run_id} has not finished")
        return last

    async def download(self, ref: WorkspaceRef, dest: Path) -> None:
        """An object of the workspaces bucket (a run's result bundle) into `dest`."""
        await workspace.download(self.nc.jetstream(timeout=30), ref.name, dest)

    async def events(self, run_id: str) -> list[AnyRunEvent]:
        """Every stored event of a run; NotFoundError when there is no such run."""
        events = await read_events(self.nc.jetstream(timeout=10), check_run_id(run_id))
        if not events:
            raise NotFoundError(f"no run {run_id}")
        return events

    async def follow(
        self, run_id: str, idle: float = 3600.0
    ) -> AsyncIterator[tuple[AnyRunEvent, bytes]]:
        """A run's events (every stored one, then live ones) with their JSON, until it
        finishes or fails (an end a retry or a resume went on from is not the end), or
        none comes for `idle` seconds."""
        js = self.nc.jetstream(timeout=10)
        async for event, data, later in follow_events(js, check_run_id(run_id), idle):
            yield event, data
            if isinstance(event, TERMINAL) and not later:
                return

    async def follow_runs(self, idle: float = 3600.0) -> AsyncIterator[tuple[AnyRunEvent, bytes]]:
        """Every run's events from now on, with their JSON, until none comes for `idle`
        seconds."""
        async for event, data, _later in follow_all(self.nc.jetstream(timeout=10), idle):
            yield event, data

    async def state(self, run_id: str) -> RunState:
        """One run's state."""
        return summarize(await self.events(run_id))

    async def runs(self, dsn: str | None) -> list[RunRow]:
        """Every run, oldest first (`dsn`: the history database, if any)."""
        return await all_runs(self.nc.jetstream(timeout=10), dsn)

    async def stage_totals(self, dsn: str | None, day: str | None = None) -> list[StageTotals]:
        """Every stage's tokens, cost and time over every run (or one UTC `day`'s)."""
        return await stage_totals(self.nc.jetstream(timeout=10), dsn, day)

    # -- the platform ----------------------------------------------------------------------------
    async def usage(self, ci: str | None, run: str | None, day: str | None = None) -> UsageReport:
        """The Budget CI's ledger (all time, or one UTC `day`); when it is not running,
        totals read from the stream."""
        query = make(
            UsageQuery,
            ci=str(CIId.from_str(ci)) if ci else None,
            run=check_run_id(run) if run else None,
            day=day,
        )
        try:
            msg = await self.nc.request(BUDGET_USAGE, encode(query), timeout=5)
        except (nats.errors.NoRespondersError, nats.errors.TimeoutError):
            total, groups, by_model = (await read_usage(self.nc)).view(query.ci, query.run, day)
            return UsageReport(
                total=total,
                groups=groups,
                by_model=by_model,
                source="TEKTON_USAGE stream (the Budget CI is not running)",
                day=day,
                asked=next(iter(groups)) if query.ci or query.run else None,
            )
        raise_for_error(msg, "budget-ci")
        return msgspec.json.decode(msg.data, type=UsageReport)

    async def memory(self) -> MemoryInfo:
        """What the stages service reports of retrieval memory (Milvus, the embedder)."""
        try:
            reply = await self.nc.request(MEMORY_INFO, b"{}", timeout=15)
        except Exception as exc:  # no stages service, or it did not answer
            why = f"stages service did not answer ({type(exc).__name__})"
            return MemoryInfo(reachable=False, error=why)
        if (error := error_of(reply, STAGES_SERVICE)) is not None:
            return MemoryInfo(reachable=False, error=str(error))
        return msgspec.json.decode(reply.data, type=MemoryInfo)
