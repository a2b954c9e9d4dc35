"""Run history as readers see it: summaries from the event log, lists from PostgreSQL
(when it can be reached) or from the event log. Used by `tekton runs` and the API."""

from __future__ import annotations

import json
from typing import Any

import nats.js.errors

from tekton_stages.events import RUNS_STREAM, read_events


def summarize(events: list[dict[str, Any]]) -> dict[str, Any]:
    """A run's state from its events."""
    started = events[0]
    done = [e["stage"] for e in events if e["type"] == "StageFinished.v1"]
    last = events[-1]
    status = {"RunFinished.v1": "finished", "RunFailed.v1": "failed"}.get(last["type"], "running")
    return {
        "run_id": started["run_id"],
        "started_at": started["ts"],
        "goal": started.get("goal", ""),
        "status": status,
        "stages": started.get("stages", []),
        "done": done,
        "reason": last.get("reason"),
        "output": started.get("output"),
        "events": len(events),
    }


async def list_runs_db(dsn: str | None) -> list[dict[str, Any]] | None:
    """Every run from PostgreSQL, oldest first; None when there is no database to ask."""
    if not dsn:
        return None
    import asyncpg  # noqa: PLC0415 - only history commands need it

    try:
        conn = await asyncpg.connect(dsn, timeout=3)
    except (OSError, TimeoutError, asyncpg.PostgresError):
        return None
    try:
        rows = await conn.fetch(
            "SELECT r.run_id, r.goal, r.status, r.stages, r.reason, r.output, r.tokens, "
            "r.cost_usd, extract(epoch FROM r.started_at) AS started_at, (SELECT count(*) "
            "FROM stages s WHERE s.run_id = r.run_id AND s.status = 'approved') AS done "
            "FROM runs r ORDER BY r.started_at"
        )
    except asyncpg.PostgresError:
        return None
    finally:
        await conn.close()
    return [
        {
            "run_id": r["run_id"],
            "started_at": float(r["started_at"]),
            "goal": r["goal"],
            "status": r["status"],
            "stages": json.loads(r["stages"]),
            "done": f"{r['done']}/{len(json.loads(r['stages']))}",
            "reason": r["reason"],
            "output": r["output"],
            "tokens": r["tokens"],
            "cost_usd": r["cost_usd"],
            "source": "postgresql",
        }
        for r in rows
    ]


async def run_ids(js: Any) -> list[str]:
    """The id of every run in the event log."""
    try:
        info = await js.stream_info(RUNS_STREAM, subjects_filter=">")
    except nats.js.errors.NotFoundError:
        return []
    return sorted(subject.split(".")[2] for subject in info.state.subjects or {})


def _from_log(events: list[dict[str, Any]]) -> dict[str, Any]:
    run = summarize(events)
    run["done"] = f"{len(run['done'])}/{len(run['stages'])}"
    run["source"] = "event log"
    return run


async def list_runs(js: Any) -> list[dict[str, Any]]:
    """Every run in the stream, oldest first."""
    runs = [_from_log(await read_events(js, run_id)) for run_id in await run_ids(js)]
    return sorted(runs, key=lambda r: r["started_at"])


async def all_runs(js: Any, dsn: str | None) -> list[dict[str, Any]]:
    """Every run, oldest first: from PostgreSQL when it can be reached, with the runs its
    recorder has not written yet (a burst of runs) read from the event log."""
    recorded = await list_runs_db(dsn)
    if recorded is None:
        return await list_runs(js)
    known = {r["run_id"] for r in recorded}
    newer = [
        _from_log(events)
        for run_id in await run_ids(js)
        if run_id not in known and (events := await read_events(js, run_id))
    ]
    return sorted(recorded + newer, key=lambda r: r["started_at"])
