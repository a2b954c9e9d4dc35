"""A run's history everywhere it is kept, as one: measured, pruned, exported and
imported.

A run keeps its events in TEKTON_RUNS, rows in PostgreSQL (the recorder's projection),
artifact files under this service's root, workspace objects (``<run>/source``,
``<run>/result``) and lessons in Milvus. A prune removes an ended run from all of them,
its events last: a prune cut short finds the run again and finishes. An export is a
tar of the events as stored, the lessons and the objects; an import checks every
member and event before it keeps anything, and the recorder makes the rows from the
events, the coordinator's writer the artifact files.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import shutil
import tarfile
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import msgspec
from nats.js import JetStreamContext
from nats.js.api import RawStreamMsg
from pydantic import ValidationError

from tekton_common import workspace
from tekton_common.artifact_files import run_folder, write_artifact
from tekton_common.artifacts import artifact_model
from tekton_common.contract.events import (
    AnyRunEvent,
    ArtifactCreated,
    RunFailed,
    RunFinished,
    RunStarted,
    StageAwaitingApproval,
    read_run_event,
)
from tekton_common.contract.history import (
    EXPORT_FORMAT,
    ExportReady,
    ExportRequest,
    ImportReport,
    ImportRequest,
    PruneReport,
    PruneRequest,
    RunStatus,
    RunStorage,
)
from tekton_common.contract.ids import check_run_id, valid_id
from tekton_common.contract.runs import Lesson, new_run_id
from tekton_common.errors import ConflictError, NotFoundError, ProtocolError
from tekton_common.runlog import RUNS_STREAM, read_stored, restore, run_ids, run_subject
from tekton_common.settings import Settings
from tekton_common.stages import STAGES
from tekton_stages import db, reruns
from tekton_stages.coordinator import artifacts_root
from tekton_stages.memory import Memory, MemoryUnavailableError
from tekton_stages.worktrees import result_branch

log = logging.getLogger(__name__)
#: every table that holds a run's rows, those that others refer to last
ROW_TABLES = ("events", "turns", "usage", "decisions", "artifacts", "debates", "stages", "runs")
#: a run's workspace objects
OBJECTS = ("source", "result")
MANIFEST = "tekton-run.json"
EVENTS = "events.jsonl"
LESSONS = "lessons.jsonl"
#: what an export holds besides its objects, and the most each may weigh
MEMBER_LIMITS = {MANIFEST: 64 * 1024, EVENTS: 32 * 1024 * 1024, LESSONS: 1024 * 1024}
#: the most events an import takes, and the largest (what NATS carries by default)
MAX_EVENTS = 20_000
MAX_EVENT = 1024 * 1024
#: how often the stages service prunes by its retention setting (seconds)
PRUNE_EVERY = 3600.0


def status_of(event: AnyRunEvent | None) -> RunStatus:
    """A run's status from its last event."""
    match event:
        case RunFinished():
            return "finished"
        case RunFailed():
            return "failed"
        case StageAwaitingApproval():
            return "awaiting approval"
        case _:
            return "running"


def checked_events(run_id: str, lines: list[bytes]) -> list[AnyRunEvent]:
    """An imported run's events, each read and in its place: one run, seq 1, 2, …, a
    RunStarted first and an end (or a gate) last; ProtocolError naming the first that
    is not."""
    if not lines:
        raise ProtocolError("the export holds no events")
    events: list[AnyRunEvent] = []
    if len(lines) > MAX_EVENTS:
        raise ProtocolError(f"the export holds more than {MAX_EVENTS} events")
    for seq, line in enumerate(lines, 1):
        if len(line) > MAX_EVENT:
            raise ProtocolError(f"event {seq} of the export is larger than {MAX_EVENT} bytes")
        event = read_run_event(line)
        if event is None:
            raise ProtocolError(f"event {seq} of the export is no run event this version reads")
        if isinstance(event, ArtifactCreated) and event.stage not in STAGES:
            raise ProtocolError(f"event {seq} of the export is an artifact of no stage")
        if event.run_id != run_id or event.seq != seq:
            raise ProtocolError(
                f"event {seq} of the export is event {event.seq} of run {event.run_id!r}, "
                f"not event {seq} of {run_id}"
            )
        events.append(event)
    if not isinstance(events[0], RunStarted):
        raise ProtocolError("the export's first event is no RunStarted")
    _its_own(run_id, events)
    if status_of(events[-1]) == "running":
        raise ProtocolError("the export's run had not ended (nor waited at a gate)")
    return events


