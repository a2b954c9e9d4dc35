"""The recorder: TEKTON_RUNS into PostgreSQL, acknowledged only after commit.

A durable pull consumer (``tekton-recorder``) reads the run events in order, in
batches of up to 100. Each batch is written in one transaction (every raw event plus
its projection into runs, stages, debates, turns, usage and artifacts) and
acknowledged after the commit. While
PostgreSQL is down nothing is acknowledged: the events wait in JetStream and the
recorder retries with backoff, so history is delayed, never lost. Writing an event
twice is harmless (the event's primary key makes the second write a no-op).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import asyncpg
import msgspec
import nats.errors
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from tekton_common.bus import backoff_delay
from tekton_common.contract.events import (
    ArtifactCreated,
    DebateTurn,
    DecisionRecorded,
    RunFailed,
    RunFinished,
    RunResumed,
    RunStarted,
    StageAwaitingApproval,
    StageBlocked,
    StageFinished,
    StageStarted,
    read_run_event,
)
from tekton_common.errors import TransportError
from tekton_common.runlog import RUNS_STREAM, RUNS_SUBJECTS
from tekton_stages import db

log = logging.getLogger(__name__)
DURABLE = "tekton-recorder"
PG_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError)


def _ts(value: float) -> datetime:
    return datetime.fromtimestamp(value, UTC)


async def record(conn: Any, data: bytes) -> bool:
    """Write one event (as stored) and its projection; False when it was already
    recorded. An event this version cannot read is kept in ``events`` unprojected."""
    raw = msgspec.json.decode(data)
    event = read_run_event(data)
    inserted = await conn.fetchval(
        "INSERT INTO events (run_id, seq, type, ts, payload) VALUES ($1, $2, $3, $4, $5) "
        "ON CONFLICT DO NOTHING RETURNING 1",
        raw["run_id"],
        raw["seq"],
        raw["type"],
        _ts(raw["ts"]),
        data.decode(),
    )
    if not inserted:
        return False
    project = PROJECTIONS.get(type(event)) if event is not None else None
    if project is not None:
        await project(conn, event, _ts(raw["ts"]))
    return True


async def _run_started(conn: Any, e: RunStarted, at: datetime) -> None:
    await conn.execute(
        "INSERT INTO runs (run_id, goal, status, stages, output, started_at, fork_of) VALUES "
        "($1, $2, 'running', $3, $4, $5, $6) ON CONFLICT DO NOTHING",
        e.run_id,
        e.goal,
        json.dumps(e.stages),
        e.output,
        at,
        e.fork_of,
    )


async def _run_resumed(conn: Any, e: RunResumed, at: datetime) -> None:
    await conn.execute(
        "UPDATE runs SET status = 'running', reason = NULL, finished_at = NULL WHERE run_id = $1",
        e.run_id,
    )


async def _stage_started(conn: Any, e: StageStarted, at: datetime) -> None:
    await conn.execute(
        "INSERT INTO stages (run_id, stage, status, debate_id, started_at) VALUES "
        "($1, $2, 'running', $3, $4) ON CONFLICT (run_id, stage) DO UPDATE SET "
        "status = 'running', debate_id = $3, started_at = $4",
        e.run_id,
        e.stage,
        e.debate_id,
        at,
    )
    await conn.execute(
        "INSERT INTO debates (debate_id, run_id, stage, started_at) VALUES "
        "($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        e.debate_id,
        e.run_id,
        e.stage,
        at,
    )


async def _stage_blocked(conn: Any, e: StageBlocked, at: datetime) -> None:
    await conn.execute(
        "UPDATE stages SET status = 'blocked', reason = $3, finished_at = $4 "
        "WHERE run_id = $1 AND stage = $2",
        e.run_id,
        e.stage,
        e.reason,
        at,
    )


async def _awaiting(conn: Any, e: StageAwaitingApproval, at: datetime) -> None:
    await conn.execute(
        "UPDATE stages SET status = 'awaiting_approval' WHERE run_id = $1 AND stage = $2",
        e.run_id,
        e.stage,
    )
    await conn.execute("UPDATE runs SET status = 'awaiting approval' WHERE run_id = $1", e.run_id)


async def _decision(conn: Any, e: DecisionRecorded, at: datetime) -> None:
    await conn.execute(
        "INSERT INTO decisions (decision_id, run_id, stage, decision, decided_by, comment, "
        "artifact, decided_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING",
        e.decision_id,
        e.run_id,
        e.stage,
        e.decision,
        e.by,
        e.comment,
        json.dumps(e.artifact) if e.artifact is not None else None,
        at,
    )


async def _artifact(conn: Any, e: ArtifactCreated, at: datetime) -> None:
    await conn.execute(
        "INSERT INTO artifacts (run_id, stage, name, files, content, created_at, reused_from) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (run_id, stage) DO UPDATE SET "
        "files = $4, content = $5, created_at = $6, reused_from = $7",
        e.run_id,
        e.stage,
        e.name,
        json.dumps(e.files),
        json.dumps(e.artifact),
        at,
        e.reused_from,
    )


async def _stage_finished(conn: Any, e: StageFinished, at: datetime) -> None:
    await conn.execute(
        "UPDATE stages SET status = $3, tokens = $4, cost_usd = $5, confidence = $6, "
        "duration_s = $7, finished_at = $8 WHERE run_id = $1 AND stage = $2",
        e.run_id,
        e.stage,
        e.status,
        e.tokens,
        e.cost_usd,
        e.confidence,
        e.duration_s,
        at,
    )


async def _run_ended(conn: Any, e: RunFinished | RunFailed, at: datetime) -> None:
    await conn.execute(
        "UPDATE runs SET status = $2, reason = $3, tokens = $4, cost_usd = $5, "
        "finished_at = $6 WHERE run_id = $1",
        e.run_id,
        "finished" if isinstance(e, RunFinished) else "failed",
        e.reason if isinstance(e, RunFailed) else None,
        e.tokens,
        e.cost_usd,
        at,
    )


async def _turn(conn: Any, e: DebateTurn, at: datetime) -> None:
    turn = e.turn
    vote = turn.position.vote if turn.position else (turn.outcome or {}).get("status")
    await conn.execute(
        "INSERT INTO turns (run_id, seq, debate_id, round, role, ci, vote, confidence, "
        "abstained, error, latency_s, payload) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, "
        "$10, $11, $12)",
        e.run_id,
        e.seq,
        e.debate_id,
        turn.round,
        turn.role,
        turn.ci,
        vote,
        turn.position.self_confidence if turn.position else None,
        turn.abstained,
        turn.error,
        turn.latency_s,
        msgspec.json.encode(turn).decode(),
    )
    await conn.execute(
        "INSERT INTO usage (run_id, seq, stage, ci, model, input_tokens, output_tokens, "
        "cache_creation_input_tokens, cache_read_input_tokens, cost_usd) VALUES ($1, $2, $3, "
        "$4, $5, $6, $7, $8, $9, $10)",
        e.run_id,
        e.seq,
        e.stage,
        turn.ci,
        turn.model,
        turn.input_tokens,
        turn.output_tokens,
        turn.cache_creation_input_tokens,
        turn.cache_read_input_tokens,
        turn.cost_usd,
    )


#: what each event adds to the tables beside ``events`` (events not here add nothing)
PROJECTIONS: dict[type[Any], Callable[[Any, Any, datetime], Awaitable[None]]] = {
    RunStarted: _run_started,
    RunResumed: _run_resumed,
    StageStarted: _stage_started,
    DebateTurn: _turn,
    StageBlocked: _stage_blocked,
    StageAwaitingApproval: _awaiting,
    DecisionRecorded: _decision,
    ArtifactCreated: _artifact,
    StageFinished: _stage_finished,
    RunFinished: _run_ended,
    RunFailed: _run_ended,
}


class Recorder:
    """Follows TEKTON_RUNS with a durable consumer and writes PostgreSQL."""

    def __init__(self, js: JetStreamContext, dsn: str) -> None:
        self.js = js
        self.dsn = dsn
        self.pool: Any = None
        self.recorded = 0

    async def run(self) -> None:
        """Record forever (until cancelled); survives database and NATS outages."""
        sub = await self.js.pull_subscribe(
            RUNS_SUBJECTS,
            durable=DURABLE,
            stream=RUNS_STREAM,
            config=ConsumerConfig(
                ack_policy=AckPolicy.EXPLICIT,
                ack_wait=30,
                deliver_policy=DeliverPolicy.ALL,
                max_ack_pending=1000,
            ),
        )
        try:
            await self._consume(sub)
        finally:  # messages fetched but not taken would hold up the connection's drain
            with contextlib.suppress(nats.errors.Error, ValueError):
                await sub.unsubscribe()

    async def _consume(self, sub: Any) -> None:
        failures = 0
        while True:
            try:
                if self.pool is None:
                    self.pool = await db.connect(self.dsn)
                    log.info("recorder connected to PostgreSQL")
                try:
                    msgs = await sub.fetch(batch=100, timeout=1)
                except nats.errors.TimeoutError:
                    continue
                await self._write(msgs)
                failures = 0
            except (TransportError, OSError, TimeoutError, *PG_ERRORS) as exc:
                failures += 1
                delay = backoff_delay(failures)
                log.warning("recorder waiting for PostgreSQL (%s); retry in %.1fs", exc, delay)
                await self._reset()
                await asyncio.sleep(delay)

    async def _write(self, msgs: list[Any]) -> None:
        """A fetched batch in one transaction (one commit, not one per event: a burst of
        runs is recorded as fast as it comes), acknowledged only after the commit."""
        async with self.pool.acquire() as conn, conn.transaction():
            recorded = 0
            for msg in msgs:
                recorded += await record(conn, msg.data)
        self.recorded += recorded
        for msg in msgs:
            await msg.ack()

    async def _reset(self) -> None:
        if self.pool is not None:
            pool, self.pool = self.pool, None
            try:
                await asyncio.wait_for(pool.close(), 2)
            except (OSError, TimeoutError, *PG_ERRORS):
                pool.terminate()
