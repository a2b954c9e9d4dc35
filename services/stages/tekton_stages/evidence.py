"""Evidence for a run on a repository: its checks measured, never claimed.

The workspace is made real in this process's scratch folder; the checks (from the
request, the repository's ``tekton.toml`` or detected) run in the sandbox on the
workspace as it came (once a run) and on each attempt of the code stage's change,
applied and committed in a fresh worktree. A change that does not apply, or on which a
check fails, goes back to the code stage with the failing output (and whether the check
failed the same way before the change).
What later stages see of the repository, and what the code, test_debug and release
artifacts say ran, is what was measured here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from pathlib import Path

from tekton_common.checks import checks_for, counts
from tekton_common.contract.events import ChecksFinished, StageProgress
from tekton_common.contract.runs import RunRequest
from tekton_common.contract.schemas import JsonObject
from tekton_common.contract.workspaces import CheckResult, CheckSpec, WorkspaceRef
from tekton_common.runlog import EventLog
from tekton_common.settings import Settings
from tekton_stages import sandbox
from tekton_stages.worktrees import DiffRefusedError, Worktrees, apply_diff, head

#: the output of a failing check a repair is shown (characters)
FAILURE_TAIL = 4000


async def run_check(
    check: CheckSpec,
    worktree: Path,
    commit: str,
    limits: sandbox.Limits,
    secrets: Iterable[Path] = (),
    readable: Iterable[Path] = (),
) -> CheckResult:
    """Run one check in the sandbox on the worktree at `commit` (`secrets` hidden,
    `readable` bound read-only: see `sandbox.run`)."""
    ran = await sandbox.run(check.command, worktree, limits, secrets, readable)
    passed, failed, skipped = counts(ran.output)
    return CheckResult(
        name=check.name,
        command=check.command,
        exit_code=ran.exit_code,
        duration_s=ran.duration_s,
        commit=commit,
        output_tail=ran.output,
        passed=passed,
        failed=failed,
        skipped=skipped,
        timed_out=ran.timed_out,
        sandbox=ran.sandbox,
    )


def _as_before(result: CheckResult, base: CheckResult | None) -> str:
    if base is None or base.ok:
        return " (it passes without the change: the change broke it)"
    if (base.exit_code, base.failed) == (result.exit_code, result.failed):
        return " (it failed the same way before the change: the change does not fix it)"
    return " (it failed before the change too, differently)"


class RunEvidence:
    """One run's workspace, checks and change."""

    def __init__(
        self, trees: Worktrees, ref: WorkspaceRef, request: RunRequest, settings: Settings
    ) -> None:
        self.trees = trees
        self.ref = ref
        self.request = request
        self.limits = sandbox.Limits(
            wall_s=settings.check_timeout, memory_mb=settings.check_memory_mb
        )
        self.checks: list[CheckSpec] = []
        self.source = "none"
        self.base: list[CheckResult] | None = None
        self.base_commit = ""
        self.change: list[CheckResult] = []
        self.commit: str | None = None
        self.worktree: Path | None = None
        given = (settings.nats_tls_key, settings.nats_nkey_seed_file, settings.nats_tls_cert)
        self.secrets = [settings.home_path, *(Path(p) for p in given if p)]

    async def prepare(self, stage: str, log: EventLog) -> Path:
        """Check out the workspace as it came and find its checks; the base worktree."""
        await asyncio.to_thread(sandbox.require)  # before any debate, not at the first check
        base = await self.trees.checkout(self.ref, self.request.run_id, "base")
        self.base_commit = await asyncio.to_thread(head, base)
        found = await asyncio.to_thread(checks_for, base, list(self.request.checks))
        self.checks, self.source = found
        listed = ", ".join(f"{c.name}: {c.command}" for c in self.checks) or "none found"
        await log.emit(
            StageProgress(stage=stage, step="checks", detail=f"{listed} ({self.source})")
        )
        return base

    async def _check(self, check: CheckSpec, worktree: Path, commit: str) -> CheckResult:
        git_dir = [self.trees.git_dir(self.ref)]  # so `git` works in the worktree, read-only
        return await run_check(check, worktree, commit, self.limits, self.secrets, git_dir)

    async def _base_results(self) -> list[CheckResult]:
        if self.base is None:
            base = self.trees.root / "runs" / self.request.run_id / "base"
            self.base = [await self._check(c, base, self.base_commit) for c in self.checks]
        return self.base

    async def try_change(
        self, stage: str, attempt: int, artifact: JsonObject, log: EventLog
    ) -> str | None:
        """Apply the code artifact's diff in a fresh worktree, commit it, run the checks
        on it (and, the first time, on the base); None when the change holds, else the
        failure a repair is asked to fix."""
        worktree = await self.trees.checkout(self.ref, self.request.run_id, f"attempt-{attempt}")
        message = f"tekton: {str(artifact.get('summary') or self.request.goal)[:200]}"
        try:
            diff = str(artifact.get("diff") or "")
            commit = await asyncio.to_thread(apply_diff, worktree, diff, message)
        except DiffRefusedError as exc:
            await log.emit(
                StageProgress(stage=stage, step="change not applied", detail=str(exc), ok=False)
            )
            return str(exc)
        base = await self._base_results()
        results = [await self._check(c, worktree, commit) for c in self.checks]
        failing = [r for r in results if not r.ok]
        await log.emit(
            ChecksFinished(
                stage=stage,
                attempt=attempt,
                commit=commit,
                source=self.source,
                results=results,
                base=base if attempt == 1 else [],
                base_commit=self.base_commit,
                failing=[r.name for r in failing],
            )
        )
        self.commit, self.worktree, self.change = commit, worktree, results
        if not failing:
            return None
        before = {r.name: r for r in base}
        return "checks fail on the change:\n" + "\n".join(
            f"- {r.summary()}{_as_before(r, before.get(r.name))}\n{r.output_tail[-FAILURE_TAIL:]}"
            for r in failing
        )

    def report(self) -> str:
        """What was measured so far, for a stage's prompt."""
        lines = [f"Checks ({self.source}):" if self.checks else "The repository has no checks."]
        if self.base:
            lines.append("On the repository as it came:")
            lines += [f"- {r.summary()}" for r in self.base]
        if self.change:
            lines.append("On the change:")
            lines += [f"- {r.summary()}" for r in self.change]
            lines += [
                f"  output of {r.name}:\n{r.output_tail[-1500:]}" for r in self.change if not r.ok
            ]
        return "\n".join(lines)


def measured(stage: str, artifact: JsonObject, evidence: RunEvidence | None) -> JsonObject:
    """The artifact with what really ran in place of what the model wrote: the code
    stage's commands and tests, test_debug's checks, release's passed checks. Without a
    repository nothing ran, and the artifact says so (empty lists)."""
    change = evidence.change if evidence else []
    ran = [r.command for r in change]
    if stage == "code":
        applied = ["git apply --index"] if evidence and evidence.commit else []
        return {**artifact, "commands_run": applied + ran, "tests_executed": ran}
    if stage == "test_debug":
        base = (evidence.base or []) if evidence else []
        return {**artifact, "checks": [_measured(r) for r in base + change]}
    if stage == "release":
        passed = [f"{r.name} ({r.command}) on {r.commit[:12]}" for r in change if r.ok]
        return {**artifact, "checks_passed": passed}
    return artifact


def _measured(result: CheckResult) -> JsonObject:
    return {
        "name": result.name,
        "command": result.command,
        "exit_code": result.exit_code,
        "duration_s": result.duration_s,
        "passed": result.passed,
        "failed": result.failed,
        "skipped": result.skipped,
        "commit": result.commit,
        "output_tail": result.output_tail[-2000:],
        "timed_out": result.timed_out,
    }