def _its_own(run_id: str, events: list[AnyRunEvent]) -> None:
    """Every request of the run (as started, and each retry's) is its own, and so are
    its repository and its result; every artifact holds to its stage's schema."""
    for request in reruns.requests_of(events):
        if request.run_id != run_id or (
            request.workspace is not None and request.workspace.name != f"{run_id}/source"
        ):
            raise ProtocolError("the export's request is not its run's own")
    for event in events:
        if (
            isinstance(event, RunFinished)
            and event.result is not None
            and (event.result.name != f"{run_id}/result" or event.branch != result_branch(run_id))
        ):
            raise ProtocolError("the export's result is not its run's own")
        if isinstance(event, ArtifactCreated):
            try:
                artifact_model(event.stage).model_validate(event.artifact)
            except ValidationError as exc:
                said = f"{event.stage}'s artifact does not hold to its schema"
                raise ProtocolError(f"event {event.seq} of the export: {said}: {exc}") from None


def workspace_digests(events: list[AnyRunEvent]) -> set[str]:
    """The digests the run's requests name its repository by."""
    return {r.workspace.digest for r in reruns.requests_of(events) if r.workspace is not None}


def checked_lessons(run_id: str, data: bytes) -> list[Lesson]:
    """An imported run's lessons: its own, one per stage at most."""
    try:
        lessons = [msgspec.json.decode(line, type=Lesson) for line in data.splitlines() if line]
    except msgspec.DecodeError as exc:
        raise ProtocolError(f"the export's lessons are not lessons: {exc}") from None
    stages = [lesson.stage for lesson in lessons]
    wrong = [lesson for lesson in lessons if lesson.run_id != run_id or lesson.stage not in STAGES]
    if wrong or len(set(stages)) != len(stages):
        raise ProtocolError(f"the export's lessons are not {run_id}'s, one per stage")
    return lessons


def _member(tar: tarfile.TarFile, member: tarfile.TarInfo, limit: int) -> bytes:
    if member.size > limit:
        raise ProtocolError(f"{member.name} in the export is larger than {limit} bytes")
    handle = tar.extractfile(member)
    assert handle is not None  # a regular file, checked before
    return handle.read()


def read_export(path: Path, scratch: Path, object_limit: int) -> dict[str, Any]:
    """The members of an export tar at `path` (objects written into `scratch`):
    regular files of known names only, each once and within its limit."""
    found: dict[str, Any] = {}
    try:
        with tarfile.open(path, mode="r:") as tar:
            for member in tar:
                name = member.name
                what = name.removeprefix("objects/")
                known = name in MEMBER_LIMITS or (name != what and what in OBJECTS)
                if not known or not member.isfile() or name in found:
                    raise ProtocolError(f"{name!r} is not part of a Tekton run export")
                if name in MEMBER_LIMITS:
                    found[name] = _member(tar, member, MEMBER_LIMITS[name])
                    continue
                if member.size > object_limit:
                    raise ProtocolError(f"{name} is larger than the workspace limit")
                handle = tar.extractfile(member)
                assert handle is not None
                with (scratch / what).open("wb") as out:
                    shutil.copyfileobj(handle, out)
                found[name] = scratch / what
    except tarfile.TarError as exc:
        raise ProtocolError(f"the export is no tar file Tekton reads: {exc}") from None
    for name in (MANIFEST, EVENTS):
        if name not in found:
            raise ProtocolError(f"the export has no {name}")
    return found


