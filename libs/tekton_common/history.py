"""Run history as readers see it: one run's state from its event log, and the list of
runs from PostgreSQL (when it can be reached) with the runs its recorder has not
written yet from the event log. The command line, the API and the TUI read it here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec
from nats.js import JetStreamContext

from tekton_common.contract.events import (
    AnyRunEvent,
    ArtifactCreated,
    ChecksFinished,
    RunFailed,
    RunFinished,
    RunStarted,
    StageAwaitingApproval,
    StageFinished,
)
from tekton_common.contract.workspaces import CheckResult
from tekton_common.runlog import read_events, run_ids
from tekton_common.settings import Settings
from tekton_common.stages import DIAMOND
from tekton_common.usage import day_of


class FileChange(msgspec.Struct):
    """One file of a change: its path, lines added and removed, and its part of the diff."""

    path: str
    added: int
    removed: int
    patch: str


class RunState(msgspec.Struct):
    """One run, from its events; with a repository, the change file by file, the
    checks of its last attempt (on the change, and on the base), and its branch."""

    run_id: str
    started_at: float
    goal: str
    status: str
    stages: list[str]
    done: list[str]
    reason: str | None
    output: str | None
    events: int
    files: list[FileChange] = []
    checks: list[CheckResult] = []
    base_checks: list[CheckResult] = []
    branch: str | None = None


def split_diff(diff: str) -> list[FileChange]:
    """A unified diff cut into its files."""
    files: list[FileChange] = []
    part: list[str] = []

    def close() -> None:
        if not part:
            return
        target = next((line[6:] for line in part if line.startswith("+++ b/")), None)
        source = next((line[6:] for line in part if line.startswith("--- a/")), None)
        path = target or source or part[0].split(" b/")[-1]
        body = [line for line in part if not line.startswith(("+++", "---"))]
        added = sum(1 for line in body if line.startswith("+"))
        removed = sum(1 for line in body if line.startswith("-"))
        files.append(FileChange(path, added, removed, "\n".join(part)))
        part.clear()

    for line in diff.splitlines():
        headed = line.startswith(("--- a/", "--- /dev/null")) and _has_hunk(part)
        if part and (line.startswith("diff --git ") or headed):
            close()
        part.append(line)
    close()
    return files


def _has_hunk(lines: list[str]) -> bool:
    return any(line.startswith("@@") for line in lines)


class RunRow(msgspec.Struct):
    """One run in a list: `done` is ``finished/all`` stages; `source` says where it was
    read (``postgresql`` or ``event log``)."""

    run_id: str
    started_at: float
    goal: str
    status: str
    stages: list[str]
    done: str
    reason: str | None
    output: str | None
    source: str
    tokens: int = 0
    cost_usd: float = 0.0


def summarize(events: list[AnyRunEvent]) -> RunState:
    """A run's state from its events (the first is its RunStarted)."""
    started = events[0]
    last = events[-1]
    if isinstance(last, RunFinished):
        status = "finished"
    elif isinstance(last, RunFailed):
        status = "failed"
    elif isinstance(last, StageAwaitingApproval):
        status = "awaiting approval"
    else:
        status = "running"
    first = started if isinstance(started, RunStarted) else None
    code = next(
        (e for e in reversed(events) if isinstance(e, ArtifactCreated) and e.stage == "code"), None
    )
    measured = [e for e in events if isinstance(e, ChecksFinished)]
    base = next((e.base for e in reversed(measured) if e.base), [])
    return RunState(
        run_id=started.run_id,
        started_at=started.ts,
        goal=first.goal if first else "",
        status=status,
        stages=first.stages if first else [],
        done=[e.stage for e in events if isinstance(e, StageFinished)],
        reason=last.reason
        if isinstance(last, RunFailed)
        else (
            f"{last.stage} awaits a decision" if isinstance(last, StageAwaitingApproval) else None
        ),
        output=first.output if first else None,
        events=len(events),
        files=split_diff(str(code.artifact.get("diff") or "")) if code else [],
        checks=measured[-1].results if measured else [],
        base_checks=base,
        branch=last.branch if isinstance(last, RunFinished) else None,
    )


def _row(state: RunState) -> RunRow:
    return RunRow(
        run_id=state.run_id,
        started_at=state.started_at,
        goal=state.goal,
        status=state.status,
        stages=state.stages,
        done=f"{len(state.done)}/{len(state.stages)}",
        reason=state.reason,
        output=state.output,
        source="event log",
    )


