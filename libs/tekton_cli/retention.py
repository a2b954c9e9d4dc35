"""`tekton runs prune|export|import`: old runs removed from every store at once, and a
run moved to another installation as one tar file."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from tekton_cli import durations
from tekton_cli.output import print_json
from tekton_common.client.platform import Tekton
from tekton_common.contract.history import PruneRequest, RunStorage
from tekton_common.contract.ids import check_run_id
from tekton_common.errors import ConfigError
from tekton_common.settings import Settings

VERBS = ("prune", "export", "import")


def size(n: int) -> str:
    """Bytes as people read them."""
    if n < 1024:
        return f"{n} B"
    value = float(n)
    for unit in ("KiB", "MiB", "GiB"):
        value /= 1024
        if value < 1024 or unit == "GiB":
            break
    return f"{value:.1f} {unit}"


def storage_line(run: RunStorage) -> str:
    """One run's storage, store by store."""
    ended = time.strftime("%Y-%m-%d %H:%M", time.gmtime(run.last_event_at))
    return (
        f"{run.run_id}  {run.status} {ended} UTC  events {run.events} ({size(run.event_bytes)})"
        f"  rows {run.rows} ({size(run.row_bytes)})  artifacts {run.artifact_files} "
        f"({size(run.artifact_bytes)})  objects {len(run.objects)} ({size(run.object_bytes)})"
        f"  lessons {run.lessons}"
    )


async def prune(settings: Settings, older_than: str | None, dry_run: bool, as_json: bool) -> int:
    """Remove the runs that ended more than `older_than` ago (or say which would go)."""
    if not older_than:
        raise ConfigError("tekton runs prune needs --older-than DURATION (30d, 12h, 0s…)")
    ask = PruneRequest(older_than=durations.seconds("--older-than", older_than), dry_run=dry_run)
    async with Tekton.connect(settings) as tekton:
        report = await tekton.prune_runs(ask)
    if as_json:
        print_json(report)
        return 0
    for run in report.pruned:
        print(storage_line(run))
    said = "would remove" if dry_run else "removed"
    cutoff = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(report.cutoff))
    print(
        f"{said} {len(report.pruned)} runs that ended before {cutoff} UTC "
        f"(events, rows, artifacts, objects, lessons); {report.kept} runs kept"
    )
    return 0


async def export(settings: Settings, run_id: str, out: Path | None, as_json: bool) -> int:
    """Write the run's export tar to `out`, or to standard output when it is no
    terminal."""
    check_run_id(run_id)
    if out is None and sys.stdout.isatty():
        raise ConfigError("tekton runs export writes a tar: redirect it (> run.tar) or --output")
    with tempfile.TemporaryDirectory(dir=out.parent if out else None) as scratch:
        part = Path(scratch) / "run.tar"
        async with Tekton.connect(settings) as tekton:
            ready = await tekton.export_run(run_id, part)
        if out is not None:
            os.replace(part, out)  # whole or not at all
        else:
            with part.open("rb") as tar:
                shutil.copyfileobj(tar, sys.stdout.buffer)
            sys.stdout.buffer.flush()
    run = ready.run
    said = (
        f"exported run {run_id} ({run.status}): {run.events} events, {run.lessons} lessons, "
        f"{len(run.objects)} objects, {size(ready.size)}"
    )
    print(said, file=sys.stderr if out is None or as_json else sys.stdout)
    return 0


async def restore(settings: Settings, source: str, as_json: bool) -> int:
    """Import the run in the tar at `source` (`-`: standard input)."""
    async with Tekton.connect(settings) as tekton:
        if source != "-":
            path = Path(source)
            if not await asyncio.to_thread(path.is_file):
                raise ConfigError(f"tekton runs import: no file {source}")
            report = await tekton.import_run(path)
        else:
            with tempfile.NamedTemporaryFile() as taken:
                while chunk := sys.stdin.buffer.read(1 << 20):
                    taken.write(chunk)
                taken.flush()
                report = await tekton.import_run(Path(taken.name))
    if as_json:
        print_json(report)
        return 0
    print(
        f"imported run {report.run_id} ({report.status}): {report.events} events, "
        f"{report.artifact_files} artifact files, {len(report.objects)} objects, "
        f"{report.lessons} lessons"
    )
    for note in report.notes:
        print(f"note: {note}", file=sys.stderr)
    return 0