def manifest_run(data: bytes) -> str:
    """The run id of an export's manifest (its format checked)."""
    try:
        manifest = json.loads(data)
    except ValueError:
        raise ProtocolError(f"{MANIFEST} is no JSON") from None
    if not isinstance(manifest, dict) or manifest.get("format") != EXPORT_FORMAT:
        raise ProtocolError(f"{MANIFEST}: not an export of format {EXPORT_FORMAT}")
    run_id = manifest.get("run_id")
    if not isinstance(run_id, str) or not valid_id(run_id, 64):
        raise ProtocolError(f"{MANIFEST}: no valid run_id")
    return run_id


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), int(time.time()), 0o644
    tar.addfile(info, io.BytesIO(data))


def _folder_size(folder: Path) -> tuple[int, int]:
    files = [p for p in folder.rglob("*") if p.is_file()] if folder.is_dir() else []
    return len(files), sum(p.stat().st_size for p in files)


def stored_at(msg: RawStreamMsg, event: AnyRunEvent | None) -> float:
    """When this installation stored a message (epoch seconds): an imported run's age
    is counted from its import, not from when it ended elsewhere."""
    text = msg.time if isinstance(msg.time, str) else ""
    try:
        whole, _, fraction = text.rstrip("Z").partition(".")
        at = datetime.fromisoformat(f"{whole}.{(fraction or '0')[:6]}+00:00")
    except ValueError:
        return event.ts if event is not None else 0.0
    return at.timestamp()