def embedded_dsn(settings: Settings) -> str | None:
    """The DSN of the PostgreSQL `tekton up` started, if it runs."""
    try:
        state = settings.home_path / "run" / "postgres.json"
        return str(json.loads(Path(state).read_text())["dsn"])
    except (OSError, ValueError, KeyError):
        return None


def history_dsn(settings: Settings) -> str | None:
    """The DSN history is read from: the configured one, else the embedded one."""
    return settings.postgres_dsn or embedded_dsn(settings)


async def _fetch(dsn: str | None, query: str, *args: object) -> list[Any] | None:
    """The rows of a query of the history database; None when there is none to ask or it
    cannot be reached."""
    if not dsn:
        return None
    import asyncpg  # noqa: PLC0415 - only history readers need it

    try:
        conn = await asyncpg.connect(dsn, timeout=3)
    except (OSError, TimeoutError, asyncpg.PostgresError):
        return None
    try:
        rows: list[Any] = await conn.fetch(query, *args)
    except asyncpg.PostgresError:
        return None
    finally:
        await conn.close()
    return rows


async def rows_from_db(dsn: str | None) -> list[RunRow] | None:
    """Every run from PostgreSQL, oldest first; None when there is no database to ask."""
    rows = await _fetch(
        dsn,
        "SELECT r.run_id, r.goal, r.status, r.stages, r.reason, r.output, r.tokens, "
        "r.cost_usd, extract(epoch FROM r.started_at) AS started_at, (SELECT count(*) "
        "FROM stages s WHERE s.run_id = r.run_id AND s.status = 'approved') AS done "
        "FROM runs r ORDER BY r.started_at",
    )
    if rows is None:
        return None
    return [
        RunRow(
            run_id=r["run_id"],
            started_at=float(r["started_at"]),
            goal=r["goal"],
            status=r["status"],
            stages=json.loads(r["stages"]),
            done=f"{r['done']}/{len(json.loads(r['stages']))}",
            reason=r["reason"],
            output=r["output"],
            tokens=r["tokens"],
            cost_usd=r["cost_usd"],
            source="postgresql",
        )
        for r in rows
    ]


async def rows_from_log(js: JetStreamContext, skip: set[str] | None = None) -> list[RunRow]:
    """Every run in the event log (but those in `skip`), oldest first."""
    rows = []
    for run_id in await run_ids(js):
        if skip and run_id in skip:
            continue
        if events := await read_events(js, run_id):
            rows.append(_row(summarize(events)))
    return sorted(rows, key=lambda r: r.started_at)


async def all_runs(js: JetStreamContext, dsn: str | None) -> list[RunRow]:
    """Every run, oldest first: from PostgreSQL when it can be reached, with the runs its
    recorder has not written yet (a burst of runs) read from the event log."""
    recorded = await rows_from_db(dsn)
    if recorded is None:
        return await rows_from_log(js)
    newer = await rows_from_log(js, skip={r.run_id for r in recorded})
    return sorted(recorded + newer, key=lambda r: r.started_at)


class StageTotals(msgspec.Struct):
    """What one stage of the pipeline took over every run (or one UTC day's): how many
    times it finished, its tokens and cost, and how long it took on average."""

    stage: str
    finished: int = 0
    tokens: int = 0
    cost_usd: float = 0.0
    mean_s: float = 0.0


async def stage_totals(js: JetStreamContext, dsn: str | None, day: str | None) -> list[StageTotals]:
    """Every stage's totals in the pipeline's order (stages that never finished left out):
    from PostgreSQL when it can be reached, else from the event log."""
    rows = await _fetch(
        dsn,
        "SELECT stage, count(*) AS finished, coalesce(sum(tokens), 0) AS tokens, "
        "coalesce(sum(cost_usd), 0) AS cost_usd, coalesce(avg(duration_s), 0) AS mean_s "
        "FROM stages WHERE status = 'approved' AND ($1::text IS NULL OR "
        "to_char(started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD') = $1) GROUP BY stage",
        day,
    )
    found: dict[str, StageTotals] = {}
    if rows is not None:
        for r in rows:
            found[r["stage"]] = StageTotals(
                r["stage"], r["finished"], int(r["tokens"]), float(r["cost_usd"]), r["mean_s"]
            )
    else:
        for run_id in await run_ids(js):
            for event in await read_events(js, run_id):
                if isinstance(event, StageFinished) and day in (None, day_of(event.ts)):
                    held = found.setdefault(event.stage, StageTotals(event.stage))
                    held.mean_s = (held.mean_s * held.finished + event.duration_s) / (
                        held.finished + 1
                    )
                    held.finished += 1
                    held.tokens += event.tokens
                    held.cost_usd += event.cost_usd
    return [found[stage] for stage in DIAMOND if stage in found]
