"""What the specialists' tools ask of the stages service (which holds workspaces, memory
and the sandbox):

- ``tekton.memory.search`` / ``tekton.memory.keep`` (Engram's `engram_lessons`,
  `engram_keep`): lessons in retrieval memory;
- ``tekton.workspaces.search`` (Athena's `athena_search`): the chunks of the run's
  repository closest to a question, from retrieval memory;
- ``tekton.sandbox.run`` (Terma's `terma_run`, a sensitive tool): one command in a fresh
  worktree of the run's result (its change applied; the workspace as it came when the
  run has no result yet), in the same sandbox and limits as the run's checks. The
  worktree is removed afterwards. Never without a sandbox: ``TEKTON_SANDBOX=none`` lets
  a run's own checks run unisolated, not a command a model chose.
"""

from __future__ import annotations

import asyncio
import shutil
import uuid

from nats.js import JetStreamContext
from nats.micro.request import Request

from tekton_common.contract.codec import convert, decode, encode
from tekton_common.contract.events import RunFinished, RunStarted
from tekton_common.contract.platform import (
    KeepLesson,
    LessonHit,
    LessonHits,
    LessonKept,
    LessonQuery,
    RepoHits,
    RepoSearch,
    SandboxCommand,
    SandboxRan,
)
from tekton_common.contract.runs import Lesson
from tekton_common.contract.workspaces import WorkspaceRef
from tekton_common.errors import NotFoundError, ProtocolError
from tekton_common.micro import EndpointDef
from tekton_common.runlog import read_events
from tekton_common.settings import Settings
from tekton_common.subjects import MEMORY_KEEP, MEMORY_SEARCH, SANDBOX_RUN, WORKSPACES_SEARCH
from tekton_stages import sandbox
from tekton_stages.memory import Memory
from tekton_stages.worktrees import Worktrees, git, head


class Workbench:
    """Searches and commands on runs' repositories."""

    def __init__(
        self, js: JetStreamContext, trees: Worktrees, memory: Memory, settings: Settings
    ) -> None:
        self.js = js
        self.trees = trees
        self.memory = memory
        self.settings = settings

    async def _refs(self, run_id: str) -> tuple[WorkspaceRef, WorkspaceRef | None]:
        """The run's workspace as it came, and its result (None until it finished)."""
        events = await read_events(self.js, run_id)
        started = next((e for e in events if isinstance(e, RunStarted)), None)
        if started is None:
            raise NotFoundError(f"no run {run_id}")
        given = started.request.get("workspace")
        if not isinstance(given, dict):
            raise ProtocolError(f"run {run_id} has no repository workspace (no --repo)")
        finished = [e.result for e in events if isinstance(e, RunFinished) and e.result]
        return convert(given, WorkspaceRef, "workspace"), (finished[-1] if finished else None)

    def endpoints(self) -> list[EndpointDef]:
        """The four endpoints."""

        async def lessons(request: Request) -> bytes:
            asked = decode(request.data, LessonQuery)
            found = await self.memory.search(asked.query, asked.stage, asked.limit)
            return encode(LessonHits(hits=[convert(row, LessonHit) for row in found]))

        async def keep(request: Request) -> bytes:
            asked = decode(request.data, KeepLesson)
            run_id = f"kept-{uuid.uuid4().hex[:12]}"
            await self.memory.remember(Lesson(run_id, asked.stage, "kept", asked.goal, asked.text))
            return encode(LessonKept(run_id=run_id, stage=asked.stage))

        async def search(request: Request) -> bytes:
            return encode(await self.search(decode(request.data, RepoSearch)))

        async def command(request: Request) -> bytes:
            return encode(await self.run(decode(request.data, SandboxCommand)))

        return [
            EndpointDef("memory_search", lessons, subject=MEMORY_SEARCH),
            EndpointDef("memory_keep", keep, subject=MEMORY_KEEP),
            EndpointDef("workspaces_search", search, subject=WORKSPACES_SEARCH),
            EndpointDef("sandbox_run", command, subject=SANDBOX_RUN),
        ]

    async def search(self, asked: RepoSearch) -> RepoHits:
        """The chunks of the run's repository closest to the question."""
        ref, _ = await self._refs(asked.run_id)
        chunks = await self.memory.search_repo(ref.digest or ref.name, asked.query, asked.limit)
        return RepoHits(run_id=asked.run_id, chunks=chunks)

    async def run(self, asked: SandboxCommand) -> SandboxRan:
        """One command in a fresh, sandboxed worktree of the run's repository."""
        if sandbox.require() == "none":
            raise sandbox.SandboxUnavailableError(
                f"a tool's command needs a sandbox; {sandbox.SANDBOX_ENV}=none is set, "
                "which lets only a run's own checks run unisolated"
            )
        base, result = await self._refs(asked.run_id)
        ref = result or base
        attempt = f"tool-{uuid.uuid4().hex[:10]}"
        worktree = await self.trees.checkout(ref, asked.run_id, attempt)
        limits = sandbox.Limits(
            wall_s=min(asked.timeout_s, self.settings.check_timeout),
            memory_mb=self.settings.check_memory_mb,
        )
        try:
            commit = await asyncio.to_thread(head, worktree)
            ran = await sandbox.run(
                asked.command,
                worktree,
                limits,
                [self.settings.home_path],
                [self.trees.git_dir(ref)],
            )
        finally:
            await asyncio.to_thread(shutil.rmtree, worktree, True)
            await asyncio.to_thread(git, self.trees.git_dir(ref).parent, "worktree", "prune")
        return SandboxRan(
            run_id=asked.run_id,
            commit=commit,
            tree="result" if result else "workspace",
            command=asked.command,
            exit_code=ran.exit_code,
            output=ran.output,
            duration_s=ran.duration_s,
            timed_out=ran.timed_out,
            sandbox=ran.sandbox,
        )