class History:
    """Measure, prune, export and import runs (the stages service's endpoints)."""

    def __init__(
        self, js: JetStreamContext, settings: Settings, memory: Memory, active: set[str]
    ) -> None:
        self.js = js
        self.settings = settings
        self.memory = memory
        #: runs this process drives now (the coordinator's): never pruned under it
        self.active = active
        self.root = artifacts_root(settings)
        self._pool: Any = None

    async def _rows(self) -> Any:
        """A pool to PostgreSQL (None when history is not kept there)."""
        if self._pool is None and self.settings.postgres_dsn:
            self._pool = await db.connect(self.settings.postgres_dsn, max_size=2)
        return self._pool

    async def _count_rows(self, run_id: str) -> tuple[int, int]:
        rows = row_bytes = 0
        if (pool := await self._rows()) is not None:
            async with pool.acquire() as conn:
                for table in ROW_TABLES:
                    count, size = await conn.fetchrow(
                        # the table is one of ROW_TABLES, never input
                        f"SELECT count(*), coalesce(sum(pg_column_size(t.*)), 0) "
                        f"FROM {table} t WHERE run_id = $1",
                        run_id,
                    )
                    rows, row_bytes = rows + count, row_bytes + int(size)
        return rows, row_bytes

    async def storage(self, run_id: str, stored: list[bytes] | None = None) -> RunStorage:
        """What one run keeps, store by store (memory unavailable: said in `notes`)."""
        stored = await read_stored(self.js, run_id) if stored is None else stored
        if not stored:
            raise NotFoundError(f"no run {run_id}")
        last = read_run_event(stored[-1])
        rows, row_bytes = await self._count_rows(run_id)
        files, file_bytes = await asyncio.to_thread(_folder_size, run_folder(self.root, run_id))
        objects = {}
        for name in (f"{run_id}/{what}" for what in OBJECTS):
            if (info := await workspace.find_object(self.js, name)) is not None:
                objects[name] = info
        notes: list[str] = []
        try:
            lessons = len(await self.memory.lessons(run_id))
        except MemoryUnavailableError as exc:
            lessons, notes = 0, [f"lessons not counted: {exc}"]
        return RunStorage(
            run_id=run_id,
            status=status_of(last),
            last_event_at=last.ts if last is not None else 0.0,
            events=len(stored),
            event_bytes=sum(len(data) for data in stored),
            rows=rows,
            row_bytes=row_bytes,
            artifact_files=files,
            artifact_bytes=file_bytes,
            objects=list(objects),
            object_bytes=sum(info.size or 0 for info in objects.values()),
            lessons=lessons,
            notes=notes,
        )

    async def _ended_before(self, run_id: str, cutoff: float) -> int | None:
        """The stream sequence of the run's last event when it ended (finished or
        failed) before `cutoff`, by when this installation stored it; else None."""
        last = await self.js.get_last_msg(RUNS_STREAM, run_subject(run_id))
        event = read_run_event(last.data or b"{}")
        if status_of(event) not in ("finished", "failed") or run_id in self.active:
            return None
        return last.seq if stored_at(last, event) < cutoff else None

    async def prune(self, ask: PruneRequest) -> PruneReport:
        """Remove every run that ended before the cutoff, from every store, one run at a
        time; a run still running or waiting at a gate stays, however old, and so does
        one that went on (a retry) while it was measured."""
        cutoff = time.time() - ask.older_than
        ids = await run_ids(self.js)
        pruned: list[RunStorage] = []
        notes: list[str] = []
        for run_id in ids:
            if (seq := await self._ended_before(run_id, cutoff)) is None:
                continue
            run = await self.storage(run_id)
            if not ask.dry_run:
                if await self._ended_before(run_id, cutoff) != seq:
                    continue  # it went on meanwhile
                notes += await self._remove(run_id)
            pruned.append(run)
        if pruned and not ask.dry_run:
            log.info("pruned %d runs that ended before %s", len(pruned), time.ctime(cutoff))
        return PruneReport(
            dry_run=ask.dry_run,
            cutoff=cutoff,
            pruned=pruned,
            kept=len(ids) - len(pruned),
            notes=notes,
        )

    async def _delete_rows(self, run_id: str) -> None:
        if (pool := await self._rows()) is not None:
            async with pool.acquire() as conn, conn.transaction():
                for table in ROW_TABLES:
                    await conn.execute(
                        f"DELETE FROM {table} WHERE run_id = $1",  # one of ROW_TABLES
                        run_id,
                    )

    async def _remove(self, run_id: str) -> list[str]:
        """The run gone from every store, its events last (rows once more after them: a
        recorder catching up may have written some meanwhile). What could not go is
        said; the lessons of a run whose events are gone are asked again next time."""
        notes: list[str] = []
        await self._delete_rows(run_id)
        try:
            await self.memory.forget([run_id])
        except MemoryUnavailableError as exc:
            notes.append(f"{run_id}: lessons not removed, the next prune tries again: {exc}")
        await asyncio.to_thread(shutil.rmtree, run_folder(self.root, run_id), True)
        for what in OBJECTS:
            await workspace.delete_object(self.js, f"{run_id}/{what}")
        if not notes:  # else the run stays listed, so its lessons are found again
            await self.js.purge_stream(RUNS_STREAM, subject=run_subject(run_id))
            await self._delete_rows(run_id)
        return notes

    async def keep(self, days: float) -> None:
        """Prune runs that ended more than `days` ago, every hour (until cancelled)."""
        while True:
            await asyncio.sleep(min(PRUNE_EVERY, 60.0))
            try:
                await self.prune(PruneRequest(older_than=days * 86400.0))
            except Exception:  # a store away for now: the next hour tries again
                log.warning("retention prune failed", exc_info=True)
            await asyncio.sleep(PRUNE_EVERY - 60.0)

    async def export(self, ask: ExportRequest) -> ExportReady:
        """The run as a tar file in the workspaces bucket (``<nonce>/export``)."""
        stored = await read_stored(self.js, ask.run_id)
        run = await self.storage(ask.run_id, stored)
        if run.status == "running":
            raise ProtocolError(
                f"run {ask.run_id} is still running: export it once it ends or waits at a gate"
            )
        try:
            lessons = await self.memory.lessons(ask.run_id)
        except MemoryUnavailableError:
            lessons = []  # said in run.notes
        manifest = {"format": EXPORT_FORMAT, "run_id": ask.run_id, "exported_at": time.time()}
        name = f"{new_run_id()}/export"  # its own: two exports at once do not meet
        with tempfile.TemporaryDirectory() as scratch:
            packed = Path(scratch) / "export.tar"
            with tarfile.open(packed, mode="w") as tar:
                _add(tar, MANIFEST, json.dumps(manifest).encode())
                _add(tar, EVENTS, b"\n".join(stored) + b"\n")
                _add(tar, LESSONS, b"".join(msgspec.json.encode(x) + b"\n" for x in lessons))
                for object_name in run.objects:
                    what = object_name.rsplit("/", 1)[1]
                    await workspace.download(self.js, object_name, Path(scratch) / what)
                    tar.add(Path(scratch) / what, arcname=f"objects/{what}")
            info = await workspace.put(self.js, name, packed)
        return ExportReady(file=name, size=info.size or 0, digest=info.digest or "", run=run)

    async def restore(self, ask: ImportRequest) -> tuple[ImportReport, AnyRunEvent]:
        """The run in the export `ask.file` kept here as it was (and the file deleted);
        ConflictError when a run of its id is here already. Returns its last event."""
        try:
            info = await workspace.require_object(self.js, ask.file)
            limit = int(self.settings.workspace_limit_mb * 1024 * 1024)
            if (info.size or 0) > 2 * limit + sum(MEMBER_LIMITS.values()):
                raise ProtocolError(f"the export is larger than two workspaces ({info.size} B)")
            with tempfile.TemporaryDirectory() as scratch:
                packed = Path(scratch) / "import.tar"
                await workspace.download(self.js, ask.file, packed)
                (Path(scratch) / "objects").mkdir()
                found = await asyncio.to_thread(
                    read_export, packed, Path(scratch) / "objects", limit
                )
                return await self._keep(found)
        finally:
            with contextlib.suppress(Exception):
                await workspace.delete_object(self.js, ask.file)

    async def _keep(self, found: dict[str, Any]) -> tuple[ImportReport, AnyRunEvent]:
        run_id = check_run_id(manifest_run(found[MANIFEST]))
        lines = [line for line in found[EVENTS].split(b"\n") if line]
        events = checked_events(run_id, lines)
        lessons = checked_lessons(run_id, found.get(LESSONS, b""))
        digests = workspace_digests(events)
        if digests and "objects/source" not in found:
            raise ProtocolError("the export lacks the repository its run started from")
        if await read_stored(self.js, run_id):
            raise ConflictError(f"run {run_id} is already here (prune it to import it again)")
        try:
            return await self._write(run_id, found, events, lines, lessons, digests)
        except ConflictError:
            raise  # another import of it came first: what is here is that one's
        except BaseException:
            await self._undo(run_id)
            raise

    async def _write(
        self,
        run_id: str,
        found: dict[str, Any],
        events: list[AnyRunEvent],
        lines: list[bytes],
        lessons: list[Lesson],
        digests: set[str],
    ) -> tuple[ImportReport, AnyRunEvent]:
        objects = []
        for what in OBJECTS:
            if (path := found.get(f"objects/{what}")) is not None:
                info = await workspace.put(self.js, f"{run_id}/{what}", path)
                if what == "source" and digests - {info.digest}:
                    raise ProtocolError("the export's repository is not the one its run names")
                objects.append(f"{run_id}/{what}")
        folder = run_folder(self.root, run_id)
        files = 0
        for event in events:
            if isinstance(event, ArtifactCreated):
                made = await asyncio.to_thread(write_artifact, folder, event.stage, event.artifact)
                files += len(made)
        notes: list[str] = []
        try:
            for lesson in lessons:
                await self.memory.remember(lesson)
        except MemoryUnavailableError as exc:
            notes.append(f"lessons not kept: {exc}")
        await restore(self.js, run_id, lines)
        report = ImportReport(
            run_id=run_id,
            status=status_of(events[-1]),
            events=len(events),
            artifact_files=files,
            objects=objects,
            lessons=len(lessons) if not notes else 0,
            notes=notes,
        )
        return report, events[-1]

    async def _undo(self, run_id: str) -> None:
        """What an import that failed half way wrote, removed again (best effort)."""
        with contextlib.suppress(Exception):
            await self.js.purge_stream(RUNS_STREAM, subject=run_subject(run_id))
        with contextlib.suppress(Exception):
            await self.memory.forget([run_id])
        await asyncio.to_thread(shutil.rmtree, run_folder(self.root, run_id), True)
        for what in OBJECTS:
            with contextlib.suppress(Exception):
                await workspace.delete_object(self.js, f"{run_id}/{what}")
